"""Lambda: end training runs whose instance overran, vanished or was reclaimed without a result.

Runs every 10 minutes and on EC2 `terminated`/`stopped` state changes; each invocation sweeps
every active run, so a missed event is caught by the next schedule. It never touches a run
that has ended: the registry only finishes active runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3

from training.aws import configure_logging, env_int, log, parse_iso, require_env, utc_now
from training.contract import Env
from training.registry import FAILED, INTERRUPTED, LAUNCHING, TIMED_OUT, Registry, Run

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import InstanceTypeDef

# A launch takes seconds; a run still without an instance after this never got one.
LAUNCH_GRACE = timedelta(minutes=15)
SPOT_TERMINATION = "Server.SpotInstanceTermination"
ENDED_STATES = ("terminated", "stopped")
LIVE_STATES = ("pending", "running")
# DescribeInstances takes at most this many instance ids per filter value list.
_BATCH = 200

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorSettings:
    """The monitor's settings, from the environment the CDK sets."""

    registry_table: str
    time_limit_minutes: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorSettings:
        """Parse the settings; SettingsError names the variable that is wrong."""
        env = os.environ if environ is None else environ
        return cls(
            registry_table=require_env(env, Env.REGISTRY_TABLE),
            time_limit_minutes=env_int(env, Env.TIME_LIMIT_MINUTES),
        )


def sweep(
    settings: MonitorSettings, *, registry: Registry, ec2: EC2Client, now: datetime
) -> list[dict[str, Any]]:
    """Check every active run against its instance; return what was done to each."""
    runs = registry.active_runs()
    instances = _describe(ec2, [run.instance_id for run in runs if run.instance_id])
    limit = timedelta(minutes=settings.time_limit_minutes)
    actions = []
    for run in runs:
        action = _check(run, instances, registry=registry, ec2=ec2, now=now, limit=limit)
        if action is not None:
            actions.append(action)
    return actions


def _check(
    run: Run,
    instances: Mapping[str, InstanceTypeDef],
    *,
    registry: Registry,
    ec2: EC2Client,
    now: datetime,
    limit: timedelta,
) -> dict[str, Any] | None:
    """End one run when its instance says it must; None when it is fine."""
    started = parse_iso(run.started_at)
    instance = instances.get(run.instance_id) if run.instance_id else None
    if instance is None:
        # DescribeInstances is eventually consistent: a just-launched instance may not show.
        if now - started <= LAUNCH_GRACE:
            return None
        minutes = int(LAUNCH_GRACE.total_seconds() // 60)
        if run.instance_id is None:
            if run.status != LAUNCHING:
                return None
            return _finish(
                registry, run, FAILED, f"no instance was launched within {minutes} minutes"
            )
        return _finish(
            registry,
            run,
            FAILED,
            f"instance ended without recording a result: {run.instance_id} no longer exists",
        )
    return _check_instance(run, instance, registry=registry, ec2=ec2, now=now, limit=limit)


def _check_instance(
    run: Run,
    instance: InstanceTypeDef,
    *,
    registry: Registry,
    ec2: EC2Client,
    now: datetime,
    limit: timedelta,
) -> dict[str, Any] | None:
    """End a run whose instance ended or overran; None while it runs within its time."""
    state = instance["State"]["Name"]
    if state in ENDED_STATES:
        code = instance.get("StateReason", {}).get("Code", "")
        message = instance.get("StateReason", {}).get("Message") or state
        if code == SPOT_TERMINATION:
            return _finish(registry, run, INTERRUPTED, f"Spot instance reclaimed: {message}")
        return _finish(
            registry, run, FAILED, f"instance ended without recording a result: {message}"
        )
    launched = instance["LaunchTime"]
    if state not in LIVE_STATES or now - launched <= limit:
        return None
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    minutes = int(limit.total_seconds() // 60)
    return _finish(
        registry,
        run,
        TIMED_OUT,
        f"instance {instance['InstanceId']} ran past the {minutes}-minute time limit "
        f"(launched {launched:%Y-%m-%dT%H:%M:%SZ}); terminated",
        terminated=True,
    )


def _finish(
    registry: Registry, run: Run, status: str, reason: str, *, terminated: bool = False
) -> dict[str, Any]:
    """End the run (a no-op if it ended meanwhile) and describe the action."""
    recorded, changed = registry.finish_run(run.run_id, status, reason)
    log(
        _log,
        "run ended by the monitor" if changed else "run had already ended",
        run_id=run.run_id,
        status=recorded.status,
        reason=recorded.reason,
        instance_id=run.instance_id,
        terminated=terminated,
    )
    return {
        "run_id": run.run_id,
        "status": recorded.status,
        "reason": recorded.reason,
        "changed": changed,
        "terminated": terminated,
    }


def _describe(ec2: EC2Client, instance_ids: list[str]) -> dict[str, InstanceTypeDef]:
    """The instances that still exist, by id (a filter, unlike InstanceIds, skips missing ones)."""
    found: dict[str, InstanceTypeDef] = {}
    paginator = ec2.get_paginator("describe_instances")
    for start in range(0, len(instance_ids), _BATCH):
        batch = instance_ids[start : start + _BATCH]
        pages = paginator.paginate(Filters=[{"Name": "instance-id", "Values": batch}])
        for page in pages:
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    found[instance["InstanceId"]] = instance
    return found


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: sweep the active runs (the trigger only decides when)."""
    configure_logging()
    settings = MonitorSettings.from_env()
    log(_log, "sweep", trigger=event.get("detail-type"), detail=event.get("detail"))
    # Clients are built per invocation: a run every few minutes, and a fresh client always
    # sees the current environment.
    registry = Registry(settings.registry_table, actor="monitor")
    actions = sweep(settings, registry=registry, ec2=boto3.client("ec2"), now=utc_now())
    return {"actions": actions}
