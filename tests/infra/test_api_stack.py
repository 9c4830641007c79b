"""API stack: serving function, HTTP API, origin lock, CloudFront, promotion, no drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from cdk_app.constructs.serving.cdn import ORIGIN_READ_TIMEOUT_SECONDS
from lambda_image.app.settings import Settings
from stacks.application import BuiltApp
from tests.support import build_app

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # AWS managed cache policy id


def resources(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    """Resources of one type by logical id."""
    found: dict[str, dict[str, Any]] = template.find_resources(type_)
    return found


def one(template: Template, type_: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
    """The single resource of `type_` matching `props`."""
    found = template.find_resources(type_, {"Properties": props} if props else None)
    assert len(found) == 1, f"{len(found)} {type_} match"
    [resource] = found.values()
    result: dict[str, Any] = resource
    return result


def serving_function(template: Template) -> tuple[str, dict[str, Any]]:
    """(logical id, resource) of the container-image function."""
    found = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"PackageType": "Image"}}
    )
    [(logical_id, resource)] = found.items()
    return logical_id, resource


def distribution(template: Template) -> dict[str, Any]:
    """The CloudFront distribution config."""
    config: dict[str, Any] = one(template, "AWS::CloudFront::Distribution")["Properties"][
        "DistributionConfig"
    ]
    return config


# --- the function ------------------------------------------------------------------------------


def test_function_runs_the_image_asset_this_deploy_built(templates: dict[str, Template]) -> None:
    """Two AWS rules shape its logging and tracing config.

    Log levels: at the default system level INFO Lambda sends the "start" and "report" lines;
    WARN sends neither, and level filtering needs the JSON log format (AWS docs:
    monitoring-cloudwatchlogs-log-level). Tracing: X-Ray sampling rules apply to API Gateway
    REST APIs, AppSync, Step Functions and the SDKs (xray-console-sampling), and API Gateway
    traces REST APIs only (xray-services-apigateway), so behind an HTTP API the function runs
    PassThrough and the app samples.
    """
    _, fn = serving_function(templates["api"])
    props = fn["Properties"]
    uri = json.dumps(props["Code"]["ImageUri"])
    assert "cdk-hnb659fds-container-assets-123456789012-eu-west-1:" in uri
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 1024
    assert props["Timeout"] == 10
    # New accounts have a concurrency quota of 10 and must keep 100 unreserved: none by default.
    assert "ReservedConcurrentExecutions" not in props
    # The app samples its own traces; Lambda's Active mode would trace every quiet request.
    assert props["TracingConfig"] == {"Mode": "PassThrough"}
    env = props["Environment"]["Variables"]
    assert (env["TRACE_SAMPLE_RATE"], env["TRACE_RESERVOIR_PER_HOUR"]) == ("0.01", "6")
    # One line per request: Lambda's START/END/REPORT (INFO) are not logged.
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["LoggingConfig"]["SystemLogLevel"] == "WARN"
    assert props["Environment"]["Variables"]["MAX_INSTANCES"] == "1000"
    assert props["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "IrisML"
    assert "SnapStart" not in props


def test_function_knobs_come_from_config(tmp_path: Path) -> None:
    built = build_app(
        tmp_path,
        lambda_memory_mb=2048,
        lambda_timeout_seconds=20,
        reserved_concurrency=0,
        tracing=False,
        snapstart=True,
        architecture="x86_64",
        trainer_instance_types="c7i.large",
    )
    _, fn = serving_function(Template.from_stack(built.api))
    props = fn["Properties"]
    assert (props["MemorySize"], props["Timeout"]) == (2048, 20)
    assert "ReservedConcurrentExecutions" not in props
    assert props.get("TracingConfig", {"Mode": "PassThrough"}) == {"Mode": "PassThrough"}
    assert props["Environment"]["Variables"]["TRACE_SAMPLE_RATE"] == "0"
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert props["Architectures"] == ["x86_64"]


def test_live_alias_is_never_moved_by_cloudformation(templates: dict[str, Template]) -> None:
    """The alias names version 1 for ever; the release resource and promotion move it."""
    api = templates["api"]
    alias = one(api, "AWS::Lambda::Alias")
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == "1"
    [version_id] = resources(api, "AWS::Lambda::Version")
    assert version_id in alias["DependsOn"]
    update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert set(update) == {"ApplicationName", "DeploymentGroupName"}
    version = resources(api, "AWS::Lambda::Version")[version_id]
    # Replaced versions stay: the alias may still route to one, and rollbacks need them.
    assert version["DeletionPolicy"] == version["UpdateReplacePolicy"] == "Retain"


# --- HTTP API ---------------------------------------------------------------------------------


def test_http_api_is_throttled_and_logs_one_json_line_per_request(
    templates: dict[str, Template],
) -> None:
    api = templates["api"]
    one(api, "AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP", "Name": "iris-ml-dev"})
    stage = one(api, "AWS::ApiGatewayV2::Stage")["Properties"]
    # The default stage answers at the root: the app sees the paths callers use.
    assert (stage["StageName"], stage["AutoDeploy"]) == ("$default", True)
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": 100,
        "ThrottlingRateLimit": 50,
    }
    access = stage["AccessLogSettings"]
    assert access["DestinationArn"]["Fn::GetAtt"][1] == "Arn"
    fields = json.loads(access["Format"])
    assert {"requestId", "status", "ip", "responseLength", "authorizerStatus"} <= set(fields)
    assert all(value.startswith("$context.") for value in fields.values())


def test_every_route_needs_the_origin_lock_and_proxies_to_the_alias(
    templates: dict[str, Template],
) -> None:
    api = templates["api"]
    [route] = resources(api, "AWS::ApiGatewayV2::Route").values()
    props = route["Properties"]
    # One $default route: every method and path, / and /predict, the page and the docs.
    assert props["RouteKey"] == "$default"
    assert props["AuthorizationType"] == "CUSTOM"
    [authorizer_id] = resources(api, "AWS::ApiGatewayV2::Authorizer")
    assert props["AuthorizerId"] == {"Ref": authorizer_id}
    integration = one(api, "AWS::ApiGatewayV2::Integration")["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    alias_id = next(iter(resources(api, "AWS::Lambda::Alias")))
    assert integration["IntegrationUri"] == {"Ref": alias_id}
    assert integration["TimeoutInMillis"] == 29000


def test_a_call_without_the_origin_header_never_reaches_any_function(
    templates: dict[str, Template],
) -> None:
    """Request-based Lambda authorizers: identity sources that are missing, null or empty get
    API Gateway's 401 without the authorizer being called (AWS knowledge center:
    api-gateway-401-error-lambda-authorizer); otherwise the authorizer's simple response
    decides before the route's integration runs, and its answer is cached per identity value
    for the TTL (AWS docs: http-api-lambda-authorizer). So a direct
    execute-api call without CloudFront's header invokes nothing, and one with a wrong key
    invokes only the authorizer (tests/training/test_origin_authorizer.py)."""
    api = templates["api"]
    authorizer = one(api, "AWS::ApiGatewayV2::Authorizer")["Properties"]
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["$request.header.x-origin-key"]
    assert authorizer["EnableSimpleResponses"] is True
    assert authorizer["AuthorizerPayloadFormatVersion"] == "2.0"
    assert authorizer["AuthorizerResultTtlInSeconds"] == 300
    function_id = authorizer["AuthorizerUri"]["Fn::Join"][1][1]["Fn::GetAtt"][0]
    function = resources(api, "AWS::Lambda::Function")[function_id]["Properties"]
    assert function["Handler"] == "training.control.origin_authorizer.handler"
    [secret_id] = resources(api, "AWS::SecretsManager::Secret")
    assert function["Environment"]["Variables"]["ORIGIN_SECRET_ARN"] == {"Ref": secret_id}
    # API Gateway may invoke it for this API's authorizer only.
    one(
        api,
        "AWS::Lambda::Permission",
        {
            "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": Match.object_like({"Fn::Join": Match.any_value()}),
        },
    )


def test_the_authorizer_reads_that_secret_and_nothing_else(templates: dict[str, Template]) -> None:
    api = templates["api"]
    [secret_id] = resources(api, "AWS::SecretsManager::Secret")
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for logical_id, p in resources(api, "AWS::IAM::Policy").items()
        if logical_id.startswith("OriginLockAuthorizer")
    ]
    [statements] = policies
    secrets = [s for s in statements if any("secretsmanager" in a for a in s["Action"])]
    assert secrets == [
        {
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Effect": "Allow",
            "Resource": {"Ref": secret_id},
        }
    ]


# --- origin lock -------------------------------------------------------------------------


def test_origin_lock_header_comes_from_the_secret(templates: dict[str, Template]) -> None:
    api = templates["api"]
    secret_id, secret = next(iter(resources(api, "AWS::SecretsManager::Secret").items()))
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "key"
    assert generated["PasswordLength"] == 48
    [origin] = distribution(api)["Origins"]
    [header] = origin["OriginCustomHeaders"]
    assert header["HeaderName"] == "x-origin-key"
    reference = json.dumps(header["HeaderValue"])
    assert "{{resolve:secretsmanager:" in reference
    assert secret_id in reference
    # No REST API key machinery is left behind.
    assert not resources(api, "AWS::ApiGateway::ApiKey")
    assert not resources(api, "AWS::ApiGateway::RestApi")


def test_the_secret_is_only_ever_referenced(templates: dict[str, Template]) -> None:
    # The key exists only in Secrets Manager; the template carries a dynamic reference to it.
    api = templates["api"]
    [origin] = distribution(api)["Origins"]
    header = json.dumps(origin["OriginCustomHeaders"][0]["HeaderValue"])
    assert header.startswith('{"Fn::Join": ["", ["{{resolve:secretsmanager:"')
    assert header.endswith(':SecretString:key::}}"]]}')


def test_rotating_the_origin_key_changes_the_template(tmp_path: Path) -> None:
    version = "0123456789abcdef0123456789abcdef"
    built = build_app(tmp_path, origin_key_version=version)
    api = Template.from_stack(built.api)
    [origin] = distribution(api)["Origins"]
    header = json.dumps(origin["OriginCustomHeaders"][0]["HeaderValue"])
    assert header.endswith(f':SecretString:key::{version}}}}}"]]}}')
    # CloudFront sends a key only once the authorizer that checks it exists.
    [distribution_resource] = resources(api, "AWS::CloudFront::Distribution").values()
    [authorizer_fn] = [
        logical_id
        for logical_id, r in resources(api, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "training.control.origin_authorizer.handler"
    ]
    assert authorizer_fn in distribution_resource["DependsOn"]


# --- CloudFront --------------------------------------------------------------------------


def test_cloudfront_serves_https_only_and_caches_get_predict(
    templates: dict[str, Template],
) -> None:
    api = templates["api"]
    config = distribution(api)
    default = config["DefaultCacheBehavior"]
    assert default["ViewerProtocolPolicy"] == "https-only"
    assert default["CachePolicyId"] == CACHING_DISABLED
    assert "POST" in default["AllowedMethods"]
    [predict] = config["CacheBehaviors"]
    assert predict["PathPattern"] == "/predict/"
    assert predict["ViewerProtocolPolicy"] == "https-only"
    cache = one(api, "AWS::CloudFront::CachePolicy")["Properties"]["CachePolicyConfig"]
    assert predict["CachePolicyId"] == {
        "Ref": next(iter(resources(api, "AWS::CloudFront::CachePolicy")))
    }
    params = cache["ParametersInCacheKeyAndForwardedToOrigin"]
    assert params["QueryStringsConfig"] == {
        "QueryStringBehavior": "whitelist",
        "QueryStrings": FEATURES,
    }
    assert params["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert params["CookiesConfig"] == {"CookieBehavior": "none"}
    assert (cache["DefaultTTL"], cache["MaxTTL"], cache["MinTTL"]) == (300, 300, 0)
    assert config["Logging"]["Prefix"] == "cloudfront/"
    assert config["HttpVersion"] == "http2and3"


def test_cache_ttl_comes_from_config(tmp_path: Path) -> None:
    built = build_app(tmp_path, cache_ttl_seconds=60)
    cache = one(Template.from_stack(built.api), "AWS::CloudFront::CachePolicy")
    assert cache["Properties"]["CachePolicyConfig"]["DefaultTTL"] == 60


def test_origin_requests_forward_what_the_api_needs_and_never_host(
    templates: dict[str, Template],
) -> None:
    for policy in resources(templates["api"], "AWS::CloudFront::OriginRequestPolicy").values():
        config = policy["Properties"]["OriginRequestPolicyConfig"]
        headers = config["HeadersConfig"]
        assert headers["HeaderBehavior"] == "whitelist"
        assert "Host" not in headers["Headers"]
        assert set(headers["Headers"]) == {"Content-Type", "Accept"}
        assert config["CookiesConfig"] == {"CookieBehavior": "none"}
    [origin] = distribution(templates["api"])["Origins"]
    custom = origin["CustomOriginConfig"]
    assert custom["OriginProtocolPolicy"] == "https-only"
    assert custom["OriginSSLProtocols"] == ["TLSv1.2"]
    assert custom["OriginReadTimeout"] == ORIGIN_READ_TIMEOUT_SECONDS


def test_security_headers_on_every_response(templates: dict[str, Template]) -> None:
    policy = one(templates["api"], "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] == 63072000
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ContentTypeOptions"] == {"Override": True}
    config = distribution(templates["api"])
    behaviors = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    assert all("ResponseHeadersPolicyId" in b for b in behaviors)


def test_custom_domain_gets_tls12_and_dns(tmp_path: Path) -> None:
    built = build_app(
        tmp_path,
        domain_name="iris.example.com",
        certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
        hosted_zone_id="Z0123456789ABC",
    )
    api = Template.from_stack(built.api)
    config = distribution(api)
    assert config["Aliases"] == ["iris.example.com"]
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert config["ViewerCertificate"]["SslSupportMethod"] == "sni-only"
    records = resources(api, "AWS::Route53::RecordSet")
    assert sorted(r["Properties"]["Type"] for r in records.values()) == ["A", "AAAA"]
    assert {r["Properties"]["Name"] for r in records.values()} == {"iris.example.com."}


def test_waf_lives_in_us_east_1_and_guards_cloudfront(tmp_path: Path) -> None:
    built = build_app(tmp_path, waf_enabled=True, waf_rate_limit=500)
    assert built.edge is not None
    assert built.edge.region == "us-east-1"
    edge = Template.from_stack(built.edge)
    acl = one(edge, "AWS::WAFv2::WebACL")["Properties"]
    assert acl["Scope"] == "CLOUDFRONT"
    names = [r["Name"] for r in acl["Rules"]]
    assert names[:3] == [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ]
    rate = acl["Rules"][3]["Statement"]["RateBasedStatement"]
    assert rate["Limit"] == 500
    assert "WebACLId" in distribution(Template.from_stack(built.api))


def test_without_waf_there_is_no_edge_stack(built: BuiltApp) -> None:
    assert built.edge is None
    assert "WebACLId" not in distribution(Template.from_stack(built.api))


# --- limits shrink along the path ---------------------------------------------------------


def test_limits_shrink_along_the_request_path(templates: dict[str, Template]) -> None:
    body_cap = Settings().max_body_bytes
    lambda_payload, api_gateway_payload = 6 * 1024 * 1024, 10 * 1024 * 1024
    assert body_cap < lambda_payload < api_gateway_payload
    _, fn = serving_function(templates["api"])
    timeout = fn["Properties"]["Timeout"]
    api_gateway_timeout = 29
    [origin] = distribution(templates["api"])["Origins"]
    assert timeout < api_gateway_timeout < origin["CustomOriginConfig"]["OriginReadTimeout"]


# --- promotion ---------------------------------------------------------------------------


def test_canary_rolls_back_on_guard_alarms(templates: dict[str, Template]) -> None:
    api = templates["api"]
    group = one(api, "AWS::CodeDeploy::DeploymentGroup")["Properties"]
    assert group["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    assert group["AutoRollbackConfiguration"] == {
        "Enabled": True,
        "Events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST", "DEPLOYMENT_STOP_ON_ALARM"],
    }
    assert len(group["AlarmConfiguration"]["Alarms"]) == 3
    alarms = resources(api, "AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"].get("MetricName", "") for a in alarms.values())
    assert metrics == ["5xx", "Errors", "Latency"]
    # Keyed by the HTTP API's id and its default stage (AWS docs: http-api-metrics).
    [api_id] = resources(api, "AWS::ApiGatewayV2::Api")
    for alarm in alarms.values():
        if alarm["Properties"].get("Namespace") == "AWS/ApiGateway":
            assert alarm["Properties"]["Dimensions"] == [
                {"Name": "ApiId", "Value": {"Ref": api_id}},
                {"Name": "Stage", "Value": "$default"},
            ]


def test_promoter_and_watcher_are_wired(templates: dict[str, Template]) -> None:
    api = templates["api"]
    registered = one(
        api,
        "AWS::Events::Rule",
        {"EventPattern": Match.object_like({"source": ["iris-ml.registry"]})},
    )
    assert registered["Properties"]["EventPattern"]["detail-type"] == ["Model Registered"]
    ended = one(
        api,
        "AWS::Events::Rule",
        {"EventPattern": Match.object_like({"source": ["aws.codedeploy"]})},
    )
    assert ended["Properties"]["EventPattern"]["detail"]["state"] == ["SUCCESS", "FAILURE", "STOP"]
    handlers = {
        r["Properties"]["Handler"]: r["Properties"]["Environment"]["Variables"]
        for r in resources(api, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler", "").startswith("training.")
        and r["Properties"]["Handler"] != "training.control.origin_authorizer.handler"
    }
    assert set(handlers) == {
        "training.control.promoter.handler",
        "training.control.promoter.deployment_handler",
        "training.control.release.handler",
    }
    for env in handlers.values():
        assert env["ALIAS_NAME"] == "live"
        assert env["LIVE_MODEL_PARAMETER"] == "/iris-ml-dev/serving/live-model-version"
        assert {
            "FUNCTION_NAME",
            "CODEDEPLOY_APPLICATION",
            "DEPLOYMENT_GROUP",
            "DISTRIBUTION_ID",
        } <= set(env)


def test_outputs(templates: dict[str, Template]) -> None:
    outputs = set(templates["api"].find_outputs("*"))
    assert {"Url", "ApiId", "FunctionName", "DistributionId", "RuntimeImageParameter"} <= outputs
