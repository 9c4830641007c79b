"""Slack through AWS Chatbot: a channel configuration subscribed to the alarm topics."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct


class SlackChannel(Construct):
    """Posts every alarm topic message to one Slack channel; members can only read metrics."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        workspace_id: str,
        channel_id: str,
        topics: list[sns.ITopic],
    ) -> None:
        super().__init__(scope, id_)
        # Chatbot posts notifications without any permission; this read-only policy lets it
        # draw alarm graphs and bounds what anyone in the channel can ask for.
        read_metrics = iam.ManagedPolicy(
            self,
            "ReadMetrics",
            description="Chatbot channel: read CloudWatch alarms and metrics, nothing else",
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "cloudwatch:DescribeAlarms",
                        "cloudwatch:GetMetricData",
                        "cloudwatch:GetMetricStatistics",
                    ],
                    resources=["*"],
                )
            ],
        )
        cdk.Validations.of(read_metrics).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="CloudWatch's DescribeAlarms and GetMetric* have no resource-level "
                "permissions; the policy grants these three read calls only.",
            )
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("chatbot.amazonaws.com"),
            managed_policies=[read_metrics],
        )
        self.channel = chatbot.SlackChannelConfiguration(
            self,
            "Channel",
            slack_channel_configuration_name=f"{scope.node.id}-alarms"[:128],
            slack_workspace_id=workspace_id,
            slack_channel_id=channel_id,
            notification_topics=topics,
            role=role,
            guardrail_policies=[read_metrics],
            logging_level=chatbot.LoggingLevel.ERROR,
        )
