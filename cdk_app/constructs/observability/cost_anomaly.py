"""Cost Anomaly Detection: a monitor of the account's spend by AWS service, alerting a topic.

Cost Explorer is global and answers in us-east-1, so this lives in the us-east-1 stack beside
the topic it alerts. An account holds one AWS-services monitor: where one exists already, set
cost_anomaly_monitor=false and subscribe the topic to it instead (docs/runbook.md).
"""

from __future__ import annotations

import json

from aws_cdk import aws_ce as ce
from aws_cdk import aws_sns as sns
from constructs import Construct


class CostAnomalyMonitor(Construct):
    """An AWS-services monitor and an immediate subscription of `topic` above `threshold_usd`."""

    def __init__(
        self, scope: Construct, id_: str, *, name: str, topic: sns.ITopic, threshold_usd: int
    ) -> None:
        super().__init__(scope, id_)
        self.monitor = ce.CfnAnomalyMonitor(
            self,
            "Monitor",
            monitor_name=f"{name}-services",
            monitor_type="DIMENSIONAL",
            monitor_dimension="SERVICE",
        )
        self.subscription = ce.CfnAnomalySubscription(
            self,
            "Alert",
            subscription_name=f"{name}-anomalies",
            monitor_arn_list=[self.monitor.attr_monitor_arn],
            # SNS subscribers take IMMEDIATE only (AWS::CE::AnomalySubscription Frequency).
            frequency="IMMEDIATE",
            subscribers=[
                ce.CfnAnomalySubscription.SubscriberProperty(type="SNS", address=topic.topic_arn)
            ],
            threshold_expression=json.dumps(
                {
                    "Dimensions": {
                        "Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                        "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
                        "Values": [str(threshold_usd)],
                    }
                }
            ),
        )
