"""CDN monitoring stack (us-east-1): CloudFront's alarms and their topic, where its metrics are."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.constructs.alarm_topic import AlarmTopic
from cdk_app.constructs.cdn_alarms import CdnAlarms
from stacks.api_stack import ApiStack


class CdnMonitoringStack(cdk.Stack):
    """CloudFront 5xx alarm -> a us-east-1 alarm topic (Slack subscribes to it too)."""

    def __init__(
        self, scope: Construct, id_: str, *, config: AppConfig, api: ApiStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.topic = AlarmTopic(self, "Alarms", email=config.alarm_email).topic
        self.alarms = CdnAlarms(
            self,
            "Cdn",
            topic=self.topic,
            distribution_id=api.cdn.distribution.distribution_id,
            rate_percent=config.cdn_5xx_rate_percent,
        ).alarms
