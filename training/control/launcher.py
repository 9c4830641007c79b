"""Lambda: start a training run on a Spot instance for a new dataset version.

Started by an S3 `Object Created` event for `datasets/<name>/<version>/data.csv` or by a direct
invoke (`python -m training retrain`). It records the run as `launching` with a conditional put
(a duplicate delivery of the same event gets the same run id and launches nothing), then tries
each instance type, then each subnet, on Spot, and on demand only when allowed. What a refused
attempt means for the next one is the NEXT_STEP table below (docs/pipeline.md lists it too).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from training.aws import (
    Clock,
    DatasetLocation,
    LocationError,
    configure_logging,
    env_bool,
    env_int,
    env_list,
    error_code,
    error_reason,
    log,
    new_run_id,
    parse_iso,
    require_env,
    utc_now,
)
from training.contract import DATASETS_PREFIX, OBJECT_CREATED, Env
from training.registry import FAILED, Registry

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import RunInstancesRequestTypeDef, TagTypeDef
    from mypy_boto3_s3 import S3Client

SPOT, ON_DEMAND = "spot", "on-demand"


class Step(Enum):
    """What a refused RunInstances attempt means for the next one."""

    NEXT_TYPE = "try the next instance type"
    NEXT_SUBNET = "try the next subnet"
    NEXT_MARKET = "rule out this market"  # Spot -> on-demand; after the last market, fail
    STOP = "fail the run"


# RunInstances error code -> the next step. Reasons quote the EC2 API error reference
# (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html) unless noted.
# A code not listed stops the run: a bad parameter, template, AMI or on-demand quota
# (VcpuLimitExceeded) refuses every other choice alike, and retrying would only hide it.
NEXT_STEP: Mapping[str, Step] = {
    # "There is not enough capacity ... try launching an instance by selecting different
    # instance types." Capacity is per type and zone, so the next type (or subnet) may have it.
    "InsufficientInstanceCapacity": Step.NEXT_TYPE,
    "InsufficientCapacity": Step.NEXT_TYPE,
    "InsufficientHostCapacity": Step.NEXT_TYPE,
    "InsufficientReservedInstanceCapacity": Step.NEXT_TYPE,
    # Spot: "create a more flexible request ... include additional instance types, include
    # additional Availability Zones".
    "UnfulfillableCapacity": Step.NEXT_TYPE,
    # "an Availability Zone that currently has constraints on that instance type".
    "Unsupported": Step.NEXT_TYPE,
    # "your maximum price is below the Spot price": the price is per type and zone.
    "SpotMaxPriceTooLow": Step.NEXT_TYPE,
    # The Spot quota "depends on the instance type" (it counts vCPUs per family group), so a
    # type of another group or size may still fit; every refusal is a fast 4xx.
    "MaxSpotInstanceCountExceeded": Step.NEXT_TYPE,
    # Spot request status codes that some messages carry as codes (EC2 User Guide,
    # spot-request-status).
    "capacity-not-available": Step.NEXT_TYPE,
    "capacity-oversubscribed": Step.NEXT_TYPE,
    "price-too-low": Step.NEXT_TYPE,
    # "The specified subnet does not contain enough free private IP addresses": no type fits
    # in this subnet, another subnet may have room.
    "InsufficientFreeAddressesInSubnet": Step.NEXT_SUBNET,
    # Spot only: the account has no AWSServiceRoleForEC2Spot and the caller may not create it
    # (EC2 User Guide, service-linked-roles-spot-instance-requests). Every Spot attempt fails
    # alike until the role exists; on-demand does not use it.
    "AuthFailure.ServiceLinkedRoleCreationNotPermitted": Step.NEXT_MARKET,
    # "You are not authorized to perform this operation": a missing permission refuses every
    # type and subnet alike. A Spot launch is authorized against more than an on-demand one
    # (its own template, spot-instances-request), so on-demand may still be allowed; refused
    # on-demand, no market is left and the run fails with this code.
    "UnauthorizedOperation": Step.NEXT_MARKET,
}

SPOT_OPTIONS = {
    "MarketType": "spot",
    "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
}

# Capacity errors come back as HTTP 500, which botocore retries with backoff; the next instance
# type or subnet is the better retry, so one retry only (kept for throttling and blips).
EC2_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2})

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LauncherSettings:
    """The launcher's settings, from the environment the CDK sets."""

    registry_table: str
    launch_template_id: str
    on_demand_launch_template_id: str | None
    subnet_ids: tuple[str, ...]
    instance_types: tuple[str, ...]
    on_demand_fallback: bool
    time_limit_minutes: int
    dataset_bucket: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LauncherSettings:
        """Parse the settings; SettingsError names the variable that is wrong."""
        env = os.environ if environ is None else environ
        fallback = env_bool(env, Env.ON_DEMAND_FALLBACK)
        return cls(
            registry_table=require_env(env, Env.REGISTRY_TABLE),
            launch_template_id=require_env(env, Env.LAUNCH_TEMPLATE_ID),
            # The Spot template requests Spot; on-demand launches need a template that does not.
            on_demand_launch_template_id=(
                require_env(env, Env.ON_DEMAND_LAUNCH_TEMPLATE_ID) if fallback else None
            ),
            subnet_ids=env_list(env, Env.SUBNET_IDS),
            instance_types=env_list(env, Env.INSTANCE_TYPES),
            on_demand_fallback=fallback,
            time_limit_minutes=env_int(env, Env.TIME_LIMIT_MINUTES),
            dataset_bucket=require_env(env, Env.DATASET_BUCKET),
        )


