"""CDN monitoring stack (us-east-1): CloudFront's alarms, the cost anomaly monitor, their topic.

The alarms notify the topic here and their state changes also travel to the alert enricher in
the app's region, which follows each with its context.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.constructs.observability.alarm_forwarder import AlarmForwarder
from cdk_app.constructs.observability.alarm_topic import AlarmTopic
from cdk_app.constructs.observability.cdn_alarms import CdnAlarms
from cdk_app.constructs.observability.cost_anomaly import CostAnomalyMonitor
from stacks.api_stack import ApiStack


class CdnMonitoringStack(cdk.Stack):
    """CloudFront 5xx alarm -> a us-east-1 topic (Slack subscribes too) and the app's enricher."""

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
        AlarmForwarder(self, "Forward", alarms=self.alarms, to_region=api.region)
        if config.cost_anomaly_monitor:
            CostAnomalyMonitor(
                self,
                "CostAnomalies",
                name=config.stack_prefix,
                topic=self.topic,
                threshold_usd=config.cost_anomaly_threshold_usd,
            )
