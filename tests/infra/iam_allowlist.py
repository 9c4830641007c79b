"""Reviewed IAM wildcards: every Allow statement with `*` in an action or resource is here.

Each entry names where (construct path pattern), what (actions, resource pattern as rendered
by test_security.render) and why. A new wildcard fails tests/infra/test_security.py until it
is added here with a reason a reviewer accepts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wildcard:
    """One accepted wildcard statement."""

    path: str  # fnmatch pattern over "<stack>/<construct path>"
    actions: frozenset[str]
    resource: str  # fnmatch pattern over the rendered resource
    reason: str


def _w(path: str, actions: set[str], resource: str, reason: str) -> Wildcard:
    return Wildcard(path, frozenset(actions), resource, reason)


XRAY = {"xray:PutTelemetryRecords", "xray:PutTraceSegments"}

ALLOWED = (
    _w(
        "*-api/Promotion/Watcher/Role/DefaultPolicy/Resource",
        {"lambda:GetFunction"},
        "<ServingFunction*.Arn>:*",
        "Reads the image of the version the alias serves again after a failed deployment, to "
        "point $LATEST back at it; versions are numbered by each deploy and promotion.",
    ),
    _w(
        "*-api/Promotion/Promoter/Role/DefaultPolicy/Resource",
        {"lambda:GetFunctionConfiguration"},
        "<ServingFunction*.Arn>:*",
        "Waits for the version a promotion published to be active before CodeDeploy shifts "
        "traffic to it; versions are numbered by each promotion.",
    ),
    _w(
        "*-api/SlackRollback/Rollback/Role/DefaultPolicy/Resource",
        {"lambda:GetFunction", "lambda:GetFunctionConfiguration"},
        "<ServingFunction*.Arn>:*",
        "The Slack rollback waits for the version it published to be active and, when a lost "
        "deployment event left a failed canary unsettled, reads the served version's image; "
        "reads only, of versions each deploy and promotion number.",
    ),
    _w(
        "*-api/Release/Releaser/Role/DefaultPolicy/Resource",
        {"lambda:GetAlias", "lambda:GetFunction", "lambda:GetFunctionConfiguration"},
        "<ServingFunction*.Arn>:*",
        "Reads of the serving function's own alias and versions (which version the alias "
        "serves, whether the new version is active and runs this deploy's image).",
    ),
    _w(
        "*/Role/DefaultPolicy/Resource",
        XRAY,
        "*",
        "Active tracing: X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level "
        "permissions.",
    ),
    _w(
        "*/Alarms/Key/Resource",
        {"kms:*"},
        "*",
        "CDK's default key policy: the account administers the key, so IAM policies can grant "
        "its use; in a key policy '*' means this key only.",
    ),
    _w(
        "*/Alarms/Key/Resource",
        {"kms:Decrypt", "kms:GenerateDataKey*"},
        "*",
        "CloudWatch, EventBridge and Budgets (and SNS for e-mail) must encrypt messages for "
        "the alarm topic; '*' is this key, and the statement is limited to this account.",
    ),
    _w(
        "*-data/AccessLogs/Bucket/Policy/Resource",
        {"s3:PutObject"},
        "<AccessLogsBucket*.Arn>/*",
        "S3's log delivery writes access logs under each bucket's prefix; the grant is "
        "limited to the logging service and the source buckets of this account.",
    ),
    _w(
        "*-data/DataLake/ReadDatasets/Resource",
        {"s3:GetObject", "s3:GetObjectVersion"},
        "<DataLakeBucket*.Arn>/datasets/*",
        "Training may read any dataset version, added without redeploying; read-only, and "
        "only under datasets/.",
    ),
    _w(
        "*-pipeline/Trainer/Role/DefaultPolicy/Resource",
        {"ecr:GetAuthorizationToken"},
        "*",
        "docker login: GetAuthorizationToken has no resource-level permissions; pushing is "
        "limited to the model repository.",
    ),
    _w(
        "*-pipeline/Training/LaunchTrainers/Resource",
        {"ec2:CreateTags", "ec2:RunInstances"},
        "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:*/*",
        "RunInstances creates the instance, its volume and network interface, whose ids do not "
        "exist yet; the launch templates, subnets and security group are named.",
    ),
    _w(
        "*-pipeline/Training/LaunchTrainers/Resource",
        {"ec2:RunInstances"},
        "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:spot-instances-request/*",
        "A Spot RunInstances creates its Spot Instance request, whose id does not exist yet; "
        "RunInstances only (nothing tags Spot requests), the template and subnets are named.",
    ),
    _w(
        "*-pipeline/Training/LaunchTrainers/Resource",
        {"ec2:RunInstances"},
        "arn:<AWS::Partition>:ec2:<AWS::Region>::image/*",
        "The trainer AMI changes with every rebuild; the statement admits only AMIs this "
        "account owns (ec2:Owner condition).",
    ),
    _w(
        "*-pipeline/Training/WatchTrainers/Resource",
        {"ec2:DescribeInstances"},
        "*",
        "DescribeInstances has no resource-level permissions.",
    ),
    _w(
        "*-pipeline/Training/WatchTrainers/Resource",
        {"ec2:TerminateInstances"},
        "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*",
        "Trainer instance ids are not known in advance; a condition limits it to instances "
        "tagged with a RunId by the launcher.",
    ),
    _w(
        "*-observability/Slack/ReadMetrics/Resource",
        {"cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics"},
        "*",
        "Chatbot's graphs: these CloudWatch reads have no resource-level permissions.",
    ),
)
