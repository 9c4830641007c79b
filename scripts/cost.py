"""`make cost`: the app's estimated AWS bill, from its config and AWS list prices.

Four tables: (a) a month while idle, (b) a million predictions, (c) one training run and
(d) a SageMaker real-time endpoint for comparison. What bills by the month is counted in the
synthesized templates (alarms and the metrics they evaluate, KMS keys, dashboards, secrets, WAF
rules, schedules, NAT gateways); sizes, durations and rates are the assumptions in ASSUMPTIONS;
unit prices are the list prices in PRICES, each with its source and the day it was recorded.
Free tiers are named beside the items they cover but never subtracted.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python scripts/cost.py`: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))

from cdk_app.config import AppConfig, ConfigError  # noqa: E402
from cdk_app.prices import PRICE_REGION, PRICES, RECORDED_ON  # noqa: E402
from scripts.diagram import (  # noqa: E402
    StackTemplate,
    SynthError,
    app_context,
    load_assembly,
    parse_context,
    synthesize,
)

README: Final = ROOT / "README.md"
DOC: Final = ROOT / "docs" / "cost.md"
SEED: Final = ROOT / "training" / "datasets" / "iris" / "v1" / "data.csv"
GB: Final = 1024**3  # AWS bills GB as 2^30 bytes
MILLION: Final = 1_000_000


def _assumed(value: float, unit: str, why: str) -> Any:
    """A dataclass field holding an assumption, with its unit and its reason."""
    return dataclasses.field(default=value, metadata={"unit": unit, "why": why})


@dataclasses.dataclass(frozen=True)
class Assumptions:
    """Sizes, durations and rates the estimate rests on: none of them a price."""

    hours_per_month: float = _assumed(730, "h", "AWS's own monthly figure")
    image_gb: float = _assumed(
        0.1, "GB", "a model image in ECR, compressed (images share base layers)"
    )
    asset_gb: float = _assumed(0.1, "GB", "the serving image asset in the CDK bootstrap ECR")
    ami_snapshot_gb: float = _assumed(
        8, "GB", "a trainer AMI's snapshot: AL2023, Docker, Python and deps (upper bound)"
    )
    ami_rebuilds_per_month: float = _assumed(
        2, "", "weekly check; AL2023 publishes a new AMI about every two weeks"
    )
    ami_build_hours: float = _assumed(
        0.5, "h", "Image Builder's build instance, then its test instance, on demand"
    )
    scheduled_run_seconds: float = _assumed(
        0.3, "s", "the monitor's run: a registry query and a DescribeInstances"
    )
    scheduled_log_kb: float = _assumed(1, "KB", "START, END, REPORT and a line per scheduled run")
    response_kb: float = _assumed(1, "KB", "a prediction's JSON and headers, to the viewer")
    origin_request_kb: float = _assumed(0.6, "KB", "headers CloudFront forwards to API Gateway")
    post_body_kb: float = _assumed(0.1, "KB", "one flower in a POST body")
    app_log_kb: float = _assumed(
        0.75, "KB", "the app's JSON log line (~0.3) and EMF document (~0.45), measured"
    )
    authorizer_calls_per_month: float = _assumed(
        8_760,
        "",
        "origin-lock authorizer runs: API Gateway caches its answer 5 min per key (12 an hour)",
    )
    authorizer_ms: float = _assumed(5, "ms", "the authorizer's warm run: a compare, no AWS call")
    authorizer_memory_gb: float = _assumed(0.25, "GB", "the authorizer's memory (256 MB)")
    instances_warm: float = _assumed(
        1, "", "serving instances alive on average, each with its own trace reservoir"
    )
    access_log_kb: float = _assumed(0.25, "KB", "API Gateway's JSON access log line")
    cdn_log_kb: float = _assumed(
        0.1, "KB", "CloudFront's standard log line, gzipped in S3, kept a month"
    )
    requests_per_cold_start: int = _assumed(
        1000, "", "requests per cold start; Lambda bills a container image's init"
    )
    metric_series: int = _assumed(
        15, "", "EMF series the app writes: latency by route, predictions by class and version"
    )
    training_minutes: float = _assumed(
        15, "min", "boot, download, train, docker build and push, power off"
    )
    spot_share: float = _assumed(
        0.4, "", "Spot price as a share of on demand (it moves; check the Spot price history)"
    )
    training_s3_requests: int = _assumed(10, "", "dataset, two code assets, checksums")
    training_dynamodb_writes: int = _assumed(30, "", "run, attempts, model, image, events")
    training_dynamodb_reads: int = _assumed(30, "", "gate baseline, run state, duplicates")
    sagemaker_request_kb: float = _assumed(0.2, "KB", "a request's JSON body into SageMaker")


ASSUMPTIONS: Final = Assumptions()


@dataclasses.dataclass(frozen=True)
class Performance:
    """Measured serving times (README's Performance table, written by `make bench`)."""

    warm_ms: float
    cold_init_ms: float
    source: str


def readme_performance(text: str) -> Performance:
    """The warm POST p50 and the cold init from the README's Performance table."""
    warm = re.search(
        r"^\| warm `POST /predict`, 1 instance[^|]*\| ([\d.]+) / [\d.]+ (us|ms) ", text, re.M
    )
    cold = re.search(r"^\| cold init[^|]*\| ([\d.]+) ms ", text, re.M)
    if warm is None or cold is None:
        raise ValueError("README.md's Performance table has no warm POST or cold init row")
    scale = 0.001 if warm.group(2) == "us" else 1.0
    return Performance(float(warm.group(1)) * scale, float(cold.group(1)), "README.md")


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


# --- the estimate ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Item:
    """One line of an estimate: what, how it was counted, dollars, what a free tier covers."""

    name: str
    basis: str
    usd: float
    free: str = ""


def _usd(key: str) -> float:
    """A unit price."""
    return PRICES[key].usd


def _money(value: float) -> str:
    """`2.30`; small amounts keep four decimals so that they do not read as nothing."""
    if value == 0 or value >= 0.01:
        return f"{value:.2f}"
    return f"{value:.4f}" if value >= 0.0001 else "<0.0001"


def _lambda_gb_second(architecture: str) -> float:
    """The duration price for an architecture."""
    return _usd("lambda_arm64" if architecture == "arm64" else "lambda_x86_64")


def _ec2_hour(instance_type: str) -> float:
    """The on-demand price of an instance type, or a clear error naming the price table."""
    price = PRICES.get(f"ec2:{instance_type}")
    if price is None:
        known = ", ".join(k.removeprefix("ec2:") for k in PRICES if k.startswith("ec2:"))
        raise ValueError(
            f"no price for {instance_type} in scripts/cost.py's PRICES; add its on-demand "
            f"price there (known: {known})"
        )
    return price.usd


def _amis_kept(inv: Inventory, a: Assumptions) -> tuple[float, str]:
    """AMIs kept after the first month, and how that was reckoned."""
    if inv.ami_lifecycle_keep is not None:
        return float(inv.ami_lifecycle_keep), "kept by the lifecycle policy"
    count = 1 + a.ami_rebuilds_per_month
    return count, "after month 1"


def idle(config: AppConfig, inv: Inventory, a: Assumptions = ASSUMPTIONS) -> list[Item]:
    """What bills in a month with no traffic and no training."""
    items = [
        Item("KMS keys (alarm topics)", f"{inv.kms_keys} x $1.00", inv.kms_keys * _usd("kms_key")),
        Item(
            "CloudWatch alarms",
            f"{inv.alarms} alarms, {inv.alarm_metrics} metrics x $0.10",
            inv.alarm_metrics * _usd("alarm_metric")
            + inv.high_resolution_alarm_metrics * _usd("alarm_metric_high_resolution")
            + inv.composite_alarms * _usd("composite_alarm"),
            "10 alarm metrics",
        ),
        Item(
            "CloudWatch dashboard",
            f"{inv.dashboards} x $3.00",
            inv.dashboards * _usd("dashboard"),
            "3 dashboards",
        ),
        Item(
            "Secrets Manager (origin key)", f"{inv.secrets} x $0.40", inv.secrets * _usd("secret")
        ),
    ]
    if inv.web_acls:
        items += [
            Item("WAF web ACL", f"{inv.web_acls} x $5.00", inv.web_acls * _usd("waf_web_acl")),
            Item("WAF rules", f"{inv.waf_rules} x $1.00", inv.waf_rules * _usd("waf_rule")),
        ]
    if config.hosted_zone_id:
        items.append(Item("Route 53 hosted zone", "1 x $0.50", _usd("route53_zone")))
    if inv.nat_gateways:
        hours = inv.nat_gateways * a.hours_per_month
        items.append(
            Item("NAT gateways", f"{inv.nat_gateways} x 730 h", hours * _usd("nat_gateway"))
        )
    seed_gb = SEED.stat().st_size / GB
    images = config.max_model_images + 2
    amis, reckoning = _amis_kept(inv, a)
    rebuild_hour = (
        _ec2_hour(config.trainer_instance_types[0])
        + config.trainer_volume_gb * _usd("ebs_gp3") / a.hours_per_month
        + _usd("public_ipv4")
    )
    items += [
        Item(
            "S3 data lake and logs",
            f"{SEED.stat().st_size / 1024:.1f} KB seed + logs",
            seed_gb * _usd("s3_storage"),
            "5 GB, 12 months",
        ),
        Item(
            f"ECR images ({config.max_model_images} + live, rollback)",
            f"{images} images x {a.image_gb:g} GB",
            images * a.image_gb * _usd("ecr_storage"),
            "500 MB, 12 months",
        ),
        Item(
            "CDK assets (bootstrap ECR)",
            f"serving image {a.asset_gb:g} GB",
            a.asset_gb * _usd("ecr_storage"),
        ),
        Item(
            "Trainer AMI snapshots",
            f"{amis:g} x {a.ami_snapshot_gb:g} GB, {reckoning}",
            amis * a.ami_snapshot_gb * _usd("ebs_snapshot"),
        ),
        Item(
            "AMI rebuilds (Image Builder)",
            f"{a.ami_rebuilds_per_month:g} x {a.ami_build_hours:g} h "
            f"{config.trainer_instance_types[0]} on demand",
            a.ami_rebuilds_per_month * a.ami_build_hours * rebuild_hour,
        ),
    ]
    items += [_schedule_item(s, config, a) for s in inv.schedules]
    items.append(
        Item(
            "VPC, gateway endpoints, SQS, SNS",
            "no NAT gateway" if not inv.nat_gateways else "besides the NAT gateways",
            0.0,
        )
    )
    items.append(Item("Lambda, API GW, CloudFront, DynamoDB", "per request: none idle", 0.0))
    return items


def _schedule_item(schedule: Schedule, config: AppConfig, a: Assumptions) -> Item:
    """A scheduled function: requests, duration, and its logs ingested and kept."""
    runs = schedule.runs_per_month
    log_gb = runs * a.scheduled_log_kb * 1024 / GB
    months_kept = config.log_retention_days / 30
    usd = (
        runs / MILLION * _usd("lambda_requests")
        + runs
        * a.scheduled_run_seconds
        * schedule.memory_mb
        / 1024
        * _lambda_gb_second(schedule.architecture)
        + log_gb * (_usd("logs_ingestion") + months_kept * _usd("logs_storage"))
    )
    return Item(
        f"{schedule.name} Lambda (schedule)",
        f"{runs:,.0f} runs x {a.scheduled_run_seconds:g} s, logs",
        usd,
        "Lambda, Logs",
    )


REQUESTS: Final = ("cached GET", "uncached GET", "POST")


def per_million(
    config: AppConfig,
    inv: Inventory,
    performance: Performance,
    request: str,
    a: Assumptions = ASSUMPTIONS,
) -> list[Item]:
    """The cost of a million requests of one kind: cached GET, uncached GET or POST."""
    cdn_gb = MILLION * a.response_kb * 1024 / GB
    items = [
        Item("CloudFront requests", "HTTPS", _usd("cloudfront_https"), "10 M a month"),
        Item(
            "CloudFront data out",
            f"{a.response_kb:g} KB each",
            cdn_gb * _usd("cloudfront_out"),
            "1 TB a month",
        ),
        Item(
            "CloudFront logs in S3",
            f"{a.cdn_log_kb:g} KB each, a month",
            MILLION * a.cdn_log_kb * 1024 / GB * _usd("s3_storage"),
        ),
    ]
    if inv.web_acls:
        items.append(Item("WAF requests", "every request", _usd("waf_requests")))
    if request == "cached GET":
        return items
    to_origin = a.origin_request_kb + (a.post_body_kb if request == "POST" else 0.0)
    billed_ms = max(1, math.ceil(performance.warm_ms))
    memory_gb = config.lambda_memory_mb / 1024
    gb_second = _lambda_gb_second(config.architecture)
    cold_starts = MILLION / a.requests_per_cold_start
    # Lambda's own START/END/REPORT lines are not logged (system log level WARN).
    log_kb = a.app_log_kb + a.access_log_kb
    authorizer_usd = a.authorizer_calls_per_month * (
        _usd("lambda_requests") / MILLION
        + a.authorizer_ms / 1000 * a.authorizer_memory_gb * gb_second
    )
    items += [
        Item(
            "CloudFront to origin",
            f"{to_origin:g} KB each",
            MILLION * to_origin * 1024 / GB * _usd("cloudfront_to_origin"),
        ),
        Item("API Gateway HTTP API", "per request", _usd("api_gateway_http"), "1 M, 12 months"),
        Item(
            "Origin-lock authorizer",
            f"cached: {a.authorizer_calls_per_month:,.0f} runs a month at most",
            authorizer_usd,
            "Lambda",
        ),
        Item("Lambda requests", "per request", _usd("lambda_requests"), "1 M a month"),
        Item(
            "Lambda duration",
            f"{billed_ms} ms billed x {config.lambda_memory_mb} MB {config.architecture}",
            MILLION * billed_ms / 1000 * memory_gb * gb_second,
            "400,000 GB-s a month",
        ),
        Item(
            "Lambda cold starts (init)",
            f"1 in {a.requests_per_cold_start:,} x {performance.cold_init_ms:g} ms",
            cold_starts * performance.cold_init_ms / 1000 * memory_gb * gb_second,
        ),
    ]
    if config.tracing:
        share = traced_share(config, a)
        items.append(
            Item(
                "X-Ray traces",
                f"{share:.2%} of requests traced",
                share * _usd("xray_traces"),
                "100,000 a month",
            )
        )
    items.append(
        Item(
            "CloudWatch Logs ingestion",
            f"{log_kb:g} KB each (app line and EMF, access log)",
            MILLION * log_kb * 1024 / GB * _usd("logs_ingestion"),
            "5 GB a month",
        )
    )
    return items


def traced_share(config: AppConfig, a: Assumptions = ASSUMPTIONS) -> float:
    """Share of a million requests a month the app traces: the rate plus each reservoir."""
    reservoir = config.trace_reservoir_per_hour * a.hours_per_month * a.instances_warm / MILLION
    return min(1.0, config.trace_sample_rate + reservoir)


def with_traffic(a: Assumptions = ASSUMPTIONS) -> Item:
    """What a month with any traffic adds whatever the volume: the EMF metric series."""
    return Item(
        "CloudWatch custom metrics (EMF)",
        f"~{a.metric_series} series x $0.30, prorated by the hour",
        a.metric_series * _usd("custom_metric"),
        "first 10 metrics",
    )


def training_run(config: AppConfig, a: Assumptions = ASSUMPTIONS) -> list[Item]:
    """One run on the first trainer instance type at the assumed Spot price."""
    hours = a.training_minutes / 60
    instance = config.trainer_instance_types[0]
    on_demand = _ec2_hour(instance)
    requests = (
        a.training_s3_requests / 1000 * _usd("s3_get")
        + a.training_dynamodb_writes / MILLION * _usd("dynamodb_write")
        + a.training_dynamodb_reads / MILLION * _usd("dynamodb_read")
    )
    return [
        Item(
            f"EC2 Spot {instance}",
            f"{a.training_minutes:g} min at {a.spot_share:.0%} of ${on_demand:g}/h",
            hours * on_demand * a.spot_share,
        ),
        Item(
            "EBS gp3 root volume",
            f"{config.trainer_volume_gb} GB for {a.training_minutes:g} min",
            config.trainer_volume_gb * _usd("ebs_gp3") * hours / a.hours_per_month,
        ),
        Item("Public IPv4 address", f"{a.training_minutes:g} min", hours * _usd("public_ipv4")),
        Item("S3, DynamoDB, Lambda requests", "a few dozen", requests, "most"),
        Item(
            "New model image in ECR",
            f"{a.image_gb:g} GB, per month kept",
            a.image_gb * _usd("ecr_storage"),
        ),
    ]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A way to serve the model: its idle month and its cost per million predictions."""

    name: str
    idle: float
    per_million: float


def comparison(
    idle_total: float, uncached_total: float, a: Assumptions = ASSUMPTIONS
) -> list[Comparison]:
    """SageMaker real-time endpoints running 24/7 beside this app."""
    data_gb = MILLION * (a.sagemaker_request_kb + a.response_kb) * 1024 / GB
    rows = [
        Comparison(
            f"SageMaker {key.removeprefix('sagemaker:')} endpoint, 24/7",
            price.usd * a.hours_per_month,
            data_gb * _usd("sagemaker_data"),
        )
        for key, price in PRICES.items()
        if key.startswith("sagemaker:")
    ]
    rows.append(Comparison("This app (uncached GET)", idle_total, uncached_total))
    return rows


# --- the report -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Every table of the report."""

    config: AppConfig
    overrides: Mapping[str, str]
    inventory: Inventory
    performance: Performance
    idle: tuple[Item, ...]
    requests: Mapping[str, tuple[Item, ...]]
    with_traffic: Item
    training: tuple[Item, ...]
    comparison: tuple[Comparison, ...]

    @property
    def idle_total(self) -> float:
        """A month with no traffic and no training."""
        return sum(i.usd for i in self.idle)

    def request_total(self, request: str) -> float:
        """A million requests of one kind."""
        return sum(i.usd for i in self.requests[request])

    @property
    def training_total(self) -> float:
        """One training run, its image's first month in ECR included."""
        return sum(i.usd for i in self.training)


def estimate(
    config: AppConfig,
    stacks: Sequence[StackTemplate],
    *,
    overrides: Mapping[str, str] | None = None,
    performance: Performance | None = None,
    assumptions: Assumptions = ASSUMPTIONS,
) -> Estimate:
    """The whole estimate for a config and the templates synthesized from it."""
    inv = inventory(stacks, assumptions)
    perf = performance or readme_performance(README.read_text())
    idle_items = tuple(idle(config, inv, assumptions))
    requests = {r: tuple(per_million(config, inv, perf, r, assumptions)) for r in REQUESTS}
    idle_total = sum(i.usd for i in idle_items)
    uncached_total = sum(i.usd for i in requests["uncached GET"])
    return Estimate(
        config=config,
        overrides=dict(overrides or {}),
        inventory=inv,
        performance=perf,
        idle=idle_items,
        requests=requests,
        with_traffic=with_traffic(assumptions),
        training=tuple(training_run(config, assumptions)),
        comparison=tuple(comparison(idle_total, uncached_total, assumptions)),
    )


def _table(rows: Sequence[Sequence[str]], numbers: Sequence[int]) -> list[str]:
    """Rows as aligned text, the columns in `numbers` right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in numbers else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def _items(items: Sequence[Item], total: str, value: float, unit: str) -> list[str]:
    """An item table: name, how it was counted, dollars, the free tier that would cover it."""
    rows = [["", "counted as", unit, "free tier"]]
    rows += [[i.name, i.basis, _money(i.usd), i.free] for i in items]
    rows.append([total, "", _money(value), ""])
    return _table(rows, [2])


def format_estimate(e: Estimate) -> str:
    """The report `python scripts/cost.py` prints."""
    config, a = e.config, ASSUMPTIONS
    overrides = "".join(f" -c {k}={v}" for k, v in sorted(e.overrides.items()))
    amis_note = (
        f"  Nothing deletes old trainer AMIs (no lifecycle policy): each month adds about "
        f"${_money(a.ami_rebuilds_per_month * a.ami_snapshot_gb * _usd('ebs_snapshot'))}."
        if e.inventory.ami_lifecycle_keep is None
        else ""
    )
    lines = [
        f"Estimated AWS cost of {config.stack_prefix} in {config.region} (cdk.json{overrides})",
        f"List prices of {PRICE_REGION}, recorded on {RECORDED_ON}: they may have changed since.",
        *(
            [
                f"Priced with {PRICE_REGION}'s list, not {config.region}'s: docs/cost.md "
                "(Region) says what differs there."
            ]
            if config.region != PRICE_REGION
            else []
        ),
        "Free tiers are named, never subtracted.",
        "",
        "(a) A month while idle: no traffic, no training",
        *_items(e.idle, "Total while idle", e.idle_total, "USD/month"),
        "  KMS: each key's first two yearly rotations add $1.00 a month to it.",
        *([amis_note] if amis_note else []),
        "",
        "(b) A million predictions, USD",
    ]
    names: list[str] = []
    for request in REQUESTS:
        names += [i.name for i in e.requests[request] if i.name not in names]
    rows = [["", *REQUESTS]]
    for name in names:
        found = [{i.name: i for i in e.requests[r]}.get(name) for r in REQUESTS]
        rows.append([name, *(_money(i.usd) if i else "-" for i in found)])
    rows.append(["Total per million", *(_money(e.request_total(r)) for r in REQUESTS)])
    traffic, perf = e.with_traffic, e.performance
    lines += [
        *_table(rows, [1, 2, 3]),
        f"  Any month with traffic adds {traffic.name}:",
        f"  {traffic.basis}, ${_money(traffic.usd)} ({traffic.free} free).",
        f"  Lambda bills whole ms, 1 ms at least; warm, the handler takes {perf.warm_ms:g} ms "
        f"in process ({perf.source}).",
        *(
            [
                f"  The app traces {config.trace_sample_rate:g} of requests plus "
                f"{config.trace_reservoir_per_hour} an hour per instance (trace_sample_rate,",
                "  trace_reservoir_per_hour); tracing=false drops the line. Lambda's own tracing",
                f"  would trace every request below 1 a second (${_money(_usd('xray_traces'))}).",
            ]
            if config.tracing
            else []
        ),
        "",
        "(c) One training run",
        *_items(e.training, "Total per run", e.training_total, "USD"),
    ]
    if config.trainer_on_demand_fallback:
        hours = a.training_minutes / 60
        on_demand = _ec2_hour(config.trainer_instance_types[0]) * hours
        lines.append(f"  Without Spot capacity the instance runs on demand: ${_money(on_demand)}.")
    if config.retrain_every_days:
        runs = 30 / config.retrain_every_days
        lines.append(
            f"  retrain_every_days={config.retrain_every_days}: about {runs:.0f} runs a month, "
            f"${_money(runs * e.training_total)}."
        )
    rows = [["", "USD/month idle", "USD per million"]]
    rows += [[c.name, _money(c.idle), _money(c.per_million)] for c in e.comparison]
    lines += [
        "",
        "(d) Compared with a SageMaker real-time endpoint",
        *_table(rows, [1, 2]),
        "  The endpoint bills its instance every hour, called or not; per million: the data",
        "  it processes in and out (add API Gateway or CloudFront to make it public).",
    ]
    return "\n".join(lines) + "\n"


def price_table() -> str:
    """The unit prices as a Markdown table (docs/cost.md holds it; a test keeps it current)."""
    rows = ["| item | USD | per | source | recorded |", "|---|---|---|---|---|"]
    for price in PRICES.values():
        rows.append(
            f"| {price.what} | {price.usd:g} | {price.unit} | <{price.source}> | {price.recorded} |"
        )
    return "\n".join(rows) + "\n"


def assumption_table() -> str:
    """The assumptions as a Markdown table (docs/cost.md holds it; a test keeps it current)."""
    rows = ["| assumption | value | why |", "|---|---|---|"]
    for field in dataclasses.fields(Assumptions):
        value = f"{getattr(ASSUMPTIONS, field.name):g} {field.metadata['unit']}".strip()
        rows.append(f"| `{field.name}` | {value} | {field.metadata['why']} |")
    return "\n".join(rows) + "\n"


def _synthesized(overrides: Mapping[str, str]) -> tuple[StackTemplate, ...]:
    """The stacks of the app synthesized, with the overrides, into a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="cost-") as outdir:
        return synthesize(Path(outdir), overrides)


