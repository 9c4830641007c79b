"""checkov skips, recorded in each resource's template metadata with the reason.

checkov reads `Metadata.checkov.skip` ([{"id", "comment"}]) on a CloudFormation resource. Two
ways in: `skip(construct, ...)` beside a construct whose reason is its own, and the app-wide
decisions below, applied by an aspect to every resource of a type (including resources CDK
creates for us, such as custom-resource providers).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import jsii
from constructs import IConstruct

# Decisions that hold for every resource of a type in this app, with the reason.
APP_WIDE: dict[str, dict[str, str]] = {
    "AWS::Lambda::Function": {
        "CKV_AWS_117": "No function needs private network access: they call AWS APIs over "
        "HTTPS with IAM. A VPC would add cold-start time and, without NAT ($33/month), cut "
        "them off from those APIs.",
        "CKV_AWS_173": "Environment variables hold resource names and limits, never secrets; "
        "Lambda encrypts them at rest with the AWS managed key. A customer key would add cost "
        "and a decrypt call to every cold start for no secret.",
        "CKV_AWS_116": "Asynchronous functions send failures to an on-failure SQS destination "
        "(with the error); the rest are invoked synchronously (API Gateway, CloudFormation), "
        "where the caller receives the failure.",
        "CKV_AWS_115": "Reservations are config (reserved_concurrency, "
        "launcher_reserved_concurrency), 0 by default: Lambda keeps 100 executions unreserved, "
        "so a new account (quota 10) refuses any reservation; the background functions run a "
        "handful of times a day and are capped by their triggers.",
    },
    "AWS::Logs::LogGroup": {
        "CKV_AWS_158": "Logs never carry request bodies, query values or secrets; CloudWatch "
        "Logs encrypts them at rest. A customer key per group would cost $1/month each.",
    },
    "AWS::SQS::Queue": {
        "CKV_AWS_27": "Encrypted with SQS-managed keys (SqsManagedSseEnabled), which this check "
        "does not recognise; the queues hold event envelopes, never secrets.",
    },
}


def skip(construct: IConstruct, check: str, reason: str) -> None:
    """Record that `check` is skipped on the construct's CloudFormation resource, and why."""
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    _add(resource, check, reason)


def _add(resource: cdk.CfnResource, check: str, reason: str) -> None:
    """Append one skip to the resource's `checkov` metadata (idempotent per check)."""
    metadata: dict[str, Any] = resource.get_metadata("checkov") or {"skip": []}
    if all(entry["id"] != check for entry in metadata["skip"]):
        metadata["skip"].append({"id": check, "comment": reason})
    resource.add_metadata("checkov", metadata)


@jsii.implements(cdk.IAspect)
class AppWideSkips:
    """Applies APP_WIDE to every resource of the listed types."""

    def visit(self, node: IConstruct) -> None:
        """Annotate `node` when it is a resource of a listed type."""
        if isinstance(node, cdk.CfnResource):
            for check, reason in APP_WIDE.get(node.cfn_resource_type, {}).items():
                _add(node, check, reason)
