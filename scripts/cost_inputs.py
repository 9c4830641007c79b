"""What the estimate starts from: the assumptions, the measured serving times, the inventory."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Imported by scripts/cost.py, run as a script: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))

from scripts.assembly import (  # noqa: E402
    StackTemplate,
)

BENCH_RESULTS: Final = ROOT / "bench" / "results.json"
GB: Final = 1024**3  # AWS bills GB as 2^30 bytes
MILLION: Final = 1_000_000


def assumed(value: float, unit: str, why: str) -> Any:
    """A dataclass field holding an assumption, with its unit and its reason."""
    return dataclasses.field(default=value, metadata={"unit": unit, "why": why})


@dataclasses.dataclass(frozen=True)
class Assumptions:
    """Sizes, durations and rates the estimate rests on: none of them a price."""

    hours_per_month: float = assumed(730, "h", "AWS's own monthly figure")
    image_gb: float = assumed(
        0.1, "GB", "a model image in ECR, compressed (images share base layers)"
    )
    asset_gb: float = assumed(0.1, "GB", "the serving image asset in the CDK bootstrap ECR")
    ami_snapshot_gb: float = assumed(
        8, "GB", "a trainer AMI's snapshot: AL2023, Docker, Python and deps (upper bound)"
    )
    ami_rebuilds_per_month: float = assumed(
        2, "", "weekly check; AL2023 publishes a new AMI about every two weeks"
    )
    ami_build_hours: float = assumed(
        0.5, "h", "Image Builder's build instance, then its test instance, on demand"
    )
    scheduled_run_seconds: float = assumed(
        0.3, "s", "the monitor's run: a registry query and a DescribeInstances"
    )
    scheduled_log_kb: float = assumed(1, "KB", "START, END, REPORT and a line per scheduled run")
    response_kb: float = assumed(1, "KB", "a prediction's JSON and headers, to the viewer")
    origin_request_kb: float = assumed(0.6, "KB", "headers CloudFront forwards to API Gateway")
    post_body_kb: float = assumed(0.1, "KB", "one flower in a POST body")
    app_log_kb: float = assumed(
        0.75, "KB", "the app's JSON log line (~0.3) and EMF document (~0.45), measured"
    )
    authorizer_calls_per_month: float = assumed(
        8_760,
        "",
        "origin-lock authorizer runs: API Gateway caches its answer 5 min per key (12 an hour)",
    )
    authorizer_ms: float = assumed(5, "ms", "the authorizer's warm run: a compare, no AWS call")
    authorizer_memory_gb: float = assumed(0.25, "GB", "the authorizer's memory (256 MB)")
    instances_warm: float = assumed(
        1, "", "serving instances alive on average, each with its own trace reservoir"
    )
    access_log_kb: float = assumed(0.25, "KB", "API Gateway's JSON access log line")
    cdn_log_kb: float = assumed(
        0.1, "KB", "CloudFront's standard log line, gzipped in S3, kept a month"
    )
    requests_per_cold_start: int = assumed(
        1000, "", "requests per cold start; Lambda bills a container image's init"
    )
    metric_series: int = assumed(
        15, "", "EMF series the app writes: latency by route, predictions by class and version"
    )
    training_minutes: float = assumed(
        15, "min", "boot, download, train, docker build and push, power off"
    )
    spot_share: float = assumed(
        0.4, "", "Spot price as a share of on demand (it moves; check the Spot price history)"
    )
    training_s3_requests: int = assumed(10, "", "dataset, two code assets, checksums")
    training_dynamodb_writes: int = assumed(30, "", "run, attempts, model, image, events")
    training_dynamodb_reads: int = assumed(30, "", "gate baseline, run state, duplicates")
    sagemaker_request_kb: float = assumed(0.2, "KB", "a request's JSON body into SageMaker")


ASSUMPTIONS: Final = Assumptions()


@dataclasses.dataclass(frozen=True)
class Performance:
    """Measured serving times (bench/results.json, written by `make bench`)."""

    warm_ms: float
    cold_init_ms: float
    source: str


def bench_performance(path: Path = BENCH_RESULTS) -> Performance:
    """Our app's warm POST p50 and cold init from the benchmark's last recorded run."""
    try:
        figures = json.loads(path.read_text())["figures"]
        warm, cold = figures["warm_post_p50_s"]["ours"], figures["cold_init_s"]["ours"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} has no warm_post_p50_s and cold_init_s figures ({exc}): run make bench"
        ) from None
    source = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    return Performance(float(warm) * 1e3, float(cold) * 1e3, source)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A Lambda function an EventBridge schedule invokes while nobody calls the API."""

    name: str
    runs_per_month: float
    memory_mb: int
    architecture: str


