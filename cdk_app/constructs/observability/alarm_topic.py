"""The SNS topic alarms go to: encrypted with a key every publishing service may use.

A topic encrypted with a key whose policy does not let CloudWatch use it silently drops every
alarm notification, so the key policy names each publishing service explicitly.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk_app.constructs.shared.dead_letter_queue import dead_letter_queue

# Cost Anomaly Detection publishes as costalerts.amazonaws.com (its SNS topic policy).
PUBLISHERS = (
    "cloudwatch.amazonaws.com",
    "events.amazonaws.com",
    "budgets.amazonaws.com",
    "costalerts.amazonaws.com",
)
UNHEARD_WARNING = "iris-ml:alarms-reach-nobody"


class AlarmTopic(Construct):
    """KMS key (rotated) + SSL-only topic + policies for the services that publish to it."""

    def __init__(self, scope: Construct, id_: str, *, email: str) -> None:
        super().__init__(scope, id_)
        account = cdk.Stack.of(self).account
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmPublishersMayEncrypt",
                principals=[iam.ServicePrincipal(p) for p in PUBLISHERS],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Iris ML alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmPublishersMayPublish",
                principals=[iam.ServicePrincipal(p) for p in PUBLISHERS],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        self.has_email = bool(email)
        if email:
            # A message the mail server refuses waits here instead of being lost.
            undelivered = dead_letter_queue(self, "UndeliveredEmails", of="the e-mail subscription")
            self.topic.add_subscription(
                subscriptions.EmailSubscription(email, dead_letter_queue=undelivered)
            )

    def warn_if_unheard(self, *, chat: bool) -> None:
        """Warn at synth and deploy when nobody hears an alarm: no e-mail and no `chat` channel.

        An SNS topic without a subscriber delivers nothing: the alarms still change state, but
        only someone looking at the console would know.
        """
        if self.has_email or chat:
            return
        cdk.Annotations.of(self).add_warning_v2(
            UNHEARD_WARNING,
            "Alarms reach nobody: no e-mail or Slack channel subscribes to the alarm topics. Set "
            "alarm_email, or slack_workspace_id and slack_channel_id (cdk.json context or "
            "-c key=value).",
        )
