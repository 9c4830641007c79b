"""One CloudWatch dashboard: traffic, latency, errors, cold starts, predictions, models, runs."""

from __future__ import annotations

import dataclasses

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.constructs.observability.pipeline_alarms import run_metric
from cdk_app.constructs.serving.http_api import api_metric as http_api_metric
from cdk_app.prices import PRICES

CLASSES = ("Setosa", "Versicolor", "Virginica")
OUTCOMES = ("succeeded", "rejected", "failed", "interrupted", "timed_out")
FIVE_MINUTES = cdk.Duration.minutes(5)


def dashboard_name(prefix: str) -> str:
    """The dashboard's name; the alert enricher links to it by this name."""
    return f"{prefix}-overview"


@dataclasses.dataclass(frozen=True)
class RequestCost:
    """What one uncached prediction bills besides its Lambda duration, for the cost widget."""

    memory_mb: int
    architecture: str
    traced_share: float
    # The app's line and EMF document and the API's access log line (docs/cost.md).
    log_kb: float = 1.0


def cost_per_thousand(
    api: apigw.IHttpApi, function: lambda_.IFunction, cost: RequestCost
) -> cloudwatch.MathExpression:
    """List-price USD per 1,000 requests that reached the API, from the metrics they made.

    Per request: CloudFront's request, the HTTP API's, Lambda's request, the traced share at
    X-Ray's price and the logs at CloudWatch's; plus the function's billed duration. CloudFront
    metrics live in us-east-1 and metric math takes one region, so cached answers (CloudFront
    only) are not in it.
    """
    per_request = (
        PRICES["cloudfront_https"].usd
        + PRICES["api_gateway_http"].usd
        + PRICES["lambda_requests"].usd
        + cost.traced_share * PRICES["xray_traces"].usd
    ) / 1_000_000 + cost.log_kb / (1024 * 1024) * PRICES["logs_ingestion"].usd
    per_ms = cost.memory_mb / 1024 / 1000 * PRICES[f"lambda_{cost.architecture}"].usd
    hour = cdk.Duration.hours(1)
    return cloudwatch.MathExpression(
        expression=f"IF(requests > 0, 1000 * (requests * {per_request:.10f} + "
        f"duration_ms * {per_ms:.12f}) / requests, 0)",
        using_metrics={
            "requests": http_api_metric(api, "Count", "Sum", hour),
            "duration_ms": function.metric_duration(statistic="Sum", period=hour),
        },
        label="USD per 1,000",
        period=hour,
    )


class SystemDashboard(Construct):
    """The dashboard; metrics use the names the app, the API and the registry emit."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        api: apigw.IHttpApi,
        function: lambda_.IFunction,
        function_logs: logs.ILogGroup,
        distribution_id: str,
        metrics_namespace: str,
        service: str,
        alarms: list[cloudwatch.IAlarm],
        cost: RequestCost,
    ) -> None:
        super().__init__(scope, id_)

        def api_metric(metric_name: str, statistic: str) -> cloudwatch.Metric:
            return http_api_metric(
                api, metric_name, statistic, FIVE_MINUTES, label=f"API {metric_name} {statistic}"
            )

        def cdn_metric(metric_name: str, statistic: str) -> cloudwatch.Metric:
            # CloudFront publishes its metrics in us-east-1 only.
            return cloudwatch.Metric(
                namespace="AWS/CloudFront",
                metric_name=metric_name,
                dimensions_map={"DistributionId": distribution_id, "Region": "Global"},
                statistic=statistic,
                period=FIVE_MINUTES,
                region="us-east-1",
                label=f"CloudFront {metric_name}",
            )

        def app_metric(metric_name: str, **dims: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=metrics_namespace,
                metric_name=metric_name,
                dimensions_map={"service": service, **dims},
                statistic="Sum",
                period=FIVE_MINUTES,
                label=next(iter(dims.values()), metric_name),
            )

        percentiles = ("p50", "p90", "p99")
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name(name),
            default_interval=cdk.Duration.hours(6),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=4)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Requests",
                left=[api_metric("Count", "Sum"), cdn_metric("Requests", "Sum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[api_metric("Latency", p) for p in percentiles],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Function duration (ms)",
                left=[
                    function.metric_duration(statistic=p, period=FIVE_MINUTES, label=p)
                    for p in percentiles
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Errors",
                left=[
                    api_metric("4xx", "Sum"),
                    api_metric("5xx", "Sum"),
                    function.metric_errors(period=FIVE_MINUTES, label="function errors"),
                    function.metric_throttles(period=FIVE_MINUTES, label="throttles"),
                ],
                right=[cdn_metric("5xxErrorRate", "Average")],
                width=12,
            ),
            cloudwatch.LogQueryWidget(
                # From the app's own line: Lambda's REPORT lines are not logged (WARN level).
                title="Cold starts (the app's first request per instance)",
                log_group_names=[function_logs.log_group_name],
                query_lines=[
                    "filter ispresent(cold_start)",
                    "stats count(*) as requests, sum(cold_start) as cold_starts, "
                    "avg(latency_ms) as avg_ms by bin(1h)",
                ],
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Estimated USD per 1,000 uncached predictions (list prices, docs/cost.md)",
                left=[cost_per_thousand(api, function, cost)],
                left_y_axis=cloudwatch.YAxisProps(min=0),
                width=24,
                height=5,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Predictions per class",
                left=[app_metric("Predictions", iris_type=c) for c in CLASSES],
                stacked=True,
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Live model version (predictions served, by version)",
                left=[
                    cloudwatch.MathExpression(
                        expression=(
                            f"SEARCH('{{{metrics_namespace},model_version,service}} "
                            f'MetricName="Predictions" service="{service}"\', \'Sum\', 300)'
                        ),
                        label="",
                        period=FIVE_MINUTES,
                    )
                ],
                stacked=True,
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Training runs by outcome",
                left=[run_metric(o, cdk.Duration.hours(1)) for o in OUTCOMES],
                stacked=True,
                width=8,
            ),
        )