@dataclasses.dataclass(frozen=True)
class Inventory:
    """What the synthesized templates hold that bills by the month."""

    alarms: int
    alarm_metrics: int
    high_resolution_alarm_metrics: int
    composite_alarms: int
    kms_keys: int
    dashboards: int
    secrets: int
    web_acls: int
    waf_rules: int
    nat_gateways: int
    schedules: tuple[Schedule, ...]
    ami_lifecycle_keep: int | None  # AMIs an Image Builder lifecycle policy keeps; None: all


def _count(stacks: Sequence[StackTemplate], kind: str) -> int:
    """How many resources of a type the templates hold."""
    return sum(1 for s in stacks for r in s.resources.values() if r["Type"] == kind)


def _alarm_metrics(properties: Mapping[str, Any]) -> tuple[int, bool]:
    """Metrics an alarm evaluates (what CloudWatch bills) and whether it is high-resolution."""
    stats = [m["MetricStat"] for m in properties.get("Metrics", []) if "MetricStat" in m]
    if not stats:
        return 1, int(properties.get("Period", 60)) < 60
    return len(stats), min(int(s.get("Period", 60)) for s in stats) < 60


def _runs_per_month(expression: str, hours: float) -> float:
    """Invocations a month of `rate(...)`; 0 for cron, which the estimate does not expand."""
    match = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression)
    if match is None:
        return 0.0
    minutes = int(match.group(1)) * {"minute": 1, "hour": 60, "day": 1440}[match.group(2)]
    return hours * 60 / minutes


def _schedules(stacks: Sequence[StackTemplate], hours: float) -> tuple[Schedule, ...]:
    """Lambda functions invoked by enabled EventBridge schedules."""
    found = []
    for stack in stacks:
        for rule in stack.resources.values():
            properties = rule.get("Properties", {})
            expression = properties.get("ScheduleExpression")
            if rule["Type"] != "AWS::Events::Rule" or not expression:
                continue
            if properties.get("State", "ENABLED") != "ENABLED":
                continue
            for target in properties.get("Targets", []):
                arn = target.get("Arn", {})
                logical_id = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
                function = stack.resources.get(str(logical_id), {})
                if function.get("Type") != "AWS::Lambda::Function":
                    continue
                settings = function["Properties"]
                path = str(function.get("Metadata", {}).get("aws:cdk:path", logical_id))
                found.append(
                    Schedule(
                        name=path.removesuffix("/Function/Resource").rsplit("/", 1)[-1],
                        runs_per_month=_runs_per_month(str(expression), hours),
                        memory_mb=int(settings.get("MemorySize", 128)),
                        architecture=(settings.get("Architectures") or ["x86_64"])[0],
                    )
                )
    return tuple(found)


def _ami_lifecycle_keep(stacks: Sequence[StackTemplate]) -> int | None:
    """The count an Image Builder lifecycle policy keeps, if the templates hold one."""
    for stack in stacks:
        for resource in stack.resources.values():
            if resource["Type"] != "AWS::ImageBuilder::LifecyclePolicy":
                continue
            for rule in resource.get("Properties", {}).get("PolicyDetails", []):
                kind = rule.get("Filter", {})
                if kind.get("Type") == "COUNT":
                    return int(kind["Value"])
    return None


def inventory(stacks: Sequence[StackTemplate], assumptions: Assumptions = ASSUMPTIONS) -> Inventory:
    """Count what bills by the month in the synthesized templates."""
    metrics = high = alarms = 0
    for stack in stacks:
        for resource in stack.resources.values():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                count, high_resolution = _alarm_metrics(resource.get("Properties", {}))
                alarms += 1
                metrics += 0 if high_resolution else count
                high += count if high_resolution else 0
    rules = sum(
        len(r.get("Properties", {}).get("Rules", []))
        for s in stacks
        for r in s.resources.values()
        if r["Type"] == "AWS::WAFv2::WebACL"
    )
    return Inventory(
        alarms=alarms,
        alarm_metrics=metrics,
        high_resolution_alarm_metrics=high,
        composite_alarms=_count(stacks, "AWS::CloudWatch::CompositeAlarm"),
        kms_keys=_count(stacks, "AWS::KMS::Key"),
        dashboards=_count(stacks, "AWS::CloudWatch::Dashboard"),
        secrets=_count(stacks, "AWS::SecretsManager::Secret"),
        web_acls=_count(stacks, "AWS::WAFv2::WebACL"),
        waf_rules=rules,
        nat_gateways=_count(stacks, "AWS::EC2::NatGateway"),
        schedules=_schedules(stacks, assumptions.hours_per_month),
        ami_lifecycle_keep=_ami_lifecycle_keep(stacks),
    )
