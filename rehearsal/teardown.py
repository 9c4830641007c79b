"""The last two checks: a no-change redeploy changes nothing; destroy keeps the README's list."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from rehearsal import deploy
from rehearsal.checks import PREFIX, CheckFailed, Context

BOOTSTRAP = "cdk-hnb659fds-"
# README "Teardown" and docs/runbook.md: what `make destroy` keeps, by stack and logical id
# prefix (the ids CDK derives from the construct paths).
RETAINED = {
    ("data", "AWS::S3::Bucket", "DataLakeBucket"),
    ("data", "AWS::S3::Bucket", "AccessLogsBucket"),
    ("api", "AWS::S3::Bucket", "CdnLogsBucket"),
    ("pipeline", "AWS::DynamoDB::GlobalTable", "RegistryTable"),
    ("pipeline", "AWS::ECR::Repository", "ModelsRepository"),
}
LIVE_MODEL_PARAMETER = f"/{PREFIX}/serving/live-model-version"
KINDS = ("AWS::S3::Bucket", "AWS::DynamoDB::GlobalTable", "AWS::ECR::Repository", "AWS::IAM::Role")


def redeploy_unchanged(
    stacks: list[deploy.Stack], assembly: Path, workdir: Path, env: Mapping[str, str]
) -> str:
    """Deploy every stack again: the CLI finds no changes and each stack stays CREATE_COMPLETE."""
    changed = []
    for stack in stacks:
        output = deploy.deploy(stack, assembly=assembly, workdir=workdir, env=env)
        status = boto3.client("cloudformation", region_name=stack.region).describe_stacks(
            StackName=stack.name
        )["Stacks"][0]["StackStatus"]
        if "(no changes)" not in output or status != "CREATE_COMPLETE":
            changed.append(f"{stack.name} ({status})")
    if changed:
        raise CheckFailed(f"a redeploy of the same assembly changed {', '.join(changed)}")
    return f"{len(stacks)} stacks: no changes"


def _exists(kind: str, physical: str, region: str) -> bool:
    probes: dict[str, Any] = {
        "AWS::S3::Bucket": lambda: boto3.client("s3").head_bucket(Bucket=physical),
        "AWS::DynamoDB::GlobalTable": lambda: boto3.client(
            "dynamodb", region_name=region
        ).describe_table(TableName=physical),
        "AWS::ECR::Repository": lambda: boto3.client(
            "ecr", region_name=region
        ).describe_repositories(repositoryNames=[physical]),
        "AWS::IAM::Role": lambda: boto3.client("iam").get_role(RoleName=physical),
    }
    try:
        probes[kind]()
    except ClientError:
        return False
    return True


def destroy_keeps_retained(
    ctx: Context, stacks: list[deploy.Stack], assembly: Path, workdir: Path, env: Mapping[str, str]
) -> str:
    """`cdk destroy --all`: every stack gone, and exactly the README's list kept.

    Of the stacks' buckets, tables, repositories and roles only RETAINED remain, and the
    live-model parameter (promotion's, no stack's) stays.
    """
    before = []
    for stack in stacks:
        cloudformation = boto3.client("cloudformation", region_name=stack.region)
        for resource in cloudformation.describe_stack_resources(StackName=stack.name)[
            "StackResources"
        ]:
            if resource["ResourceType"] in KINDS:
                short = stack.name.removeprefix(f"{PREFIX}-")
                before.append(
                    (
                        short,
                        resource["ResourceType"],
                        resource["LogicalResourceId"],
                        resource["PhysicalResourceId"],
                        stack.region,
                    )
                )
    deploy.destroy(assembly=assembly, workdir=workdir, env=env)
    left = [s.name for s in stacks if _stack_exists(s)]
    if left:
        raise CheckFailed(f"stacks left after destroy: {', '.join(left)}")
    problems = []
    for short, kind, logical, physical, region in before:
        wanted = any(short == s and kind == k and logical.startswith(p) for s, k, p in RETAINED)
        if _exists(kind, physical, region) != wanted:
            problems.append(f"{short}/{logical} ({kind}) {'deleted' if wanted else 'left behind'}")
    missing = [
        prefix
        for short, kind, prefix in sorted(RETAINED)
        if not any(b[:2] == (short, kind) and b[2].startswith(prefix) for b in before)
    ]
    problems += [f"{prefix} was never deployed" for prefix in missing]
    try:
        ctx.client("ssm").get_parameter(Name=LIVE_MODEL_PARAMETER)
    except ClientError:
        problems.append(f"SSM parameter {LIVE_MODEL_PARAMETER} deleted")
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{len(RETAINED)} resources and {LIVE_MODEL_PARAMETER} kept, the rest deleted"


def _stack_exists(stack: deploy.Stack) -> bool:
    try:
        status: str = boto3.client("cloudformation", region_name=stack.region).describe_stacks(
            StackName=stack.name
        )["Stacks"][0]["StackStatus"]
    except ClientError:
        return False
    return status != "DELETE_COMPLETE"
