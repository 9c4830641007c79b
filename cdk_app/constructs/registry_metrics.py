"""Turns the registry's event stream into CloudWatch metrics (training runs, promotions)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from cdk_app.constructs.python_function import PythonFunction


class RegistryMetrics(Construct):
    """A function on the table's stream, invoked only for newly inserted audit events."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        registry: dynamodb.ITableV2,
        architecture: lambda_.Architecture,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        self.handler = PythonFunction(
            self,
            "Metrics",
            handler="training.registry_metrics.handler",
            description="Emits TrainingRuns and Promotions metrics from registry events",
            environment={"METRICS_NAMESPACE": "IrisML"},
            architecture=architecture,
            log_retention_days=log_retention_days,
            timeout=cdk.Duration.seconds(30),
        )
        self.handler.function.add_event_source(
            sources.DynamoEventSource(
                registry,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=100,
                bisect_batch_on_error=True,
                retry_attempts=3,
                on_failure=sources.SqsDlq(self.handler.dead_letters),
                # Only audit events (pk = EVENT) as they are inserted: runs and models churn.
                filters=[
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.is_equal("INSERT"),
                            "dynamodb": {
                                "NewImage": {"pk": {"S": lambda_.FilterRule.is_equal("EVENT")}}
                            },
                        }
                    )
                ],
            )
        )
