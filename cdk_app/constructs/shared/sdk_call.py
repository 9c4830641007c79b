"""A deploy-time AWS SDK call (CloudFormation custom resource) with the app's defaults."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_app.constructs.shared.log_group import log_group


class DeployTimeCall(Construct):
    """Runs `call` on create and update; its role may write its logs and do `statements`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        call: cr.AwsSdkCall,
        statements: list[iam.PolicyStatement],
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        logs = log_group(self, "Logs", retention_days=log_retention_days)
        # Our own role: the provider's default carries the AWSLambdaBasicExecutionRole managed
        # policy; this one may write to its own log group and make this call, nothing else.
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            inline_policies={
                "logs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                            resources=[logs.log_group_arn],
                        )
                    ]
                )
            },
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Call",
            on_create=call,
            on_update=call,
            install_latest_aws_sdk=False,
            role=role,
            log_group=logs,
            memory_size=256,
            timeout=cdk.Duration.minutes(2),
            policy=cr.AwsCustomResourcePolicy.from_statements(statements),
        )
        # The provider is one Lambda per stack, created beside (not inside) this construct.
        provider_id = "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
        provider = cdk.Stack.of(self).node.find_child(provider_id)
        cdk.Validations.of(provider).acknowledge(
            cdk.Acknowledgment(
                id="Serverless-LambdaDLQ",
                reason="CloudFormation invokes this provider synchronously and records a failed "
                "call as a failed stack operation; there is no asynchronous event to dead-letter.",
            ),
            cdk.Acknowledgment(
                id="Serverless-LambdaTracing",
                reason="A deploy-time hook that makes one SDK call per stack operation; its log "
                "group records each call, and X-Ray traces would add cost without insight.",
            ),
        )