class RequestError(ValueError):
    """The event does not ask for a run this launcher can start; the message says why."""


@dataclass(frozen=True)
class LaunchRequest:
    """A validated request for a training run."""

    location: DatasetLocation
    trigger: str
    requested_at: datetime
    idempotency_key: str | None = None
    requested_by: str | None = None
    reason: str | None = None


def parse_request(event: Mapping[str, Any], *, bucket: str, now: datetime) -> LaunchRequest:
    """Read an S3 Object Created event or a direct invoke; RequestError when it is neither."""
    if event.get("source") == "aws.s3":
        return _s3_request(event, bucket=bucket, now=now)
    if "dataset_uri" in event:
        uri = event["dataset_uri"]
        if not isinstance(uri, str):
            raise RequestError(f"dataset_uri must be a string, got {uri!r}")
        try:
            location = DatasetLocation.parse(uri, bucket=bucket)
        except LocationError as err:
            raise RequestError(str(err)) from err
        return LaunchRequest(
            location=location,
            trigger="manual",
            requested_at=now,
            requested_by=_text(event.get("requested_by")) or "unknown",
            reason=_text(event.get("reason")),
        )
    raise RequestError(
        'expected an S3 Object Created event or {"dataset_uri": "s3://...", '
        f'"requested_by": ..., "reason": ...}}; got keys {sorted(event)}'
    )


