"""Turns the registry's event stream into CloudWatch metrics (training runs, promotions)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app.constructs.observability.registry_events import registry_events
from cdk_app.constructs.shared.python_function import PythonFunction
from training.contract import METRICS_NAMESPACE, Env


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
            handler="training.control.registry_metrics.handler",
            description="Emits TrainingRuns and Promotions metrics from registry events",
            environment={Env.METRICS_NAMESPACE: METRICS_NAMESPACE},
            architecture=architecture,
            log_retention_days=log_retention_days,
            timeout=cdk.Duration.seconds(30),
        )
        # Only audit events (pk = EVENT) as they are inserted: runs and models churn.
        self.handler.function.add_event_source(
            registry_events(registry, dead_letters=self.handler.dead_letters, batch_size=100)
        )
