"""CloudFront in front of the API: HTTPS only, GET /predict/ cached, POST never, logged."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app import checkov
from cdk_app.constructs.serving.http_api import FEATURES
from cdk_app.constructs.serving.origin_lock import OriginLock
from cdk_app.constructs.shared.secure_bucket import LogBucket

# API Gateway's integration limit is 29 s; CloudFront must wait a little longer than that.
ORIGIN_READ_TIMEOUT_SECONDS = 35


class ServingCdn(Construct):
    """Distribution, its cache/origin/header policies, access logs, optional domain and WAF."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        api: apigw.IHttpApi,
        lock: OriginLock,
        cache_ttl_seconds: int,
        access_logs: s3.IBucket,
        domain_name: str,
        certificate_arn: str,
        hosted_zone_id: str,
        web_acl_arn: str | None,
    ) -> None:
        super().__init__(scope, id_)
        # CloudFront's standard logs are delivered with ACLs, so this bucket keeps them on.
        self.log_bucket = LogBucket(
            self,
            "Logs",
            retention_days=90,
            access_logs=access_logs,
            log_prefix="cloudfront-logs/",
            acl_delivery=True,
        ).bucket
        stack = cdk.Stack.of(self)
        # The $default stage answers at the API's root, so the origin has no path.
        origin = origins.HttpOrigin(
            f"{api.api_id}.execute-api.{stack.region}.{stack.url_suffix}",
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            custom_headers={lock.header_name: lock.header_value},
            read_timeout=cdk.Duration.seconds(ORIGIN_READ_TIMEOUT_SECONDS),
        )
        self.predict_cache = cloudfront.CachePolicy(
            self,
            "PredictCache",
            comment="GET /predict/: cached on its four measurements only",
            query_string_behavior=cloudfront.CacheQueryStringBehavior.allow_list(*FEATURES),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
            default_ttl=cdk.Duration.seconds(cache_ttl_seconds),
            min_ttl=cdk.Duration.seconds(0),
            max_ttl=cdk.Duration.seconds(cache_ttl_seconds),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
        # What the API reads besides the cache key; never Host (API Gateway routes on its own
        # host name) and no cookies.
        api_headers = ("Content-Type", "Accept")
        self.api_requests = cloudfront.OriginRequestPolicy(
            self,
            "ApiRequests",
            comment="Forward query strings and the headers the API reads; not Host",
            header_behavior=cloudfront.OriginRequestHeaderBehavior.allow_list(*api_headers),
            query_string_behavior=cloudfront.OriginRequestQueryStringBehavior.all(),
            cookie_behavior=cloudfront.OriginRequestCookieBehavior.none(),
        )
        self.predict_requests = cloudfront.OriginRequestPolicy(
            self,
            "PredictRequests",
            comment="GET /predict/: the cache key's query strings, the headers the API reads",
            header_behavior=cloudfront.OriginRequestHeaderBehavior.allow_list(*api_headers),
            query_string_behavior=cloudfront.OriginRequestQueryStringBehavior.none(),
            cookie_behavior=cloudfront.OriginRequestCookieBehavior.none(),
        )
        self.security_headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="HSTS, no sniffing, no framing, strict referrer, a tight CSP",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(730),
                    include_subdomains=True,
                    preload=True,
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                    override=True,
                ),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    # The docs page loads Swagger UI from jsDelivr; everything else is ours.
                    content_security_policy=(
                        "default-src 'self'; script-src 'self' 'unsafe-inline' "
                        "https://cdn.jsdelivr.net; style-src 'self' 'unsafe-inline' "
                        "https://cdn.jsdelivr.net; img-src 'self' data: "
                        "https://fastapi.tiangolo.com; frame-ancestors 'none'"
                    ),
                    override=True,
                ),
            ),
        )
        no_cache = cloudfront.BehaviorOptions(
            origin=origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=self.api_requests,
            response_headers_policy=self.security_headers,
            compress=True,
        )
        cached_predict = cloudfront.BehaviorOptions(
            origin=origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            # POST /predict/ passes through too: CloudFront never caches a POST.
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
            cache_policy=self.predict_cache,
            origin_request_policy=self.predict_requests,
            response_headers_policy=self.security_headers,
            compress=True,
        )
        custom_domain = bool(domain_name)
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Iris classifier API",
            default_behavior=no_cache,
            additional_behaviors={"/predict/": cached_predict},
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=self.log_bucket,
            log_file_prefix="cloudfront/",
            domain_names=[domain_name] if custom_domain else None,
            certificate=(
                acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
                if custom_domain
                else None
            ),
            minimum_protocol_version=(
                cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if custom_domain else None
            ),
            web_acl_id=web_acl_arn,
        )
        # CloudFront sends its key only once the authorizer that accepts it exists.
        self.distribution.node.add_dependency(lock.function.function)
        if not custom_domain:
            checkov.skip(
                self.distribution,
                "CKV_AWS_174",
                "Without a custom domain CloudFront serves *.cloudfront.net with its own "
                "certificate and fixed policy; set domain_name for TLSv1.2_2021.",
            )
            cdk.Validations.of(self.distribution).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-CFR4",
                    reason="Without a custom domain CloudFront serves its own *.cloudfront.net "
                    "certificate, whose minimum protocol CloudFront fixes; set domain_name and "
                    "certificate_arn to get TLS 1.2 minimum (TLSv1.2_2021).",
                )
            )
        cdk.Validations.of(self.distribution).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-CFR1",
                reason="A public classifier with no per-country obligations; geo restriction "
                "would only turn away legitimate callers.",
            )
        )
        if web_acl_arn is None:
            checkov.skip(
                self.distribution,
                "CKV_AWS_68",
                "WAF is optional (waf_enabled): ~$9/month idle; stage throttling and reserved "
                "concurrency cap abuse meanwhile.",
            )
            cdk.Validations.of(self.distribution).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-CFR2",
                    reason="WAF is optional (waf_enabled) because it bills ~$9 a month even "
                    "idle; the API stage throttles and the function's reserved concurrency "
                    "cap abuse in the meantime.",
                )
            )
        if custom_domain and hosted_zone_id:
            # Fully qualified (trailing dot) names need no zone name to be right.
            zone = route53.HostedZone.from_hosted_zone_attributes(
                self, "Zone", hosted_zone_id=hosted_zone_id, zone_name=domain_name
            )
            target = route53.RecordTarget.from_alias(
                route53_targets.CloudFrontTarget(self.distribution)
            )
            record = f"{domain_name}."
            route53.ARecord(self, "A", zone=zone, record_name=record, target=target)
            route53.AaaaRecord(self, "Aaaa", zone=zone, record_name=record, target=target)
        self.url = f"https://{domain_name or self.distribution.distribution_domain_name}"