def _s3_request(event: Mapping[str, Any], *, bucket: str, now: datetime) -> LaunchRequest:
    """The request an S3 Object Created event (through EventBridge) makes."""
    detail = event.get("detail") or {}
    found = (detail.get("bucket") or {}).get("name", "")
    obj = detail.get("object") or {}
    key = obj.get("key", "")
    if event.get("detail-type") != OBJECT_CREATED:
        raise RequestError(f"S3 event {event.get('detail-type')!r} is not {OBJECT_CREATED}")
    if found != bucket:
        raise RequestError(f"s3://{found}/{key} is not in the data bucket {bucket}")
    try:
        location = DatasetLocation.from_key(found, key)
    except LocationError as err:
        raise RequestError(str(err)) from err
    # The object version identifies the upload itself; without versioning, the event id
    # (kept across EventBridge's redeliveries) does.
    version_id = obj.get("version-id")
    key_id = f"{location.uri}?versionId={version_id}" if version_id else f"event:{event.get('id')}"
    requested_at = parse_iso(event["time"]) if event.get("time") else now
    return LaunchRequest(
        location=location,
        trigger="s3-event",
        requested_at=requested_at,
        idempotency_key=key_id,
        requested_by=str(detail.get("requester") or "") or None,
        reason=f"{detail.get('reason', OBJECT_CREATED)} of {location.uri}",
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def launch(
    request: LaunchRequest,
    settings: LauncherSettings,
    *,
    registry: Registry,
    ec2: EC2Client,
) -> dict[str, Any]:
    """Record the run and start its instance, falling back across types, subnets and markets."""
    run_id = new_run_id(request.requested_at, request.idempotency_key)
    # Concurrency: nothing here relies on the launcher running one at a time (its reserved
    # concurrency is config, 0 by default, as a new account can reserve none; a reservation of
    # 1 only ever serialized launches, it never deduplicated them). Concurrent deliveries of
    # one event derive the same run id, and the registry's conditional put
    # (attribute_not_exists) lets exactly one create the run and launch: the others return
    # "duplicate" below, or raise RegistryConflictError, which EventBridge retries into one.
    run, created = registry.start_run(
        run_id,
        dataset_uri=request.location.uri,
        dataset_name=request.location.name,
        dataset_version=request.location.version,
        trigger=request.trigger,
        requested_by=request.requested_by,
        request_reason=request.reason,
    )
    if not created:
        log(_log, "duplicate request; nothing launched", run_id=run_id, status=run.status)
        return {
            "run_id": run_id,
            "status": "duplicate",
            "run_status": run.status,
            "instance_id": run.instance_id,
        }
    attempts: list[str] = []
    ruled_out: dict[str, str] = {}  # market -> the error code that ruled it out
    markets = (SPOT, ON_DEMAND) if settings.on_demand_fallback else (SPOT,)
    for market in markets:
        result = _try_market(
            ec2, settings, run_id=run_id, location=request.location, market=market, log_to=attempts
        )
        if isinstance(result, _Refused):
            if result.step is Step.STOP:
                return _fail(registry, run_id, f"EC2 refused the launch ({result.code})", attempts)
            ruled_out[market] = result.code
        elif isinstance(result, _Launched):
            registry.record_launch(
                run_id,
                instance_id=result.instance_id,
                instance_type=result.instance_type,
                market=market,
            )
            log(
                _log,
                "instance launched",
                run_id=run_id,
                instance_id=result.instance_id,
                instance_type=result.instance_type,
                market=market,
                subnet=result.subnet,
                failed_attempts=attempts,
                time_limit_minutes=settings.time_limit_minutes,
            )
            return {"run_id": run_id, "instance_id": result.instance_id, "market": market}
    return _fail(registry, run_id, _nothing_launched(markets, ruled_out, settings), attempts)


class _Launched(NamedTuple):
    """The instance one attempt started."""

    instance_id: str
    instance_type: str
    subnet: str


class _Refused(NamedTuple):
    """The refusal that ended a market: its next step and the error code."""

    step: Step  # NEXT_MARKET or STOP
    code: str


def _try_market(
    ec2: EC2Client,
    settings: LauncherSettings,
    *,
    run_id: str,
    location: DatasetLocation,
    market: str,
    log_to: list[str],
) -> _Launched | _Refused | None:
    """Try every subnet and type in one market, appending each refusal to `log_to`.

    The instance launched, the refusal that ends the market (NEXT_STEP), or None when every
    choice lacked capacity.
    """
    for subnet in settings.subnet_ids:
        for instance_type in settings.instance_types:
            args = _run_instances_args(
                settings,
                run_id=run_id,
                location=location,
                subnet=subnet,
                instance_type=instance_type,
                market=market,
            )
            try:
                response = ec2.run_instances(**args)
            except ClientError as err:
                code = error_code(err)
                step = NEXT_STEP.get(code, Step.STOP)
                log_to.append(f"{market} {instance_type} in {subnet}: {error_reason(err)}")
                log(
                    _log,
                    "launch attempt failed",
                    run_id=run_id,
                    attempt=log_to[-1],
                    next=step.value,
                )
                if step is Step.NEXT_TYPE:
                    continue
                if step is Step.NEXT_SUBNET:
                    break
                return _Refused(step, code)
            return _Launched(response["Instances"][0]["InstanceId"], instance_type, subnet)
    return None


def _nothing_launched(
    markets: tuple[str, ...], ruled_out: Mapping[str, str], settings: LauncherSettings
) -> str:
    """Why no market launched: the error code that ruled each out, or no capacity."""
    fallback = "" if settings.on_demand_fallback else " (on-demand fallback is off)"
    if not ruled_out:
        return f"no capacity for any choice{fallback}"
    why = (
        f"{market} ruled out by {ruled_out[market]}"
        if market in ruled_out
        else f"no {market} capacity for any choice"
        for market in markets
    )
    return "; ".join(why) + fallback


def _run_instances_args(
    settings: LauncherSettings,
    *,
    run_id: str,
    location: DatasetLocation,
    subnet: str,
    instance_type: str,
    market: str,
) -> RunInstancesRequestTypeDef:
    """RunInstances parameters for one attempt; the launch template holds everything else."""
    tags: list[TagTypeDef] = [
        {"Key": "RunId", "Value": run_id},
        {"Key": "DatasetUri", "Value": location.uri},
        {"Key": "Name", "Value": f"trainer-{run_id}"},
    ]
    template = (
        settings.launch_template_id
        if market == SPOT
        else settings.on_demand_launch_template_id or settings.launch_template_id
    )
    args: RunInstancesRequestTypeDef = {
        "LaunchTemplate": {"LaunchTemplateId": template, "Version": "$Latest"},
        "MinCount": 1,
        "MaxCount": 1,
        "SubnetId": subnet,
        "InstanceType": instance_type,  # type: ignore[typeddict-item]
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    if market == SPOT:
        # The Spot template says the same; stated here too so a call reads complete.
        args["InstanceMarketOptions"] = SPOT_OPTIONS  # type: ignore[typeddict-item]
    return args


def _fail(registry: Registry, run_id: str, summary: str, attempts: list[str]) -> dict[str, Any]:
    """End the run `failed`, listing every attempt in the reason."""
    reason = f"{summary}; attempts: " + "; ".join(attempts) if attempts else summary
    registry.finish_run(run_id, FAILED, reason)
    log(_log, "launch failed", level=logging.ERROR, run_id=run_id, reason=reason)
    return {"run_id": run_id, "status": FAILED, "reason": reason}


def newest_version(s3: S3Client, *, bucket: str, name: str) -> DatasetLocation:
    """The most recently written `datasets/<name>/<version>/data.csv`; RequestError if none."""
    newest: tuple[datetime, str] | None = None
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{DATASETS_PREFIX}{name}/"
    )
    for page in pages:
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/data.csv") and (
                newest is None or obj["LastModified"] > newest[0]
            ):
                newest = (obj["LastModified"], obj["Key"])
    if newest is None:
        raise RequestError(f"no version of dataset {name!r} in s3://{bucket}/{DATASETS_PREFIX}")
    try:
        return DatasetLocation.from_key(bucket, newest[1])
    except LocationError as err:
        raise RequestError(str(err)) from err


