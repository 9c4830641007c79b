"""The rehearsal's checks against the running emulator, one function per check, each bounded."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from rehearsal.emulator import ACCOUNT, ROOT
from training.contract import (
    INSTANCE_STATE_CHANGE,
    ORIGIN_HEADER,
    SEED_DATASET,
    Env,
    Output,
    Stack,
    dataset_key,
    stack_name,
)
from training.exit_codes import ExitCode

PREFIX = "iris-ml-dev"
DATA, PIPELINE, API = (stack_name(PREFIX, part) for part in (Stack.DATA, Stack.PIPELINE, Stack.API))
UPLOAD_VERSION = "rehearsal-1"
LAUNCH_TIMEOUT_S = 30.0
MONITOR_TIMEOUT_S = 30.0
POLL_S = 0.5


class CheckFailed(AssertionError):  # noqa: N818 (reads as a verdict: raise CheckFailed)
    """A check did not hold; the message names the resource and what was seen."""


@dataclasses.dataclass
class Context:
    """What the checks share: the emulator's URL and CA, the client environment, found facts."""

    url: str
    ca_bundle: Path
    env: Mapping[str, str]
    region: str
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for the emulator (the environment points boto3 there)."""
        return boto3.client(service, region_name=region or self.region)  # type: ignore[call-overload]


def outputs(ctx: Context, stack: str, region: str | None = None) -> dict[str, str]:
    """A deployed stack's outputs by key."""
    described = ctx.client("cloudformation", region).describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def wait_for(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    """Poll `probe` until it returns something truthy; CheckFailed naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what} within {timeout:.0f} s")
        time.sleep(POLL_S)


def seed_in_lake(ctx: Context) -> str:
    """The data stack's deploy-time call put iris/v1 in the data lake, byte for byte."""
    bucket = outputs(ctx, DATA)[Output.DATASET_BUCKET_NAME]
    key = dataset_key("iris", "v1")
    body = ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    if hashlib.sha256(body).digest() != hashlib.sha256(SEED_DATASET.read_bytes()).digest():
        raise CheckFailed(f"s3://{bucket}/{key} differs from {SEED_DATASET.relative_to(ROOT)}")
    ctx.facts["bucket"] = bucket
    return f"s3://{bucket}/{key} holds {SEED_DATASET.relative_to(ROOT)}"


def _upload(ctx: Context, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "upload",
            "--dataset",
            str(SEED_DATASET),
            "--dataset-version",
            version,
            "--stack-prefix",
            PREFIX,
        ],
        cwd=ROOT,
        env=dict(ctx.env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _runs(ctx: Context) -> list[dict[str, Any]]:
    table = outputs(ctx, PIPELINE)[Output.REGISTRY_TABLE_NAME]
    ctx.facts["table"] = table
    items = ctx.client("dynamodb").scan(TableName=table)["Items"]
    return [
        {k: next(iter(v.values())) for k, v in item.items()}
        for item in items
        if item["pk"]["S"] == "RUN"
    ]


def upload_starts_run(ctx: Context) -> str:
    """`training upload` -> S3 event -> EventBridge -> launcher -> registry and RunInstances."""
    done = _upload(ctx, UPLOAD_VERSION)
    if done.returncode:
        raise CheckFailed(f"upload exited {done.returncode}: {done.stderr.strip()[-400:]}")

    def launched() -> dict[str, Any] | None:
        return next(
            (
                r
                for r in _runs(ctx)
                if r.get("dataset_version") == UPLOAD_VERSION and r.get("instance_id")
            ),
            None,
        )

    try:
        run = wait_for(
            f"no run with an instance recorded for {UPLOAD_VERSION} in the registry",
            launched,
            LAUNCH_TIMEOUT_S,
        )
    except CheckFailed as err:
        launcher = outputs(ctx, PIPELINE)[Output.LAUNCHER_FUNCTION_NAME]
        raise CheckFailed(f"{err}; {launcher} logged: {function_errors(ctx, launcher)}") from err
    ctx.facts["run"] = run
    return f"run {run.get('run_id')} on {run['instance_id']}"


def instance_from_template(ctx: Context) -> str:
    """The run's instance is tagged by the launcher, in the pipeline's subnet, via its template.

    MiniStack's RunInstances accepts LaunchTemplate but applies none of it (1.5.33 uses
    templates in CreateFleet only), so the template's contents cannot be seen on the instance;
    the check is that the launcher names the stack's Spot template, which exists.
    """
    run = ctx.facts.get("run")
    if run is None:
        raise CheckFailed("no run to inspect (the upload check failed)")
    ec2 = ctx.client("ec2")
    instance = ec2.describe_instances(InstanceIds=[run["instance_id"]])["Reservations"][0][
        "Instances"
    ][0]
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    if tags.get("RunId") != run["run_id"]:
        raise CheckFailed(
            f"instance {instance['InstanceId']} has RunId {tags.get('RunId')!r}, "
            f"not {run['run_id']}"
        )
    resources = ctx.client("cloudformation").describe_stack_resources(StackName=PIPELINE)
    by_type: dict[str, dict[str, str]] = {}
    for r in resources["StackResources"]:
        by_type.setdefault(r["ResourceType"], {})[r["LogicalResourceId"]] = r["PhysicalResourceId"]
    subnets = set(by_type.get("AWS::EC2::Subnet", {}).values())
    if instance.get("SubnetId") not in subnets:
        raise CheckFailed(
            f"instance {instance['InstanceId']} is in {instance.get('SubnetId')}, "
            f"not in {sorted(subnets)}"
        )
    launcher = outputs(ctx, PIPELINE)[Output.LAUNCHER_FUNCTION_NAME]
    variables = ctx.client("lambda").get_function_configuration(FunctionName=launcher)[
        "Environment"
    ]["Variables"]
    template = variables.get(Env.LAUNCH_TEMPLATE_ID)
    spot = [
        pid
        for lid, pid in by_type.get("AWS::EC2::LaunchTemplate", {}).items()
        if "OnDemand" not in lid
    ]
    if template not in spot:
        raise CheckFailed(
            f"the launcher's LAUNCH_TEMPLATE_ID {template!r} is not the stack's Spot "
            f"template {spot}"
        )
    ec2.describe_launch_templates(LaunchTemplateIds=[template])
    return (
        f"{instance['InstanceId']} in {instance['SubnetId']}, RunId tag, "
        f"launcher uses template {template}"
    )


def function_errors(ctx: Context, function: str) -> str:
    """The last error lines in a function's log group: what names a missing grant or a bug."""
    config = ctx.client("lambda").get_function_configuration(FunctionName=function)
    group = config.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{function}"
    try:
        events = ctx.client("logs").filter_log_events(logGroupName=group)["events"]
    except ctx.client("logs").exceptions.ResourceNotFoundException:
        return f"nothing (no log group {group}: never invoked?)"
    errors = [
        e["message"].strip()
        for e in events
        if any(word in e["message"] for word in ("Error", "ERROR", "AccessDenied", "denied"))
    ]
    return " | ".join(line[:300] for line in errors[-3:]) or f"no error in {group}"


def second_upload_refused(ctx: Context) -> str:
    """Dataset versions are write-once: the same version again exits ExitCode.EXISTS."""
    done = _upload(ctx, UPLOAD_VERSION)
    if done.returncode != ExitCode.EXISTS:
        raise CheckFailed(
            f"second upload of {UPLOAD_VERSION} exited {done.returncode}, not {ExitCode.EXISTS}"
        )
    return f"exit {ExitCode.EXISTS}: {done.stderr.strip().splitlines()[-1][:120]}"


def _deliver(ctx: Context, event: dict[str, Any]) -> list[str]:
    """Deliver `event` as EventBridge would: to the Lambda targets of every rule it matches."""
    events, lambda_ = ctx.client("events"), ctx.client("lambda")
    reached = []
    for rule in events.list_rules()["Rules"]:
        pattern = rule.get("EventPattern")
        if (
            not pattern
            or not events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))[
                "Result"
            ]
        ):
            continue
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            if ":lambda:" not in target["Arn"]:
                continue
            answer = lambda_.invoke(FunctionName=target["Arn"], Payload=json.dumps(event).encode())
            if answer.get("FunctionError"):
                raise CheckFailed(
                    f"{target['Arn']} (rule {rule['Name']}) failed: "
                    f"{answer['Payload'].read()[:300]!r}"
                )
            reached.append(rule["Name"])
    return reached


