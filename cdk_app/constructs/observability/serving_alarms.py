"""Alarms on the serving path: API Gateway rates and latency, the function's health."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_app.constructs.observability.alarms import Comparison, Missing, notify
from cdk_app.constructs.serving.http_api import api_metric

FIVE_MINUTES = cdk.Duration.minutes(5)
# Fixed, not config: an operator sizes the timeout and the reservation, and these shares follow.
# p99 past 80% of the timeout warns while there is headroom, before slow answers become timeouts
# (5xx); concurrency past 80% of the reservation warns before requests are throttled, which the
# throttles alarm reports once it happens.
DURATION_ALARM_FRACTION = 0.8
CONCURRENCY_ALARM_FRACTION = 0.8


def _rate(api: apigw.IHttpApi, errors: str) -> cloudwatch.MathExpression:
    """Percentage of API answers that were `errors` (4xx or 5xx); 0 without traffic."""
    return cloudwatch.MathExpression(
        expression="IF(requests > 0, 100 * errors / requests, 0)",
        using_metrics={
            "errors": api_metric(api, errors, "Sum", FIVE_MINUTES),
            "requests": api_metric(api, "Count", "Sum", FIVE_MINUTES),
        },
        label=f"{errors} rate (%)",
        period=FIVE_MINUTES,
    )


class ServingAlarms(Construct):
    """API 5xx and 4xx rates, p99 latency; function errors, throttles, duration, concurrency."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        api: apigw.IHttpApi,
        function: lambda_.IFunction,
        timeout_seconds: int,
        reserved_concurrency: int,
        api_5xx_rate_percent: float,
        api_4xx_rate_percent: float,
        latency_p99_threshold_ms: int,
    ) -> None:
        super().__init__(scope, id_)
        quiet = Missing.NOT_BREACHING  # no traffic is not a fault
        self.alarms = [
            notify(
                self,
                "Api5xxRate",
                topic=topic,
                metric=_rate(api, "5xx"),
                threshold=api_5xx_rate_percent,
                comparison=Comparison.GREATER_THAN_THRESHOLD,
                missing=quiet,
                description=f"More than {api_5xx_rate_percent}% of API answers are 5xx",
            ),
            notify(
                self,
                "Api4xxRate",
                topic=topic,
                metric=_rate(api, "4xx"),
                threshold=api_4xx_rate_percent,
                comparison=Comparison.GREATER_THAN_THRESHOLD,
                missing=quiet,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                description=f"More than {api_4xx_rate_percent}% of API answers are 4xx "
                "(clients sending bad input, or the origin key is wrong)",
            ),
            notify(
                self,
                "ApiLatencyP99",
                topic=topic,
                metric=api_metric(api, "Latency", "p99", FIVE_MINUTES),
                threshold=latency_p99_threshold_ms,
                comparison=Comparison.GREATER_THAN_THRESHOLD,
                missing=quiet,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                description=f"API p99 latency above {latency_p99_threshold_ms} ms",
            ),
            notify(
                self,
                "FunctionErrors",
                topic=topic,
                metric=function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                missing=quiet,
                description="The serving function raised an error (a 500 for a caller)",
            ),
            notify(
                self,
                "FunctionThrottles",
                topic=topic,
                metric=function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                missing=quiet,
                description="Requests were refused for lack of concurrency",
            ),
            notify(
                self,
                "FunctionDurationP99",
                topic=topic,
                metric=function.metric_duration(period=FIVE_MINUTES, statistic="p99"),
                threshold=round(timeout_seconds * 1000 * DURATION_ALARM_FRACTION),
                comparison=Comparison.GREATER_THAN_THRESHOLD,
                missing=quiet,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                description=f"p99 duration above {DURATION_ALARM_FRACTION:.0%} of the "
                f"{timeout_seconds} s timeout",
            ),
        ]
        if reserved_concurrency:
            self.alarms.append(
                notify(
                    self,
                    "FunctionConcurrency",
                    topic=topic,
                    metric=cloudwatch.Metric(
                        namespace="AWS/Lambda",
                        metric_name="ConcurrentExecutions",
                        dimensions_map={"FunctionName": function.function_name},
                        statistic="Maximum",
                        period=cdk.Duration.minutes(1),
                    ),
                    threshold=max(1, round(reserved_concurrency * CONCURRENCY_ALARM_FRACTION)),
                    comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    missing=quiet,
                    evaluation_periods=5,
                    datapoints_to_alarm=3,
                    description=f"Concurrency near the reservation of {reserved_concurrency}",
                )
            )
