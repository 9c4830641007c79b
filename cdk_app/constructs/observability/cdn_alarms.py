"""CloudFront's 5xx alarm, which must live in us-east-1 where CloudFront publishes metrics."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_app.constructs.observability.alarms import Comparison, Missing, notify


class CdnAlarms(Construct):
    """5xx error rate of the distribution, as CloudFront reports it (percent)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        distribution_id: str,
        rate_percent: float,
    ) -> None:
        super().__init__(scope, id_)
        self.alarms = [
            notify(
                self,
                "Cdn5xxRate",
                topic=topic,
                metric=cloudwatch.Metric(
                    namespace="AWS/CloudFront",
                    metric_name="5xxErrorRate",
                    dimensions_map={"DistributionId": distribution_id, "Region": "Global"},
                    statistic="Average",
                    period=cdk.Duration.minutes(5),
                ),
                threshold=rate_percent,
                comparison=Comparison.GREATER_THAN_THRESHOLD,
                missing=Missing.NOT_BREACHING,
                description=f"More than {rate_percent}% of CloudFront answers are 5xx",
            )
        ]