def monitor_closes_run(ctx: Context) -> str:
    """The instance ends -> its state-change event -> the monitor ends the run in the registry.

    MiniStack emits no EC2 state-change event and, like AWS, refuses a PutEvents with an aws.*
    source (a stand-in, printed): the rehearsal matches the event AWS would send against every
    rule with TestEventPattern and invokes the matching rules' Lambda targets with it, so the
    rule's pattern, the monitor and its grants are real; the rule-to-Lambda permission is not.
    """
    run = ctx.facts.get("run")
    if run is None:
        raise CheckFailed("no run to close (the upload check failed)")
    instance = run["instance_id"]
    ctx.client("ec2").terminate_instances(InstanceIds=[instance])
    event = {
        "version": "0",
        "id": "rehearsal-0",
        "detail-type": INSTANCE_STATE_CHANGE,
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": ctx.region,
        "resources": [f"arn:aws:ec2:{ctx.region}:{ACCOUNT}:instance/{instance}"],
        "detail": {"instance-id": instance, "state": "terminated"},
    }
    sys.stdout.write(
        "stand-in: EC2 instance state-change event: the emulator emits none; the rehearsal "
        "delivers the one AWS sends to the rules it matches\n"
    )
    rules = _deliver(ctx, event)
    if not rules:
        raise CheckFailed(
            f"no EventBridge rule with a Lambda target matches the state change of {instance}"
        )

    def closed() -> dict[str, Any] | None:
        return next(
            (
                r
                for r in _runs(ctx)
                if r.get("instance_id") == instance
                and r.get("status") not in ("launching", "running")
            ),
            None,
        )

    ended = wait_for(f"the monitor did not end the run on {instance}", closed, MONITOR_TIMEOUT_S)
    return (
        f"rule {rules[0]}: run on {instance} is {ended['status']} ({str(ended.get('reason'))[:70]})"
    )