def handle(
    event: Mapping[str, Any],
    settings: LauncherSettings,
    *,
    registry: Registry,
    ec2: EC2Client,
    s3: S3Client | None = None,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Validate the event, then launch; a refused request records nothing and says why.

    `{"latest_of": "<name>"}` (the retrain schedule's input) trains on the dataset's newest
    version.
    """
    try:
        if "latest_of" in event:
            if s3 is None:
                raise RequestError("no S3 client to look up the newest dataset version")
            location = newest_version(
                s3, bucket=settings.dataset_bucket, name=str(event["latest_of"])
            )
            event = {
                "dataset_uri": location.uri,
                "requested_by": "schedule",
                "reason": f"scheduled retrain on the newest version, {location.version}",
            }
        request = parse_request(event, bucket=settings.dataset_bucket, now=clock())
    except RequestError as err:
        log(
            _log,
            "request refused",
            level=logging.WARNING,
            reason=str(err),
            event_id=event.get("id"),
        )
        return {"status": "refused", "reason": str(err)}
    return launch(request, settings, registry=registry, ec2=ec2)


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: settings and clients from the environment, then `handle`."""
    configure_logging()
    settings = LauncherSettings.from_env()
    # Clients are built per invocation: launches are rare, and a fresh client always sees
    # the current environment.
    registry = Registry(settings.registry_table, actor="launcher")
    return handle(
        event,
        settings,
        registry=registry,
        ec2=boto3.client("ec2", config=EC2_CONFIG),
        s3=boto3.client("s3"),
    )