def doc_sections(report: str) -> dict[str, str]:
    """The generated sections of docs/cost.md: the default report, the prices, the assumptions."""
    return {
        "cost-output": f"```text\n{report}```\n",
        "prices": price_table(),
        "assumptions": assumption_table(),
    }


def update_doc(text: str, sections: Mapping[str, str]) -> str:
    """The doc with each `<!-- name -->...<!-- /name -->` section replaced."""
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.S)
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"docs/cost.md has no <!-- {name} --> section")
        text = text[: match.start()] + match.group(1) + body + match.group(2) + text[match.end() :]
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Print the estimate for cdk.json's config with any `-c key=value` overrides."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a cdk.json context value, as `cdk synth -c` does",
    )
    parser.add_argument(
        "--assembly", type=Path, help="count in this cdk.out (synthesized with the same -c)"
    )
    parser.add_argument("--prices", action="store_true", help="print the unit prices as Markdown")
    parser.add_argument(
        "--assumptions", action="store_true", help="print the assumptions as Markdown"
    )
    parser.add_argument(
        "--update-doc", action="store_true", help="rewrite docs/cost.md's generated sections"
    )
    args = parser.parse_args(argv)
    if args.prices or args.assumptions:
        sys.stdout.write(price_table() if args.prices else assumption_table())
        return 0
    try:
        overrides = parse_context(args.context)
        config = AppConfig.from_context(app_context(overrides))
    except (ValueError, ConfigError) as exc:
        parser.error(str(exc))
    try:
        stacks = load_assembly(args.assembly) if args.assembly else _synthesized(overrides)
        report = estimate(config, stacks, overrides=overrides)
    except (FileNotFoundError, SynthError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    text = format_estimate(report)
    if args.update_doc:
        if overrides:
            parser.error("--update-doc documents cdk.json's config: drop the -c overrides")
        DOC.write_text(update_doc(DOC.read_text(), doc_sections(text)))
        sys.stdout.write(f"updated {DOC.relative_to(ROOT)}\n")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
