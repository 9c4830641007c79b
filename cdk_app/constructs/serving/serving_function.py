"""The serving function: the live model on the deployed serving runtime, behind the `live` alias.

The image is the CDK asset built from `lambda_image/`: the serving runtime (base image, pinned
dependencies, app code) with the model files in `lambda_image/model/`. `make deploy` puts the
registry's live model there first, and the api stack refuses a deploy whose model is not the
live one (stacks/api_stack.py), so a `cdk deploy` ships code and configuration, never a model.

Every change of code or configuration publishes a new version (`current_version`, kept after
it is replaced so rollbacks have something to return to). CloudFormation never moves the alias:
it names version 1, the first version of a new function, for ever; the release custom resource
(cdk_app/constructs/serving/release.py) and promotion move it through the CodeDeploy canary.
"""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk_app.constructs.shared.lambda_role import lambda_role
from cdk_app.constructs.shared.log_group import log_group
from lambda_image.app import environment as serving_environment
from training.contract import LIVE_ALIAS, METRICS_NAMESPACE

SERVICE = serving_environment.DEFAULT_SERVICE
# A new function's first published version is always 1 (Lambda numbers versions from 1).
FIRST_VERSION = "1"


def asset_platform(architecture: lambda_.Architecture) -> ecr_assets.Platform:
    """The Docker platform of `architecture`, compared by name.

    jsii hands out a new proxy object per access, so `Architecture.ARM_64 == Architecture.ARM_64`
    is False in Python: only the names compare.
    """
    if architecture.name == lambda_.Architecture.ARM_64.name:
        return ecr_assets.Platform.LINUX_ARM64
    return ecr_assets.Platform.LINUX_AMD64


def baked_model_version(serving_dir: Path) -> str:
    """The model version in `serving_dir/model/`, the one the image asset carries."""
    metadata = json.loads((serving_dir / "model" / "metadata.json").read_text())
    return str(metadata["model_version"])


def versions_finding(function: lambda_.IFunction) -> str:
    """The cdk-nag finding id of a grant on `<function>:*`, the function's versions and aliases.

    cdk-nag writes the function's ARN as `<LogicalId.Arn>`, so the id needs the logical id of
    the function in its own stack (an ARN imported into another stack has no stable one).
    """
    cfn = function.node.default_child
    assert isinstance(cfn, cdk.CfnElement)  # noqa: S101 - the L2's documented child
    logical = cdk.Stack.of(function).get_logical_id(cfn)
    return f"AwsSolutions-IAM5[Resource::<{logical}.Arn>:*]"


class ServingFunction(Construct):
    """Image asset, function, a version per change, the `live` alias, the runtime pointer."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        serving_dir: Path,
        runtime_parameter: str,
        architecture: lambda_.Architecture,
        memory_mb: int,
        timeout_seconds: int,
        reserved_concurrency: int,
        tracing: bool,
        trace_sample_rate: float,
        trace_reservoir_per_hour: int,
        snapstart: bool,
        max_instances: int,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(serving_dir),
            platform=asset_platform(architecture),
            # Honour lambda_image/.dockerignore with Docker's own rules (negations included).
            ignore_mode=cdk.IgnoreMode.DOCKER,
        )
        self.model_version = baked_model_version(serving_dir)
        # The trainer builds each model image FROM this one, so a model image has the very
        # runtime `cdk deploy` shipped (base digest, dependencies, app code), in seconds.
        self.runtime_parameter = ssm.StringParameter(
            self,
            "RuntimeImage",
            parameter_name=runtime_parameter,
            string_value=self.image.image_uri,
            description="Serving runtime image of the last cdk deploy; the trainer builds on it",
        )

        logs = log_group(self, "Logs", retention_days=log_retention_days)
        self.logs = logs
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            code=lambda_.DockerImageCode.from_ecr(
                self.image.repository, tag_or_digest=self.image.asset_hash
            ),
            architecture=architecture,
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout_seconds),
            reserved_concurrent_executions=reserved_concurrency or None,
            # Not Active: a function that starts traces itself samples the first request each
            # second and 5% of the rest, which below 1 request/s is every one ($5 per
            # million). The app samples instead (TRACE_* below; docs/api-choice.md).
            tracing=lambda_.Tracing.PASS_THROUGH if tracing else lambda_.Tracing.DISABLED,
            # One line per request is the app's own (stdout, passed through as written);
            # WARN drops Lambda's START, END and REPORT lines, which are INFO (AWS docs:
            # monitoring-cloudwatchlogs-log-level), 0.35 KB a request nobody reads.
            logging_format=lambda_.LoggingFormat.JSON,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snapstart else None,
            log_group=logs,
            role=lambda_role(self, "Role", logs=logs, description="Iris classifier API"),
            description="Iris classifier API (FastAPI + Mangum)",
            environment={
                serving_environment.MAX_INSTANCES: str(max_instances),
                serving_environment.SERVICE_NAME: SERVICE,
                serving_environment.METRICS_NAMESPACE: METRICS_NAMESPACE,
                "LOG_LEVEL": "INFO",
                serving_environment.TRACE_SAMPLE_RATE: f"{trace_sample_rate:g}" if tracing else "0",
                serving_environment.TRACE_RESERVOIR_PER_HOUR: str(
                    trace_reservoir_per_hour if tracing else 0
                ),
            },
            # Replaced versions stay: the alias may still route to one, and rollback needs them.
            current_version_options=lambda_.VersionOptions(
                removal_policy=cdk.RemovalPolicy.RETAIN,
                description=f"model {self.model_version} on runtime {self.image.asset_hash[:12]}",
            ),
        )
        # Tracing other than Disabled gets CDK's xray:PutTraceSegments grant, which the app's
        # sampled segments use.
        cdk.Validations.of(self.function).acknowledge(
            cdk.Acknowledgment(
                id="Serverless-LambdaTracing",
                reason="Lambda's Active mode would trace every request below 1 request/s "
                "($5.00 per million); the app samples its own traces (trace_sample_rate, "
                "trace_reservoir_per_hour), or tracing=false turns them off.",
            )
        )
        cdk.Validations.of(self.function).acknowledge(
            cdk.Acknowledgment(
                id="Serverless-LambdaDLQ",
                reason="API Gateway invokes this function synchronously: a failure goes back "
                "to the caller as an HTTP error and to the 5xx alarms; no event is left to "
                "dead-letter.",
            )
        )

        # The version this deploy publishes; the release resource shifts traffic to it.
        self.version = self.function.current_version
        first = lambda_.Version.from_version_attributes(
            self, "FirstVersion", lambda_=self.function, version=FIRST_VERSION
        )
        self.alias = lambda_.Alias(self, "Live", alias_name=LIVE_ALIAS, version=first)
        # Version 1 is the one `current_version` publishes when the function is created.
        self.alias.node.add_dependency(self.version)
