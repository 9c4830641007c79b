"""Execution roles for our functions: their own log group and X-Ray, no managed policy."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct


def lambda_role(scope: Construct, id_: str, *, logs: logs.ILogGroup, description: str) -> iam.Role:
    """A role that may write to `logs` (instead of AWSLambdaBasicExecutionRole's any group)."""
    role = iam.Role(
        scope,
        id_,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="OwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[logs.log_group_arn],
        )
    )
    cdk.Validations.of(role).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-IAM5[Resource::*]",
            reason="Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, "
            "which X-Ray only grants on all resources.",
        )
    )
    return role
