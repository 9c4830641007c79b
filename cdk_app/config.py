"""Application configuration: one frozen dataclass, built from cdk.json context and validated."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from cdk_app.config_rules import (
    INSTANCE_TYPE,
    LOG_RETENTION_DAYS,
    ConfigError,
    OneOf,
    Rule,
    allowed,
    check_custom_domain,
    check_instance_types,
    check_slack_ids,
    describe,
    split_list,
)

# Callers (app.py, scripts) import ConfigError from here; __all__ makes the re-export explicit.
__all__ = ["AppConfig", "ConfigError", "cdk_json_context", "config_table"]

_OUR_KEY = re.compile(r"[a-z][a-z0-9_]*")
# cdk.json holds the CLI's settings, the feature flags and only the values that differ from a
# default below (tests/cdk_app/test_config.py fails on a repeat), so each default is written once.
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"

Environment = Literal["dev", "staging", "prod"]
Architecture = Literal["arm64", "x86_64"]
Canary = Literal[
    "Canary10Percent5Minutes",
    "Canary10Percent10Minutes",
    "Canary10Percent15Minutes",
    "Linear10PercentEvery1Minute",
    "AllAtOnce",
]


@dataclass(
    frozen=True,
    config=ConfigDict(extra="forbid", validate_default=True, str_strip_whitespace=True),
)
class AppConfig:
    """Every knob of the app; keys match cdk.json context and `cdk synth -c key=value`."""

    project_name: Annotated[
        str,
        Field(
            pattern=r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$",
            description="Prefix of stack names and tag value; lower-case letters, digits, dashes.",
        ),
    ] = "iris-ml"
    environment: Annotated[
        Environment, Field(description="Deployment stage; part of stack names and tags.")
    ] = "dev"
    region: Annotated[
        str,
        Field(
            pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$",
            description="AWS region the stacks deploy to.",
        ),
    ] = "eu-west-1"
    log_retention_days: Annotated[
        int,
        OneOf(*LOG_RETENTION_DAYS),
        Field(description="Retention of every log group the app creates, in days."),
    ] = 90
    architecture: Annotated[
        Architecture,
        Field(
            description="CPU of the trainer and the serving Lambda; the trainer builds the "
            "image natively, so both must match. arm64 (Graviton) costs about 20% less."
        ),
    ] = "arm64"

    # --- data ---------------------------------------------------------------------------------
    dataset_name: Annotated[
        str,
        Field(
            pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
            description="Dataset the pipeline trains on: `datasets/<name>/<version>/data.csv`.",
        ),
    ] = "iris"
    noncurrent_version_days: Annotated[
        int,
        Field(
            ge=1,
            le=3650,
            description="Days an overwritten or deleted object's old version is kept in the "
            "data lake (dataset versions themselves cannot be overwritten or deleted).",
        ),
    ] = 30
    access_log_days: Annotated[
        int,
        Field(ge=1, le=3650, description="Days S3 server access logs are kept."),
    ] = 365

    # --- training pipeline --------------------------------------------------------------------
    trainer_instance_types: Annotated[
        tuple[Annotated[str, Field(pattern=INSTANCE_TYPE)], ...],
        BeforeValidator(split_list),
        Rule("a comma-separated list of EC2 instance types matching the architecture"),
        Field(
            min_length=1,
            max_length=10,
            description="Spot instance types to try, in order, when capacity runs out.",
        ),
    ] = ("c7g.large", "m7g.large", "c6g.large", "m6g.large", "t4g.large")
    trainer_on_demand_fallback: Annotated[
        bool,
        Field(description="Launch on-demand when no Spot capacity is left in any type."),
    ] = True
    trainer_volume_gb: Annotated[
        int, Field(ge=20, le=200, description="Encrypted gp3 root volume of the trainer.")
    ] = 30
    training_time_limit_minutes: Annotated[
        int,
        Field(
            ge=10,
            le=720,
            description="A run still going after this is stopped and recorded as timed out.",
        ),
    ] = 60
    min_accuracy: Annotated[
        float,
        Field(ge=0.0, le=1.0, description="Quality gate: refuse a model below this accuracy."),
    ] = 0.90
    accuracy_tolerance: Annotated[
        float,
        Field(
            ge=0.0,
            le=1.0,
            description="Quality gate: accuracy a new model may lose against the live one.",
        ),
    ] = 0.02
    max_model_images: Annotated[
        int,
        Field(
            ge=2,
            le=1000,
            description="Model images ECR keeps besides the live and rollback ones.",
        ),
    ] = 20
    ami_build_schedule: Annotated[
        str,
        Field(
            pattern=r"^cron\(.+\)$",
            description="When the trainer AMI is rebuilt if its base image has updates.",
        ),
    ] = "cron(0 4 ? * SUN *)"

    # --- serving API --------------------------------------------------------------------------
    lambda_memory_mb: Annotated[
        int,
        Field(
            ge=128,
            le=10240,
            description="Memory of the serving function; CPU grows with it (1,769 MB = 1 vCPU).",
        ),
    ] = 1024
    lambda_timeout_seconds: Annotated[
        int,
        Field(
            ge=1,
            le=28,
            description="Serving function timeout; below API Gateway's 29 s integration limit.",
        ),
    ] = 10
    reserved_concurrency: Annotated[
        int,
        Field(
            ge=0,
            le=1000,
            description="Concurrent executions reserved for (and capping) the serving function; "
            "0 reserves none. Lambda keeps 100 unreserved, so a new account (quota 10) can "
            "reserve nothing: `make preflight` checks this against the account's quota.",
        ),
    ] = 0
    launcher_reserved_concurrency: Annotated[
        int,
        Field(
            ge=0,
            le=1000,
            description="Concurrent executions reserved for the training launcher (1 serializes "
            "launches); 0 reserves none, which new accounts (quota 10) require.",
        ),
    ] = 0
    tracing: Annotated[
        bool,
        Field(
            description="X-Ray traces of sampled requests, sent by the serving app (HTTP APIs "
            "take no part in X-Ray; docs/api-choice.md)."
        ),
    ] = True
    trace_sample_rate: Annotated[
        float,
        Field(
            ge=0.0,
            le=1.0,
            description="Share of requests traced beyond the reservoir ($5.00 per million "
            "traces: 0.01 costs $0.05 per million requests).",
        ),
    ] = 0.01
    trace_reservoir_per_hour: Annotated[
        int,
        Field(
            ge=0,
            le=3600,
            description="Requests each function instance traces per hour whatever the rate, so "
            "a quiet API still shows traces.",
        ),
    ] = 6
    cost_anomaly_monitor: Annotated[
        bool,
        Field(
            description="Create a Cost Anomaly Detection monitor of AWS services alerting the "
            "alarm topic; an account holds one such monitor: false if yours has one."
        ),
    ] = True
    cost_anomaly_threshold_usd: Annotated[
        int,
        Field(ge=1, le=10000, description="Alert on a cost anomaly of at least this many USD."),
    ] = 5
    snapstart: Annotated[
        bool,
        Field(
            description="Lambda SnapStart for the serving function. Off: the cache is billed "
            "for every published version around the clock, and init is ~0.4 s already."
        ),
    ] = False
    max_instances: Annotated[
        int, Field(ge=1, le=100000, description="Most instances one POST /predict may carry.")
    ] = 1000
    api_throttle_rate: Annotated[
        int, Field(ge=1, le=10000, description="API Gateway stage steady-state requests/s.")
    ] = 50
    api_throttle_burst: Annotated[
        int, Field(ge=1, le=5000, description="API Gateway stage burst, in requests.")
    ] = 100
    cache_ttl_seconds: Annotated[
        int,
        Field(
            ge=0,
            le=86400,
            description="How long CloudFront caches a GET /predict/ answer (0 disables).",
        ),
    ] = 300
    canary: Annotated[
        Canary,
        Field(description="How a newly promoted model takes traffic (CodeDeploy config)."),
    ] = "Canary10Percent5Minutes"
    domain_name: Annotated[
        str,
        Field(
            pattern=r"^$|^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$",
            description="Custom domain for CloudFront (empty: the cloudfront.net name).",
        ),
    ] = ""
    certificate_arn: Annotated[
        str,
        Field(
            pattern=r"^$|^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}$",
            description="ACM certificate in us-east-1 covering domain_name (CloudFront needs).",
        ),
    ] = ""
    hosted_zone_id: Annotated[
        str,
        Field(
            pattern=r"^$|^Z[A-Z0-9]{4,32}$",
            description="Route 53 zone of domain_name; set it to create the DNS alias records.",
        ),
    ] = ""
    origin_key_version: Annotated[
        str,
        Field(
            pattern=r"^$|^[0-9a-fA-F-]{32,36}$",
            description="Secrets Manager version id of the origin key to use (empty: the "
            "secret's first version); set it to rotate the key (docs/runbook.md).",
        ),
    ] = ""
    latency_p99_threshold_ms: Annotated[
        int,
        Field(
            ge=50,
            le=29000,
            description="API p99 latency that fails a canary (and raises the latency alarm).",
        ),
    ] = 1500
    waf_enabled: Annotated[
        bool,
        Field(
            description="A WAF web ACL on CloudFront (managed rules + rate limit); about $9 a "
            "month plus $0.60 per million requests, so off by default."
        ),
    ] = False
    waf_rate_limit: Annotated[
        int,
        Field(
            ge=10,
            le=2_000_000_000,
            description="WAF: requests one IP may make in any 5 minutes before it is blocked.",
        ),
    ] = 1000

    # --- observability ------------------------------------------------------------------------
    slack_workspace_id: Annotated[
        str,
        Field(
            pattern=r"^$|^T[A-Z0-9]{8,12}$",
            description="Slack workspace (team) id authorised in AWS Chatbot; empty: no Slack.",
        ),
    ] = ""
    slack_channel_id: Annotated[
        str,
        Field(
            pattern=r"^$|^[CG][A-Z0-9]{8,12}$",
            description="Slack channel id that receives the alarms; empty: no Slack.",
        ),
    ] = ""
    alarm_email: Annotated[
        str,
        Field(
            pattern=r"^$|^[^@\s]+@[^@\s]+\.[a-z]{2,}$",
            description="An e-mail address subscribed to the alarm topic (optional).",
        ),
    ] = ""
    monthly_budget_usd: Annotated[
        int,
        Field(ge=1, le=100000, description="Monthly AWS cost budget; alerts at 80% and 100%."),
    ] = 20
    api_5xx_rate_percent: Annotated[
        float,
        Field(ge=0.1, le=100.0, description="Alarm when this share of API answers are 5xx."),
    ] = 1.0
    api_4xx_rate_percent: Annotated[
        float,
        Field(ge=0.1, le=100.0, description="Alarm when this share of API answers are 4xx."),
    ] = 25.0
    cdn_5xx_rate_percent: Annotated[
        float,
        Field(ge=0.1, le=100.0, description="Alarm when CloudFront's 5xx error rate passes this."),
    ] = 1.0
    retrain_every_days: Annotated[
        int,
        Field(
            ge=0,
            le=6,
            description="Retrain on the newest dataset version every N days (0: only on new "
            "data); sets the 'no successful training' alarm to N+1 days.",
        ),
    ] = 0

    @model_validator(mode="after")
    def _instance_types_match_architecture(self) -> AppConfig:
        """Trainer instance types must run the configured architecture."""
        check_instance_types(self.trainer_instance_types, self.architecture)
        return self

    @model_validator(mode="after")
    def _slack_ids_come_in_pairs(self) -> AppConfig:
        """Chatbot needs both the workspace and the channel."""
        check_slack_ids(self.slack_workspace_id, self.slack_channel_id)
        return self

    @model_validator(mode="after")
    def _custom_domain_is_complete(self) -> AppConfig:
        """A custom domain needs its certificate; a zone or certificate needs the domain."""
        check_custom_domain(self.domain_name, self.certificate_arn, self.hosted_zone_id)
        return self

    @property
    def stack_prefix(self) -> str:
        """Prefix shared by every stack name, e.g. `iris-ml-dev`."""
        return f"{self.project_name}-{self.environment}"

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> AppConfig:
        """Build the config from the app's context (cdk.json plus `-c key=value`)."""
        names = [f.name for f in dataclasses.fields(cls)]
        # Our keys are snake_case; feature flags and CDK's own keys carry ':' or '-', so a
        # snake_case key we do not know is a typo that would otherwise be silently ignored.
        unknown = sorted(k for k in context if _OUR_KEY.fullmatch(k) and k not in names)
        if unknown:
            raise ConfigError(
                f"context key {unknown[0]!r} is unknown; known keys: {', '.join(names)}"
            )
        values = {name: context[name] for name in names if context.get(name) is not None}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(describe(exc, _fields())) from None

    @classmethod
    def from_cdk_json(
        cls, overrides: Mapping[str, Any] | None = None, *, path: Path = CDK_JSON
    ) -> AppConfig:
        """The config `cdk synth -c key=value` would build, read without synthesizing."""
        return cls.from_context({**cdk_json_context(path), **(overrides or {})})


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """cdk.json's `context`: what the CDK CLI passes the app before any `-c key=value`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    context = document.get("context", {}) if isinstance(document, dict) else None
    if not isinstance(context, dict):
        raise ConfigError(f"{path.name}: 'context' must be an object of key: value pairs")
    return context


def _fields() -> dict[str, FieldInfo]:
    """Pydantic's view of the config's fields: type, constraints, default, description."""
    fields: dict[str, FieldInfo] = AppConfig.__pydantic_fields__  # type: ignore[attr-defined]
    return fields


def config_table() -> str:
    """Markdown table of every knob, its default and its rule (kept in the README by a test)."""
    rows = ["| key | default | allowed | what it sets |", "|---|---|---|---|"]
    for name, field in _fields().items():
        default = json.dumps(field.default).replace("|", "\\|")
        rule = allowed(field).replace("|", "\\|")  # a bare pipe would split the table cell
        rows.append(f"| `{name}` | `{default}` | {rule} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    # `python -m cdk_app.config` prints the table for the README's configuration section.
    import sys

    sys.stdout.write(config_table() + "\n")
