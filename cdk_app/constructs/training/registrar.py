"""The registrar: on an ECR push of a model image, record dataset version -> image digest."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app.constructs.shared.python_function import PythonFunction
from training.contract import ECR_IMAGE_ACTION, Env


class Registrar(Construct):
    """Lambda fed by ECR push events; failures go to its dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        repository: ecr.IRepository,
        registry: dynamodb.ITableV2,
        architecture: lambda_.Architecture,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        self.handler = PythonFunction(
            self,
            "Registrar",
            handler="training.control.registrar.handler",
            description="Records pushed model images (dataset version -> digest) in the registry",
            architecture=architecture,
            log_retention_days=log_retention_days,
            timeout=cdk.Duration.seconds(30),
            environment={
                Env.REGISTRY_TABLE: registry.table_name,
                Env.REPOSITORY_NAME: repository.repository_name,
            },
        )
        registry.grant(
            self.handler.function,
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        )
        # A registered model that passed the gate is announced on the default bus; the API
        # stack's promoter takes it from there.
        events.EventBus.from_event_bus_name(self, "DefaultBus", "default").grant_put_events_to(
            self.handler.function
        )
        self.rule = events.Rule(
            self,
            "ImagePushed",
            description="A model image was pushed to the repository",
            event_pattern=events.EventPattern(
                source=["aws.ecr"],
                detail_type=[ECR_IMAGE_ACTION],
                detail={
                    "action-type": ["PUSH"],
                    "result": ["SUCCESS"],
                    "repository-name": [repository.repository_name],
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.handler.function,
                    dead_letter_queue=self.handler.dead_letters,
                    retry_attempts=4,
                    max_event_age=cdk.Duration.hours(24),
                )
            ],
        )
