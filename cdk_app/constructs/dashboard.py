"""One CloudWatch dashboard: traffic, latency, errors, cold starts, predictions, models, runs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.constructs.pipeline_alarms import run_metric

CLASSES = ("Setosa", "Versicolor", "Virginica")
OUTCOMES = ("succeeded", "rejected", "failed", "interrupted", "timed_out")
FIVE_MINUTES = cdk.Duration.minutes(5)


def dashboard_name(prefix: str) -> str:
    """The dashboard's name; the alert enricher links to it by this name."""
    return f"{prefix}-overview"


class SystemDashboard(Construct):
    """The dashboard; metrics use the names the app, the API and the registry emit."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        api: apigw.RestApi,
        stage: str,
        function: lambda_.IFunction,
        function_logs: logs.ILogGroup,
        distribution_id: str,
        metrics_namespace: str,
        service: str,
        alarms: list[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, id_)
        api_dims = {"ApiName": api.rest_api_name, "Stage": stage}

        def api_metric(metric_name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=metric_name,
                dimensions_map=api_dims,
                statistic=statistic,
                period=FIVE_MINUTES,
                label=f"API {metric_name} {statistic}",
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
                    api_metric("4XXError", "Sum"),
                    api_metric("5XXError", "Sum"),
                    function.metric_errors(period=FIVE_MINUTES, label="function errors"),
                    function.metric_throttles(period=FIVE_MINUTES, label="throttles"),
                ],
                right=[cdn_metric("5xxErrorRate", "Average")],
                width=12,
            ),
            cloudwatch.LogQueryWidget(
                title="Cold starts (init duration, from Lambda's REPORT lines)",
                log_group_names=[function_logs.log_group_name],
                query_lines=[
                    'filter @type = "REPORT"',
                    "stats count(*) as invocations, count(@initDuration) as cold_starts, "
                    "avg(@initDuration) as avg_init_ms, max(@initDuration) as max_init_ms "
                    "by bin(1h)",
                ],
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=12,
            ),
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
