"""Release: after a `cdk deploy` publishes a new serving version, shift `live` to it by canary.

A custom resource backed by the releaser Lambda (training.control.release). Its properties are the
version this deploy published and the model it carries, so it runs exactly when code or
configuration changed (a new version) and does nothing on a no-change deploy. The handler reads
the alias's real version, so promotions made since the last deploy are respected, and deploys
through the promotion's CodeDeploy group: same canary, same guard alarms, same watcher.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app.constructs.serving.promotion import Promotion
from cdk_app.constructs.serving.serving_function import ServingFunction, versions_finding
from cdk_app.constructs.shared.python_function import PythonFunction


class ServingRelease(Construct):
    """The releaser function and the custom resource that calls it on every new version."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        serving: ServingFunction,
        promotion: Promotion,
        registry: dynamodb.ITableV2,
        architecture: lambda_.Architecture,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        self.releaser = PythonFunction(
            self,
            "Releaser",
            handler="training.control.release.handler",
            description="Shifts the live alias to the version a cdk deploy published (canary)",
            environment=promotion.environment,
            architecture=architecture,
            log_retention_days=log_retention_days,
            # Waiting for a new image version to become active can take a minute or two.
            timeout=cdk.Duration.minutes(10),
        )
        fn = self.releaser.function
        # Reads the live pointer, appends the release's audit event (a one-item transaction).
        registry.grant(fn, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem")
        function_arn = serving.function.function_arn
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadTheAliasAndVersions",
                actions=[
                    "lambda:GetAlias",
                    "lambda:GetFunction",
                    "lambda:GetFunctionConfiguration",
                ],
                # Qualified ARNs (`:live`, `:7`) are separate resources to IAM.
                resources=[function_arn, f"{function_arn}:*"],
            )
        )
        # When $LATEST held another image than this deploy's (a promotion since), the release
        # publishes the deploy's image itself; Lambda pulls it with the caller's rights.
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="PublishTheDeploysImage",
                actions=["lambda:UpdateFunctionCode", "lambda:PublishVersion"],
                resources=[function_arn],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="PullTheDeploysImage",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[serving.image.repository.repository_arn],
            )
        )
        group = promotion.deployment_group
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="StartTheCanary",
                actions=[
                    "codedeploy:CreateDeployment",
                    "codedeploy:GetDeployment",
                    "codedeploy:ListDeployments",
                    "codedeploy:GetDeploymentConfig",
                    "codedeploy:GetApplicationRevision",
                    "codedeploy:RegisterApplicationRevision",
                ],
                resources=[
                    promotion.application.application_arn,
                    group.deployment_group_arn,
                    group.deployment_config.deployment_config_arn,
                ],
            )
        )
        cdk.Validations.of(fn.role or fn).acknowledge(
            cdk.Acknowledgment(
                id=versions_finding(serving.function),
                reason="Reads (GetAlias, GetFunction, GetFunctionConfiguration) of the serving "
                "function's own alias and versions, whose numbers each deploy and promotion "
                "create.",
            )
        )
        self.resource = cdk.CustomResource(
            self,
            "Release",
            service_token=fn.function_arn,
            resource_type="Custom::ServingRelease",
            properties={
                "TargetVersion": serving.version.version,
                "ModelVersion": serving.model_version,
                "ImageUri": serving.image.image_uri,
                "Reason": "serving code or configuration changed by cdk deploy",
            },
        )
        # CodeDeploy needs the group and its alarms in place before a release can use them.
        self.resource.node.add_dependency(group)
        self.resource.node.add_dependency(serving.alias)
