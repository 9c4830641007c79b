"""The alert enricher: alarm, deployment and registry events become messages with context.

Alarms keep their own SNS actions, so the plain alarm arrives even if this function fails;
the enriched message follows it with the live model, the rollback target and the links.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_app.constructs.observability.alarms import Comparison, Missing, notify
from cdk_app.constructs.observability.registry_events import registry_events
from cdk_app.constructs.shared.python_function import PythonFunction
from training import contract
from training.contract import Env


class AlertEnricher(Construct):
    """A function on two EventBridge rules and the registry's stream, publishing to `topic`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        topic_key: kms.IKey,
        registry: dynamodb.ITableV2,
        alarms: Sequence[cloudwatch.Alarm],
        application: codedeploy.ILambdaApplication,
        deployment_group: codedeploy.ILambdaDeploymentGroup,
        dashboard_name: str,
        architecture: lambda_.Architecture,
        log_retention_days: int,
        runbook_url: str = contract.DEFAULT_RUNBOOK,
    ) -> None:
        super().__init__(scope, id_)
        if not alarms:
            raise ValueError("AlertEnricher needs the alarms whose state changes it enriches")
        stack = cdk.Stack.of(self)
        anchors = [[alarm.alarm_name, contract.runbook_anchor(alarm.node.id)] for alarm in alarms]
        self.handler = PythonFunction(
            self,
            "Enricher",
            handler="training.control.notify.handler.handler",
            description="Adds model, rollback target and links to alarms; posts pipeline news",
            environment={
                Env.TOPIC_ARN: topic.topic_arn,
                Env.REGISTRY_TABLE: registry.table_name,
                Env.DASHBOARD_NAME: dashboard_name,
                Env.ALARM_RUNBOOK: stack.to_json_string(anchors),
                Env.RUNBOOK_URL: runbook_url,
            },
            architecture=architecture,
            log_retention_days=log_retention_days,
            timeout=cdk.Duration.seconds(30),
        )
        function = self.handler.function
        # Not topic.grant_publish: it grants kms:GenerateDataKey*, a wildcard SNS does not need.
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="PublishToTheAlarmTopic", actions=["sns:Publish"], resources=[topic.topic_arn]
            )
        )
        # SNS encrypts with the topic's key under the publisher's own rights.
        topic_key.grant(function, "kms:GenerateDataKey", "kms:Decrypt")
        # Reads only: the live and rollback pointers, models, runs and deployments by key.
        registry.grant(function, "dynamodb:GetItem")
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadWhyADeploymentFailed",
                actions=["codedeploy:GetDeployment"],
                resources=[deployment_group.deployment_group_arn],
            )
        )
        target = targets.LambdaFunction(
            function, dead_letter_queue=self.handler.dead_letters, retry_attempts=2
        )
        self.alarm_rule = events.Rule(
            self,
            "AlarmStateChanged",
            description="One of the app's alarms changed state: enrich and publish it",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[contract.ALARM_STATE_CHANGE],
                detail={"alarmName": [alarm.alarm_name for alarm in alarms]},
            ),
            targets=[target],
        )
        self.deployment_rule = events.Rule(
            self,
            "DeploymentEnded",
            description="A serving deployment (canary, rollback, release) ended: tell the team",
            event_pattern=events.EventPattern(
                source=["aws.codedeploy"],
                detail_type=[contract.DEPLOYMENT_STATE_CHANGE],
                detail={
                    "application": [application.application_name],
                    "state": list(contract.DEPLOYMENT_ENDS),
                },
            ),
            targets=[target],
        )
        # Run outcomes and promotion starts are written with their audit event in one
        # transaction, whichever writer ends them: the stream sees every one exactly as recorded.
        function.add_event_source(
            registry_events(
                registry,
                dead_letters=self.handler.dead_letters,
                batch_size=10,
                types=contract.NEWS_EVENTS,
            )
        )
        # Its own failures notify directly, never through itself.
        self.dead_letter_alarm = notify(
            self,
            "NotifyDeadLetters",
            topic=topic,
            metric=self.handler.dead_letters.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            missing=Missing.NOT_BREACHING,
            description="The alert enricher's dead-letter queue is not empty (the plain "
            "alarms still arrived)",
        )
