"""AWS list prices the app's cost estimate and its dashboard's cost widget are computed from.

One table for both: `make cost` (scripts/cost.py) and the dashboard's estimated cost per
thousand predictions (cdk_app/constructs/observability/dashboard.py). Each price names its unit,
what it is, where it was read and when; AWS changes them, so check the source before relying on one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

PRICE_REGION: Final = "us-east-1"
RECORDED_ON: Final = "2026-11-27"


@dataclasses.dataclass(frozen=True)
class Price:
    """A list price: US dollars per unit, for what, where it was read and when."""

    usd: float
    unit: str
    what: str
    source: str
    recorded: str = RECORDED_ON


_LAMBDA = "https://aws.amazon.com/lambda/pricing/"
_CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/"
_CLOUDFRONT = "https://aws.amazon.com/cloudfront/pricing/"
_EC2 = "https://aws.amazon.com/ec2/pricing/on-demand/"
_SAGEMAKER = "https://aws.amazon.com/sagemaker/ai/pricing/"
_S3 = "https://aws.amazon.com/s3/pricing/"
_DYNAMODB = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
_WAF = "https://aws.amazon.com/waf/pricing/"

# US East (N. Virginia) list prices, Linux, on demand, without free tiers or discounts.
PRICES: Final[Mapping[str, Price]] = {
    "kms_key": Price(
        1.00, "key-month", "KMS customer managed key", "https://aws.amazon.com/kms/pricing/"
    ),
    "alarm_metric": Price(
        0.10,
        "alarm metric-month",
        "CloudWatch standard-resolution alarm, per metric it evaluates",
        _CLOUDWATCH,
    ),
    "alarm_metric_high_resolution": Price(
        0.30, "alarm metric-month", "CloudWatch high-resolution alarm, per metric", _CLOUDWATCH
    ),
    "composite_alarm": Price(0.50, "alarm-month", "CloudWatch composite alarm", _CLOUDWATCH),
    "dashboard": Price(3.00, "dashboard-month", "CloudWatch custom dashboard", _CLOUDWATCH),
    "custom_metric": Price(
        0.30, "metric-month", "CloudWatch custom metric (first 10,000)", _CLOUDWATCH
    ),
    "logs_ingestion": Price(0.50, "GB", "CloudWatch Logs ingestion, standard class", _CLOUDWATCH),
    "logs_storage": Price(0.03, "GB-month", "CloudWatch Logs storage", _CLOUDWATCH),
    "secret": Price(
        0.40,
        "secret-month",
        "Secrets Manager secret",
        "https://aws.amazon.com/secrets-manager/pricing/",
    ),
    "waf_web_acl": Price(5.00, "web ACL-month", "WAF web ACL", _WAF),
    "waf_rule": Price(1.00, "rule-month", "WAF rule or managed rule group in a web ACL", _WAF),
    "waf_requests": Price(0.60, "million requests", "WAF requests inspected", _WAF),
    "route53_zone": Price(
        0.50,
        "hosted zone-month",
        "Route 53 hosted zone (first 25)",
        "https://aws.amazon.com/route53/pricing/",
    ),
    "s3_storage": Price(0.023, "GB-month", "S3 Standard storage (first 50 TB)", _S3),
    "s3_put": Price(0.005, "1,000 requests", "S3 Standard PUT, COPY, POST, LIST", _S3),
    "s3_get": Price(0.0004, "1,000 requests", "S3 Standard GET and others", _S3),
    "ecr_storage": Price(
        0.10, "GB-month", "ECR private repository storage", "https://aws.amazon.com/ecr/pricing/"
    ),
    "ebs_gp3": Price(0.08, "GB-month", "EBS gp3 volume", "https://aws.amazon.com/ebs/pricing/"),
    "ebs_snapshot": Price(
        0.05, "GB-month", "EBS snapshot, standard tier", "https://aws.amazon.com/ebs/pricing/"
    ),
    "public_ipv4": Price(
        0.005, "hour", "Public IPv4 address, in use", "https://aws.amazon.com/vpc/pricing/"
    ),
    "nat_gateway": Price(
        0.045,
        "hour",
        "NAT gateway (plus $0.045 per GB processed)",
        "https://aws.amazon.com/vpc/pricing/",
    ),
    "lambda_requests": Price(0.20, "million requests", "Lambda requests", _LAMBDA),
    "lambda_arm64": Price(
        0.0000133334, "GB-second", "Lambda duration, arm64 (first 7.5 billion GB-s)", _LAMBDA
    ),
    "lambda_x86_64": Price(
        0.0000166667, "GB-second", "Lambda duration, x86_64 (first 6 billion GB-s)", _LAMBDA
    ),
    "api_gateway_rest": Price(
        3.50,
        "million requests",
        "API Gateway REST API requests (first 333 million)",
        "https://aws.amazon.com/api-gateway/pricing/",
    ),
    "api_gateway_http": Price(
        1.00,
        "million requests",
        "API Gateway HTTP API requests, metered per 512 KB (first 300 million)",
        "https://aws.amazon.com/api-gateway/pricing/",
    ),
    "cloudfront_https": Price(
        1.00,
        "million requests",
        "CloudFront HTTPS requests, North America ($0.0100 per 10,000)",
        _CLOUDFRONT,
    ),
    "cloudfront_out": Price(
        0.085,
        "GB",
        "CloudFront data transfer out to the internet, North America (first 10 TB)",
        _CLOUDFRONT,
    ),
    "cloudfront_to_origin": Price(
        0.020, "GB", "CloudFront data transfer out to the origin, North America", _CLOUDFRONT
    ),
    "xray_traces": Price(
        5.00, "million traces", "X-Ray traces recorded", "https://aws.amazon.com/xray/pricing/"
    ),
    "dynamodb_write": Price(
        0.625, "million write request units", "DynamoDB on-demand writes", _DYNAMODB
    ),
    "dynamodb_read": Price(
        0.125, "million read request units", "DynamoDB on-demand reads", _DYNAMODB
    ),
    "dynamodb_storage": Price(0.25, "GB-month", "DynamoDB standard table storage", _DYNAMODB),
    "ec2:c7g.large": Price(0.0725, "hour", "EC2 c7g.large on demand, Linux", _EC2),
    "ec2:m7g.large": Price(0.0816, "hour", "EC2 m7g.large on demand, Linux", _EC2),
    "ec2:c6g.large": Price(0.068, "hour", "EC2 c6g.large on demand, Linux", _EC2),
    "ec2:m6g.large": Price(0.077, "hour", "EC2 m6g.large on demand, Linux", _EC2),
    "ec2:t4g.large": Price(0.0672, "hour", "EC2 t4g.large on demand, Linux", _EC2),
    "ec2:c7i.large": Price(0.08925, "hour", "EC2 c7i.large on demand, Linux", _EC2),
    "ec2:m7i.large": Price(0.1008, "hour", "EC2 m7i.large on demand, Linux", _EC2),
    "ec2:c6i.large": Price(0.085, "hour", "EC2 c6i.large on demand, Linux", _EC2),
    "ec2:m6i.large": Price(0.096, "hour", "EC2 m6i.large on demand, Linux", _EC2),
    "ec2:m5.large": Price(0.096, "hour", "EC2 m5.large on demand, Linux", _EC2),
    "ec2:t3.large": Price(0.0832, "hour", "EC2 t3.large on demand, Linux", _EC2),
    "sagemaker:ml.t2.medium": Price(
        0.056, "hour", "SageMaker real-time inference, ml.t2.medium", _SAGEMAKER
    ),
    "sagemaker:ml.m5.large": Price(
        0.115, "hour", "SageMaker real-time inference, ml.m5.large", _SAGEMAKER
    ),
    "sagemaker_data": Price(
        0.016, "GB", "SageMaker real-time inference data processed, in or out", _SAGEMAKER
    ),
}
