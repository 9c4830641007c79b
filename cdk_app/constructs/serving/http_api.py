"""API Gateway HTTP API proxying every route to the serving function's `live` alias.

An HTTP API, not a REST API: $1.00 per million requests instead of $3.50 (docs/api-choice.md
holds the comparison and what the REST API gave that this one does not).
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as rest
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.constructs.shared.log_group import log_group

# The default stage: served at the API's root, so the app sees the paths callers use.
STAGE = "$default"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
# One JSON line per request (HTTP API access logs take $context variables; AWS docs:
# http-api-logging-variables). The authorizer's status and error show why a call was refused.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "authorizerStatus": "$context.authorizer.status",
    "authorizerError": "$context.authorizer.error",
    "errorMessage": "$context.error.message",
}


def api_metric(
    api: apigw.IHttpApi, name: str, statistic: str, period: cdk.Duration, label: str | None = None
) -> cloudwatch.Metric:
    """An HTTP API metric of the serving stage (AWS/ApiGateway, dimensions ApiId and Stage).

    HTTP APIs publish `Count`, `4xx`, `5xx`, `Latency`, `IntegrationLatency` and
    `DataProcessed` (AWS docs: http-api-metrics). Keyed by the API's id, so two environments in
    one account never share metrics, alarms or canary guards.
    """
    return cloudwatch.Metric(
        namespace="AWS/ApiGateway",
        metric_name=name,
        dimensions_map={"ApiId": api.api_id, "Stage": STAGE},
        statistic=statistic,
        period=period,
        label=label,
    )


class ServingApi(Construct):
    """Throttled, logged HTTP API; every route needs the origin lock's authorizer."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        alias: lambda_.IAlias,
        authorizer: apigw.IHttpRouteAuthorizer,
        throttle_rate: int,
        throttle_burst: int,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        self.access_logs = log_group(self, "AccessLogs", retention_days=log_retention_days)
        self.api = apigw.HttpApi(
            self,
            "Api",
            api_name=name,
            description="Iris classifier; reachable only through CloudFront (origin lock)",
            create_default_stage=False,
            # Payload 2.0 to the alias; Mangum reads it (tests/serving: recorded v2 events).
            default_integration=integrations.HttpLambdaIntegration(
                "Live",
                alias,
                payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0,
                # API Gateway's integration limit; the function's own timeout is shorter.
                timeout=cdk.Duration.seconds(29),
            ),
            # The $default route takes every path and method: /, /predict, /health, /model,
            # /docs, /openapi.json. The app answers unknown paths with its own 404.
            default_authorizer=authorizer,
        )
        self.stage = apigw.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name=STAGE,
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=throttle_rate, burst_limit=throttle_burst),
            access_log_settings=_AccessLogs(self.access_logs),
        )
        cdk.Validations.of(self.stage).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="The API is reachable only through CloudFront (origin lock), so the WAF "
                "belongs on CloudFront, where waf_enabled attaches it; HTTP APIs take no WAF.",
            ),
        )
        cdk.Validations.of(self.api).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="A public prediction API by design: callers are anonymous; the origin "
                "lock's authorizer admits CloudFront only, and throttling caps load.",
            ),
        )

    def metric(self, name: str, statistic: str, period: cdk.Duration) -> cloudwatch.Metric:
        """One of this API's stage metrics."""
        return api_metric(self.api, name, statistic, period)


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogs:
    """Access logs into `group`, one JSON object per request."""

    def __init__(self, group: logs.ILogGroup) -> None:
        self._destination = apigw.LogGroupLogDestination(group)

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        """The log group."""
        return self._destination

    @property
    def format(self) -> rest.AccessLogFormat:
        """The JSON line above (HTTP APIs reuse the REST module's format type)."""
        return rest.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")))
