"""The serving function: the container image Lambda behind the `live` alias, drift-proof.

No drift: the function's image is not the template's image asset. Its ImageUri is a dynamic
reference to an SSM parameter (`{{resolve:ssm:...}}`) that holds the live image; CloudFormation
creates the parameter once, with the image asset, and never writes it again (promotion does).
The alias points at a version published once at creation, and its properties never change, so
CloudFormation never moves it either. A later `cdk deploy`, with or without a changed
`lambda_image/`, therefore leaves the served model alone. docs/promotion.md has the details.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_app.constructs.lambda_role import lambda_role
from cdk_app.constructs.log_group import log_group
from cdk_app.constructs.sdk_call import DeployTimeCall

LIVE_ALIAS = "live"
# The app's EMF metrics land here; the dashboard and alarms read the same names.
METRICS_NAMESPACE = "IrisML"
SERVICE = "iris-api"


class ServingFunction(Construct):
    """Image asset, function, first version, `live` alias and the live-image pointer."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        serving_dir: Path,
        name: str,
        architecture: lambda_.Architecture,
        memory_mb: int,
        timeout_seconds: int,
        reserved_concurrency: int,
        tracing: bool,
        snapstart: bool,
        max_instances: int,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        platform = (
            ecr_assets.Platform.LINUX_ARM64
            if architecture == lambda_.Architecture.ARM_64
            else ecr_assets.Platform.LINUX_AMD64
        )
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(serving_dir),
            platform=platform,
            # Honour lambda_image/.dockerignore with Docker's own rules (negations included).
            ignore_mode=cdk.IgnoreMode.DOCKER,
        )
        self.live_image_parameter = f"/{name}/serving/live-image-uri"
        seed = cr.AwsSdkCall(
            service="SSM",
            action="putParameter",
            parameters={
                "Name": self.live_image_parameter,
                "Value": self.image.image_uri,
                "Type": "String",
                "Overwrite": False,
                "Description": "Image the serving function runs; promotion and rollback move it",
            },
            physical_resource_id=cr.PhysicalResourceId.of(self.live_image_parameter),
            # Written once: after that the pointer belongs to promotion, not to CloudFormation.
            ignore_error_codes_matching="ParameterAlreadyExists",
        )
        pointer = DeployTimeCall(
            self,
            "LiveImagePointer",
            call=seed,
            statements=[
                iam.PolicyStatement(
                    actions=["ssm:PutParameter"],
                    resources=[
                        cdk.Stack.of(self).format_arn(
                            service="ssm",
                            resource="parameter",
                            resource_name=self.live_image_parameter.lstrip("/"),
                        )
                    ],
                )
            ],
            log_retention_days=log_retention_days,
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
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snapstart else None,
            log_group=logs,
            role=lambda_role(self, "Role", logs=logs, description="Iris classifier API"),
            description="Iris classifier API (FastAPI + Mangum); image moved by promotion",
            environment={
                "MAX_INSTANCES": str(max_instances),
                "POWERTOOLS_SERVICE_NAME": SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": "INFO",
            },
        )
        cfn = self.function.node.default_child
        assert isinstance(cfn, lambda_.CfnFunction)  # noqa: S101 - the L2's documented child
        cfn.add_property_override(
            "Code.ImageUri", f"{{{{resolve:ssm:{self.live_image_parameter}}}}}"
        )
        self.function.node.add_dependency(pointer)
        if not tracing:
            cdk.Validations.of(self.function).acknowledge(
                cdk.Acknowledgment(
                    id="Serverless-LambdaTracing",
                    reason="X-Ray tracing is switched off in config (tracing=false).",
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

        # Published once; promotion publishes the next ones outside CloudFormation.
        self.first_version = lambda_.Version(
            self,
            "FirstVersion",
            lambda_=self.function,
            description="the image asset of the first deployment",
        )
        self.alias = lambda_.Alias(self, "Live", alias_name=LIVE_ALIAS, version=self.first_version)
