"""API stack: serving function, REST API, origin lock, CloudFront, promotion, no drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from cdk_app.application import BuiltApp
from cdk_app.constructs.cdn import ORIGIN_READ_TIMEOUT_SECONDS
from lambda_image.app.settings import Settings
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
    _, fn = serving_function(templates["api"])
    props = fn["Properties"]
    uri = json.dumps(props["Code"]["ImageUri"])
    assert "cdk-hnb659fds-container-assets-123456789012-eu-west-1:" in uri
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 1024
    assert props["Timeout"] == 10
    # New accounts have a concurrency quota of 10 and must keep 100 unreserved: none by default.
    assert "ReservedConcurrentExecutions" not in props
    assert props["TracingConfig"] == {"Mode": "Active"}
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


# --- REST API ---------------------------------------------------------------------------------


def test_rest_api_is_regional_throttled_logged_traced(templates: dict[str, Template]) -> None:
    api = templates["api"]
    one(api, "AWS::ApiGateway::RestApi", {"EndpointConfiguration": {"Types": ["REGIONAL"]}})
    stage = one(api, "AWS::ApiGateway::Stage")["Properties"]
    assert stage["StageName"] == "api"
    assert stage["TracingEnabled"] is True
    [settings] = stage["MethodSettings"]
    assert settings == {
        "DataTraceEnabled": False,
        "HttpMethod": "*",
        "LoggingLevel": "ERROR",
        "MetricsEnabled": True,
        "ResourcePath": "/*",
        "ThrottlingBurstLimit": 100,
        "ThrottlingRateLimit": 50,
    }
    access = stage["AccessLogSetting"]
    fields = json.loads(access["Format"])
    assert {"requestId", "status", "ip", "responseLength"} <= set(fields)


def test_every_method_requires_the_origin_key_and_proxies_to_the_alias(
    templates: dict[str, Template],
) -> None:
    api = templates["api"]
    methods = resources(api, "AWS::ApiGateway::Method")
    assert len(methods) == 4  # GET and POST /predict, ANY / and ANY /{proxy+}
    for method in methods.values():
        props = method["Properties"]
        assert props["ApiKeyRequired"] is True
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert "Live" in json.dumps(props["Integration"]["Uri"])


def test_request_validation_saves_lambda_calls(templates: dict[str, Template]) -> None:
    api = templates["api"]
    one(
        api,
        "AWS::ApiGateway::RequestValidator",
        {"ValidateRequestBody": True, "ValidateRequestParameters": True},
    )
    get = one(
        api,
        "AWS::ApiGateway::Method",
        {"HttpMethod": "GET", "RequestParameters": Match.any_value()},
    )
    assert get["Properties"]["RequestParameters"] == {
        f"method.request.querystring.{f}": True for f in FEATURES
    }
    model = one(api, "AWS::ApiGateway::Model")["Properties"]
    assert model["Schema"]["properties"]["instances"] == {
        "type": "array",
        "minItems": 1,
        "maxItems": 1000,
    }
    assert model["Schema"]["additionalProperties"] is False
    for response_type in ("BAD_REQUEST_PARAMETERS", "BAD_REQUEST_BODY"):
        response = one(api, "AWS::ApiGateway::GatewayResponse", {"ResponseType": response_type})
        assert response["Properties"]["StatusCode"] == "422"
        assert '"detail"' in response["Properties"]["ResponseTemplates"]["application/json"]


# --- origin lock -------------------------------------------------------------------------


def test_origin_lock_key_and_header_come_from_the_secret(templates: dict[str, Template]) -> None:
    api = templates["api"]
    secret_id, secret = next(iter(resources(api, "AWS::SecretsManager::Secret").items()))
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "key"
    assert generated["PasswordLength"] == 48
    key = one(api, "AWS::ApiGateway::ApiKey")["Properties"]["Value"]
    reference = json.dumps(key)
    assert "{{resolve:secretsmanager:" in reference
    assert secret_id in reference
    [origin] = distribution(api)["Origins"]
    [header] = origin["OriginCustomHeaders"]
    assert header["HeaderName"] == "x-api-key"
    assert header["HeaderValue"] == key
    plan = one(api, "AWS::ApiGateway::UsagePlan")["Properties"]
    assert plan["Throttle"] == {"BurstLimit": 100, "RateLimit": 50}
    one(api, "AWS::ApiGateway::UsagePlanKey")


def test_the_secret_is_only_ever_referenced(templates: dict[str, Template]) -> None:
    # The key exists only in Secrets Manager; templates carry dynamic references to it.
    api = templates["api"]
    key = json.dumps(one(api, "AWS::ApiGateway::ApiKey")["Properties"]["Value"])
    [origin] = distribution(api)["Origins"]
    header = json.dumps(origin["OriginCustomHeaders"][0]["HeaderValue"])
    for value in (key, header):
        assert value.startswith('{"Fn::Join": ["", ["{{resolve:secretsmanager:"')
        assert value.endswith(':SecretString:key::}}"]]}')


def test_rotating_the_origin_key_changes_the_template(tmp_path: Path) -> None:
    version = "0123456789abcdef0123456789abcdef"
    built = build_app(tmp_path, origin_key_version=version)
    api = Template.from_stack(built.api)
    key = json.dumps(one(api, "AWS::ApiGateway::ApiKey")["Properties"]["Value"])
    assert key.endswith(f':SecretString:key::{version}}}}}"]]}}')
    # CloudFront switches only after API Gateway accepts the new key.
    [distribution_resource] = resources(api, "AWS::CloudFront::Distribution").values()
    [plan_key_id] = resources(api, "AWS::ApiGateway::UsagePlanKey")
    assert plan_key_id in distribution_resource["DependsOn"]


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
    assert metrics == ["5XXError", "Errors", "Latency"]


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
    }
    assert set(handlers) == {
        "training.promoter.handler",
        "training.promoter.deployment_handler",
        "training.release.handler",
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