def _call(url: str, ca: Path, headers: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 (emulator URL)
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(request, timeout=20, context=context) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def _api_url(ctx: Context) -> str:
    api_id = outputs(ctx, API)[Output.API_ID]
    [stage] = [s["StageName"] for s in ctx.client("apigatewayv2").get_stages(ApiId=api_id)["Items"]]
    query = "sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=0.2"
    return f"{ctx.url}/_aws/execute-api/{api_id}/{stage}/predict/?{query}"


def _api_resource(ctx: Context, resource_type: str, logical_prefix: str = "") -> str:
    """The physical id of the api stack's one resource of a type (and logical id prefix)."""
    resources = ctx.client("cloudformation").describe_stack_resources(StackName=API)
    return next(
        str(r["PhysicalResourceId"])
        for r in resources["StackResources"]
        if r["ResourceType"] == resource_type and r["LogicalResourceId"].startswith(logical_prefix)
    )


def _origin_key(ctx: Context) -> str:
    secret = _api_resource(ctx, "AWS::SecretsManager::Secret")
    key: str = json.loads(
        ctx.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
    )["key"]
    return key


def _authorizer_answer(ctx: Context, headers: Mapping[str, str]) -> str:
    """What the origin lock's authorizer answers when invoked directly: why a call got a 500."""
    name = _api_resource(ctx, "AWS::Lambda::Function", "OriginLockAuthorizer")
    event = {"version": "2.0", "type": "REQUEST", "routeKey": "$default", "headers": headers}
    answer = ctx.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    payload = answer["Payload"].read().decode()[:900]
    return f"the authorizer answers {answer.get('FunctionError') or 'ok'}: {payload}"


def api_refuses_without_key(ctx: Context) -> str:
    """API Gateway refuses a call without CloudFront's origin key before any function answers.

    Without the header: 401 from API Gateway itself (a missing identity source); with a wrong
    key: 403 from the authorizer's answer. Neither response is the serving stand-in's (it
    marks its answers with x-rehearsal-standin).
    """
    found = []
    for headers, expected in (({}, 401), ({ORIGIN_HEADER: "not-the-origin-key"}, 403)):
        status, answer_headers, body = _call(_api_url(ctx), ctx.ca_bundle, headers)
        lowered = {k.lower() for k in answer_headers}
        if status != expected or "x-rehearsal-standin" in lowered:
            raise CheckFailed(
                f"a call with headers {sorted(headers)} answered {status}, not {expected} from "
                f"API Gateway: {body[:120]}; {_authorizer_answer(ctx, headers)}"
            )
        found.append(f"{status} {'without the key' if not headers else 'with a wrong key'}")
    return ", ".join(found) + ": the serving function never answered"


def api_reaches_function(ctx: Context) -> str:
    """With the origin key the authorizer admits the call to the serving function's `live` alias."""
    status, headers, body = _call(_api_url(ctx), ctx.ca_bundle, {ORIGIN_HEADER: _origin_key(ctx)})
    lowered = {k.lower(): v for k, v in headers.items()}
    if status != 200 or lowered.get("x-rehearsal-standin") != "serving":
        raise CheckFailed(
            f"a call with the origin key answered {status} {body[:200]}; "
            f"{_authorizer_answer(ctx, {ORIGIN_HEADER: 'redacted'})}"
        )
    return "200 from the serving function (its zip stand-in) with the origin key"


def stack_status(stack: Any) -> str:
    """A deployed stack's status, in its own region."""
    described = boto3.client("cloudformation", region_name=stack.region).describe_stacks(
        StackName=stack.name
    )
    status: str = described["Stacks"][0]["StackStatus"]
    return status
