"""Our Python Lambda functions: one handler's modules as code, secure and observable defaults."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from constructs import Construct

from cdk_app.constructs.shared.dead_letter_queue import dead_letter_queue
from cdk_app.constructs.shared.lambda_code import handler_code
from cdk_app.constructs.shared.lambda_role import lambda_role
from cdk_app.constructs.shared.log_group import log_group


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
            code=handler_code(handler),
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
