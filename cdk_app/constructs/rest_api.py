"""API Gateway REST API (regional) proxying to the serving function's `live` alias."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app import checkov
from cdk_app.constructs.log_group import log_group

STAGE = "api"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
# API Gateway's own errors in the app's error shape ({"detail": [{field, msg, type, loc}]}).
_ERROR = (
    '{"detail": [{"field": "%s", "msg": $context.error.messageString, '
    '"type": "$context.error.responseType", "loc": []}]}'
)


class ServingApi(Construct):
    """Throttled, logged, traced REST API; every method needs the origin's API key."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        alias: lambda_.IAlias,
        throttle_rate: int,
        throttle_burst: int,
        max_instances: int,
        tracing: bool,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        self.access_logs = log_group(self, "AccessLogs", retention_days=log_retention_days)
        integration = apigw.LambdaIntegration(alias, proxy=True)
        self.api = apigw.RestApi(
            self,
            "Api",
            # The API's CloudWatch metrics are keyed by name (dimension ApiName), so two
            # environments in one account would share them, and their alarms and canary guards.
            rest_api_name=name,
            default_integration=integration,
            description="Iris classifier; reachable only through CloudFront (API key)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Execution logs need the account's API Gateway CloudWatch role. That setting is
            # one per account and Region, whichever stack wrote it last: deleting the role with
            # this stack would break the execution logs of every other API in the Region.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            default_method_options=apigw.MethodOptions(api_key_required=True),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=throttle_rate,
                throttling_burst_limit=throttle_burst,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=tracing,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
            ),
        )
        cdk.Validations.of(self.api).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="API Gateway's account-level logging role; AWS's documented policy is "
                "the one the service expects, and it only writes API Gateway's own logs.",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="The API is reachable only through CloudFront (origin lock), so the WAF "
                "belongs on CloudFront, where waf_enabled attaches it.",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="A public prediction API by design: callers are anonymous; the API key "
                "admits CloudFront only, and throttling and reserved concurrency cap load.",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions-COG4",
                reason="Anonymous callers by design (see APIG4); there are no users to keep in "
                "a Cognito pool.",
            ),
        )
        # Requests that cannot be right are refused here, without invoking Lambda: a GET
        # /predict/ missing a measurement, a POST body that is not {"instances": [1..n items]}.
        # The app checks everything else (and these again).
        validator = self.api.add_request_validator(
            "Validator", validate_request_parameters=True, validate_request_body=True
        )
        batch = self.api.add_model(
            "Batch",
            content_type="application/json",
            description="POST /predict body: an instances array within the batch limit",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                type=apigw.JsonSchemaType.OBJECT,
                required=["instances"],
                additional_properties=False,
                properties={
                    "instances": apigw.JsonSchema(
                        type=apigw.JsonSchemaType.ARRAY, min_items=1, max_items=max_instances
                    )
                },
            ),
        )
        predict = self.api.root.add_resource("predict")
        predict.add_method(
            "GET",
            integration,
            request_parameters={f"method.request.querystring.{f}": True for f in FEATURES},
            request_validator=validator,
        )
        predict.add_method(
            "POST",
            integration,
            request_models={"application/json": batch},
            request_validator=validator,
        )
        # Everything else (/, /health, /model, /docs, /openapi.json) through one proxy.
        self.api.root.add_proxy(default_integration=integration, any_method=True)

        # The app answers these with 422 and its error shape; so does API Gateway.
        for response_id, response_type, field in (
            ("MissingQueryValues", apigw.ResponseType.BAD_REQUEST_PARAMETERS, "query"),
            ("InvalidBody", apigw.ResponseType.BAD_REQUEST_BODY, "body"),
        ):
            self.api.add_gateway_response(
                response_id,
                type=response_type,
                status_code="422",
                templates={"application/json": _ERROR % field},
            )
        for response_id, response_type in (
            ("Default4xx", apigw.ResponseType.DEFAULT_4_XX),
            ("Default5xx", apigw.ResponseType.DEFAULT_5_XX),
        ):
            self.api.add_gateway_response(
                response_id,
                type=response_type,
                templates={"application/json": _ERROR % "request"},
            )
        self.stage = self.api.deployment_stage
        checkov.skip(
            self.stage,
            "CKV_AWS_120",
            "CloudFront caches GET /predict/ in front of the API; an API Gateway cache would "
            "bill from $14/month, idle or not.",
        )
        if not tracing:
            cdk.Validations.of(self.stage).acknowledge(
                cdk.Acknowledgment(
                    id="Serverless-APIGWXrayEnabled",
                    reason="X-Ray tracing is switched off in config (tracing=false).",
                )
            )
