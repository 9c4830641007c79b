"""The bill, line by line: idle, per million requests, one training run, and the comparison."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Imported by scripts/cost.py, run as a script: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))

from cdk_app.config import AppConfig  # noqa: E402
from cdk_app.prices import PRICES  # noqa: E402
from scripts.cost_inputs import (  # noqa: E402
    ASSUMPTIONS,
    GB,
    MILLION,
    Assumptions,
    Inventory,
    Performance,
    Schedule,
)
from training.contract import SEED_DATASET  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Item:
    """One line of an estimate: what, how it was counted, dollars, what a free tier covers."""

    name: str
    basis: str
    usd: float
    free: str = ""


def usd(key: str) -> float:
    """A unit price."""
    return PRICES[key].usd


def money(value: float) -> str:
    """`2.30`; small amounts keep four decimals so that they do not read as nothing."""
    if value == 0 or value >= 0.01:
        return f"{value:.2f}"
    return f"{value:.4f}" if value >= 0.0001 else "<0.0001"


def _lambda_gb_second(architecture: str) -> float:
    """The duration price for an architecture."""
    return usd("lambda_arm64" if architecture == "arm64" else "lambda_x86_64")


def ec2_hour(instance_type: str) -> float:
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
        Item(
            "KMS keys (alarm topics)",
            f"{inv.kms_keys} x $1.00",
            inv.kms_keys * usd("kms_key"),
        ),
        Item(
            "CloudWatch alarms",
            f"{inv.alarms} alarms, {inv.alarm_metrics} metrics x $0.10",
            inv.alarm_metrics * usd("alarm_metric")
            + inv.high_resolution_alarm_metrics * usd("alarm_metric_high_resolution")
            + inv.composite_alarms * usd("composite_alarm"),
            "10 alarm metrics",
        ),
        Item(
            "CloudWatch dashboard",
            f"{inv.dashboards} x $3.00",
            inv.dashboards * usd("dashboard"),
            "3 dashboards",
        ),
        Item(
            "Secrets Manager (origin key)",
            f"{inv.secrets} x $0.40",
            inv.secrets * usd("secret"),
        ),
    ]
    if inv.web_acls:
        items += [
            Item("WAF web ACL", f"{inv.web_acls} x $5.00", inv.web_acls * usd("waf_web_acl")),
            Item("WAF rules", f"{inv.waf_rules} x $1.00", inv.waf_rules * usd("waf_rule")),
        ]
    if config.hosted_zone_id:
        items.append(Item("Route 53 hosted zone", "1 x $0.50", usd("route53_zone")))
    if inv.nat_gateways:
        hours = inv.nat_gateways * a.hours_per_month
        items.append(
            Item("NAT gateways", f"{inv.nat_gateways} x 730 h", hours * usd("nat_gateway"))
        )
    seed_gb = SEED_DATASET.stat().st_size / GB
    images = config.max_model_images + 2
    amis, reckoning = _amis_kept(inv, a)
    rebuild_hour = (
        ec2_hour(config.trainer_instance_types[0])
        + config.trainer_volume_gb * usd("ebs_gp3") / a.hours_per_month
        + usd("public_ipv4")
    )
    items += [
        Item(
            "S3 data lake and logs",
            f"{SEED_DATASET.stat().st_size / 1024:.1f} KB seed + logs",
            seed_gb * usd("s3_storage"),
            "5 GB, 12 months",
        ),
        Item(
            f"ECR images ({config.max_model_images} + live, rollback)",
            f"{images} images x {a.image_gb:g} GB",
            images * a.image_gb * usd("ecr_storage"),
            "500 MB, 12 months",
        ),
        Item(
            "CDK assets (bootstrap ECR)",
            f"serving image {a.asset_gb:g} GB",
            a.asset_gb * usd("ecr_storage"),
        ),
        Item(
            "Trainer AMI snapshots",
            f"{amis:g} x {a.ami_snapshot_gb:g} GB, {reckoning}",
            amis * a.ami_snapshot_gb * usd("ebs_snapshot"),
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
    total = (
        runs / MILLION * usd("lambda_requests")
        + runs
        * a.scheduled_run_seconds
        * schedule.memory_mb
        / 1024
        * _lambda_gb_second(schedule.architecture)
        + log_gb * (usd("logs_ingestion") + months_kept * usd("logs_storage"))
    )
    return Item(
        f"{schedule.name} Lambda (schedule)",
        f"{runs:,.0f} runs x {a.scheduled_run_seconds:g} s, logs",
        total,
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
        Item("CloudFront requests", "HTTPS", usd("cloudfront_https"), "10 M a month"),
        Item(
            "CloudFront data out",
            f"{a.response_kb:g} KB each",
            cdn_gb * usd("cloudfront_out"),
            "1 TB a month",
        ),
        Item(
            "CloudFront logs in S3",
            f"{a.cdn_log_kb:g} KB each, a month",
            MILLION * a.cdn_log_kb * 1024 / GB * usd("s3_storage"),
        ),
    ]
    if inv.web_acls:
        items.append(Item("WAF requests", "every request", usd("waf_requests")))
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
        usd("lambda_requests") / MILLION
        + a.authorizer_ms / 1000 * a.authorizer_memory_gb * gb_second
    )
    items += [
        Item(
            "CloudFront to origin",
            f"{to_origin:g} KB each",
            MILLION * to_origin * 1024 / GB * usd("cloudfront_to_origin"),
        ),
        Item("API Gateway HTTP API", "per request", usd("api_gateway_http"), "1 M, 12 months"),
        Item(
            "Origin-lock authorizer",
            f"cached: {a.authorizer_calls_per_month:,.0f} runs a month at most",
            authorizer_usd,
            "Lambda",
        ),
        Item("Lambda requests", "per request", usd("lambda_requests"), "1 M a month"),
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
                share * usd("xray_traces"),
                "100,000 a month",
            )
        )
    items.append(
        Item(
            "CloudWatch Logs ingestion",
            f"{log_kb:g} KB each (app line and EMF, access log)",
            MILLION * log_kb * 1024 / GB * usd("logs_ingestion"),
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
        a.metric_series * usd("custom_metric"),
        "first 10 metrics",
    )


def training_run(config: AppConfig, a: Assumptions = ASSUMPTIONS) -> list[Item]:
    """One run on the first trainer instance type at the assumed Spot price."""
    hours = a.training_minutes / 60
    instance = config.trainer_instance_types[0]
    on_demand = ec2_hour(instance)
    requests = (
        a.training_s3_requests / 1000 * usd("s3_get")
        + a.training_dynamodb_writes / MILLION * usd("dynamodb_write")
        + a.training_dynamodb_reads / MILLION * usd("dynamodb_read")
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
            config.trainer_volume_gb * usd("ebs_gp3") * hours / a.hours_per_month,
        ),
        Item("Public IPv4 address", f"{a.training_minutes:g} min", hours * usd("public_ipv4")),
        Item("S3, DynamoDB, Lambda requests", "a few dozen", requests, "most"),
        Item(
            "New model image in ECR",
            f"{a.image_gb:g} GB, per month kept",
            a.image_gb * usd("ecr_storage"),
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
            data_gb * usd("sagemaker_data"),
        )
        for key, price in PRICES.items()
        if key.startswith("sagemaker:")
    ]
    rows.append(Comparison("This app (uncached GET)", idle_total, uncached_total))
    return rows
