"""What the architecture picture shows: the resource kinds drawn, event sources, the two paths."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final


@dataclasses.dataclass(frozen=True)
class Shown:
    """A kind of resource the picture shows; `{name}` is the construct's name, humanized."""

    type: str
    ident: str
    kind: str
    label: str
    path: str = ""  # a regex searched in the construct path below the stack


# First match wins; a resource of any other type is hidden (IAM, permissions, log groups, queues,
# custom-resource plumbing, CDKMetadata) and lends its references to the box it belongs to.
SHOWN: Final = (
    Shown("AWS::CloudFront::Distribution", "cdn", "cdn", "CloudFront"),
    Shown("AWS::WAFv2::WebACL", "waf", "cdn", "WAF web ACL"),
    Shown("AWS::Route53::RecordSet", "dns", "cdn", "DNS alias (Route 53)"),
    Shown("AWS::ApiGatewayV2::Api", "api", "api", "API Gateway (HTTP API)"),
    Shown("AWS::Lambda::Function", "serving", "function", "Serving Lambda", r"^Serving/"),
    Shown(
        "AWS::Lambda::Function",
        "promoter",
        "function",
        "Promoter / Watcher",
        r"^Promotion/(Promoter|Watcher)/",
    ),
    Shown(
        "AWS::Lambda::Function",
        "authorizer",
        "function",
        "Origin-lock authorizer",
        r"^OriginLock/",
    ),
    Shown(
        "AWS::Lambda::Function",
        "registry-metrics",
        "function",
        "Registry metrics Lambda",
        r"^RegistryMetrics/",
    ),
    Shown("AWS::Lambda::Function", "{name}", "function", "{Name} Lambda"),
    Shown("AWS::S3::Bucket", "datalake", "storage", "Data lake (S3)", r"^DataLake/"),
    Shown("AWS::S3::Bucket", "access-logs", "storage", "Access logs (S3)", r"^AccessLogs/"),
    Shown("AWS::S3::Bucket", "cdn-logs", "storage", "CDN logs (S3)", r"^Cdn/"),
    Shown("AWS::S3::Bucket", "{name}", "storage", "{Name} (S3)"),
    Shown(
        "AWS::DynamoDB::GlobalTable", "registry", "storage", "Registry (DynamoDB)", r"^Registry/"
    ),
    Shown("AWS::DynamoDB::Table", "registry", "storage", "Registry (DynamoDB)", r"^Registry/"),
    Shown("AWS::DynamoDB::GlobalTable", "{name}", "storage", "{Name} (DynamoDB)"),
    Shown("AWS::DynamoDB::Table", "{name}", "storage", "{Name} (DynamoDB)"),
    Shown("AWS::ECR::Repository", "models", "storage", "ECR models", r"^Models/"),
    Shown("AWS::ECR::Repository", "{name}", "storage", "{Name} (ECR)"),
    Shown("AWS::EC2::LaunchTemplate", "trainer", "trainer", "Spot trainer", r"^Trainer/"),
    Shown("AWS::ImageBuilder::ImagePipeline", "ami", "trainer", "Image Builder AMI"),
    Shown("AWS::ImageBuilder::Image", "ami", "trainer", "Image Builder AMI"),
    Shown("AWS::EC2::VPC", "vpc", "network", "VPC"),
    Shown("AWS::SNS::Topic", "alarm-topic", "messaging", "Alarms (SNS)", r"^Alarms/"),
    Shown("AWS::SNS::Topic", "{name}", "messaging", "{Name} (SNS)"),
    Shown("AWS::CloudWatch::Alarm", "guard-alarms", "alarm", "Canary guard alarms", r"^Promotion/"),
    Shown("AWS::CloudWatch::Alarm", "cdn-alarms", "alarm", "CloudFront alarms", r"^Cdn/"),
    Shown("AWS::CloudWatch::Alarm", "{scope}-alarms", "alarm", "{Scope} alarms"),
    Shown("AWS::CloudWatch::Dashboard", "dashboard", "monitoring", "Dashboard"),
    Shown("AWS::Budgets::Budget", "budget", "monitoring", "Budget"),
    Shown("AWS::Chatbot::SlackChannelConfiguration", "slack", "chat", "Slack (Chatbot)"),
    Shown(
        "AWS::SecretsManager::Secret",
        "origin-secret",
        "security",
        "Origin-lock secret",
        r"^OriginLock/",
    ),
    Shown("AWS::SecretsManager::Secret", "{name}", "security", "{Name} secret"),
    Shown("AWS::CodeDeploy::DeploymentGroup", "canary", "deploy", "CodeDeploy canary"),
    Shown("AWS::CodeDeploy::Application", "canary", "deploy", "CodeDeploy canary"),
)

# Event sources whose rules name no resource: the resource types that emit them.
EVENT_SOURCES: Final[Mapping[str, tuple[str, ...]]] = {
    "aws.ec2": ("AWS::EC2::LaunchTemplate",),
    "aws.s3": ("AWS::S3::Bucket",),
    "aws.ecr": ("AWS::ECR::Repository",),
    "aws.codedeploy": ("AWS::CodeDeploy::DeploymentGroup",),
}

USER: Final = "user"
# The two paths, hop by hop: (from, to, label), nodes named "<stack role>:<ident>".
REQUEST_PATH: Final = (
    (USER, "api:cdn", "HTTPS"),
    ("api:cdn", "api:api", "origin key (authorizer)"),
    ("api:api", "api:serving", "proxy to alias live"),
)
TRAINING_PATH: Final = (
    ("data:datalake", "pipeline:launcher", "new dataset version"),
    ("pipeline:launcher", "pipeline:trainer", "RunInstances (Spot)"),
    ("pipeline:trainer", "pipeline:models", "docker push"),
    ("pipeline:models", "pipeline:registrar", "image pushed"),
    ("pipeline:registrar", "pipeline:registry", "record model"),
    ("pipeline:registry", "api:promoter", "model registered"),
    ("api:promoter", "api:serving", "canary (CodeDeploy)"),
)
PATHS: Final = {"request": REQUEST_PATH, "training": TRAINING_PATH}
