"""Our Python Lambda functions: the `training` package as code, secure and observable defaults."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from constructs import Construct

from cdk_app.constructs.shared.dead_letter_queue import dead_letter_queue
from cdk_app.constructs.shared.lambda_role import lambda_role
from cdk_app.constructs.shared.log_group import log_group

TRAINING_PACKAGE = Path(__file__).resolve().parents[3] / "training"
# What the functions need of the package: its modules, not the bundled datasets.
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "datasets")


@jsii.implements(cdk.ILocalBundling)
class _StagePackage:
    """Lays the package out as `training/...` so handlers import `training.<module>`."""

    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        """Copy the package into the asset folder; no Docker, no network."""
        shutil.copytree(TRAINING_PACKAGE, Path(output_dir) / "training", ignore=_IGNORE)
        return True


def training_code() -> lambda_.Code:
    """The `training` package as a Lambda code asset, hashed by content."""
    return lambda_.Code.from_asset(
        str(TRAINING_PACKAGE),
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds. CDK requires an image regardless.
            image=cdk.DockerImage.from_registry("public.ecr.aws/docker/library/busybox"),
            local=_StagePackage(),
        ),
    )


class PythonFunction(Construct):
    """A Lambda function running `training.<module>.handler` with a DLQ, logs and tracing."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        handler: str,
        description: str,
        environment: dict[str, str],
        architecture: lambda_.Architecture,
        log_retention_days: int,
        timeout: cdk.Duration,
        memory_size: int = 256,
    ) -> None:
        super().__init__(scope, id_)
        # Asynchronous invocations (EventBridge targets) that fail after Lambda's retries land
        # here instead of vanishing.
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", of=f"the function's asynchronous invocations ({description})"
        )
        logs = log_group(self, "Logs", retention_days=log_retention_days)
        self.role = lambda_role(self, "Role", logs=logs, description=description)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            role=self.role,
            architecture=architecture,
            code=training_code(),
            handler=handler,
            description=description,
            environment={"LOG_LEVEL": "INFO", **environment},
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=logs,
            on_failure=destinations.SqsDestination(self.dead_letters),
            retry_attempts=2,
        )
        cdk.Validations.of(self.function).acknowledge(
            cdk.Acknowledgment(
                id="Serverless-LambdaDLQ",
                reason="Failed asynchronous invocations go to the on-failure destination (the "
                "SQS queue above), which records the error with the event; a DeadLetterConfig "
                "on top would deliver every failure twice.",
            )
        )
