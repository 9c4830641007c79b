"""Promotion: a registered model reaches the API through a canary that can roll itself back.

The promoter Lambda takes a "Model Registered" event (from the registrar), updates the serving
function's image, publishes a version and starts a CodeDeploy deployment that shifts the `live`
alias by the configured canary. CodeDeploy rolls back on its own when a guard alarm fires
(function errors, API 5xx, API p99 latency). The watcher Lambda follows the deployment: on
success it invalidates CloudFront's cached predictions; on failure it records the model as
failed and puts the registry's pointers back. `make promote` and `make rollback` run the same
code from a laptop.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app.constructs.serving.http_api import ServingApi
from cdk_app.constructs.serving.serving_function import ServingFunction, versions_finding
from cdk_app.constructs.shared.python_function import PythonFunction
from training.contract import (
    DEPLOYMENT_ENDS,
    DEPLOYMENT_STATE_CHANGE,
    MODEL_REGISTERED,
    REGISTRY_EVENT_SOURCE,
    Env,
)

_Config = codedeploy.LambdaDeploymentConfig
_CONFIGS = {
    "Canary10Percent5Minutes": _Config.CANARY_10_PERCENT_5_MINUTES,
    "Canary10Percent10Minutes": _Config.CANARY_10_PERCENT_10_MINUTES,
    "Canary10Percent15Minutes": _Config.CANARY_10_PERCENT_15_MINUTES,
    "Linear10PercentEvery1Minute": _Config.LINEAR_10_PERCENT_EVERY_1_MINUTE,
    "AllAtOnce": _Config.ALL_AT_ONCE,
}


def _guard(
    scope: Construct,
    id_: str,
    what: str,
    metric: cloudwatch.IMetric,
    *,
    threshold: float,
    comparison: cloudwatch.ComparisonOperator,
    evaluation_periods: int = 1,
) -> cloudwatch.Alarm:
    """An alarm CodeDeploy watches during a canary; no data (no traffic) is not a failure."""
    return cloudwatch.Alarm(
        scope,
        id_,
        alarm_description=f"Canary guard: {what}",
        metric=metric,
        threshold=threshold,
        evaluation_periods=evaluation_periods,
        comparison_operator=comparison,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


class Promotion(Construct):
    """Guard alarms, CodeDeploy application and group, promoter and watcher functions."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        serving: ServingFunction,
        api: ServingApi,
        distribution: cloudfront.IDistribution,
        registry: dynamodb.ITableV2,
        live_model_parameter: str,
        repository: ecr.IRepository,
        canary: str,
        latency_p99_threshold_ms: int,
        architecture: lambda_.Architecture,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        minute = cdk.Duration.minutes(1)
        # Keyed by the API's id and the stage's literal name: a Ref to the stage would close a
        # dependency cycle (stage -> routes -> alias -> deployment group -> alarm -> stage).

        def api_metric(name: str, statistic: str) -> cloudwatch.Metric:
            return api.metric(name, statistic, minute)

        at_least = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        self.guard_alarms = [
            _guard(
                self,
                "FunctionErrors",
                "the serving function raised an error",
                serving.alias.metric_errors(period=minute, statistic="Sum"),
                threshold=1,
                comparison=at_least,
            ),
            _guard(
                self,
                "Api5xx",
                "the API answered 5xx",
                api_metric("5xx", "Sum"),
                threshold=1,
                comparison=at_least,
            ),
            _guard(
                self,
                "ApiLatencyP99",
                f"API p99 latency above {latency_p99_threshold_ms} ms",
                api_metric("Latency", "p99"),
                threshold=latency_p99_threshold_ms,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=2,
            ),
        ]
        self.application = codedeploy.LambdaApplication(self, "Application")
        self.deployment_group = codedeploy.LambdaDeploymentGroup(
            self,
            "Canary",
            application=self.application,
            alias=serving.alias,
            deployment_config=_CONFIGS[canary],
            alarms=self.guard_alarms,
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        cdk.Validations.of(self.deployment_group).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]",
                reason="AWS's documented service policy for CodeDeploy Lambda deployments: it "
                "may read the guard alarms and move the alias, nothing else.",
            )
        )

        environment = {
            Env.REGISTRY_TABLE: registry.table_name,
            Env.FUNCTION_NAME: serving.function.function_name,
            Env.ALIAS_NAME: serving.alias.alias_name,
            Env.LIVE_MODEL_PARAMETER: live_model_parameter,
            Env.CODEDEPLOY_APPLICATION: self.application.application_name,
            Env.DEPLOYMENT_GROUP: self.deployment_group.deployment_group_name,
            Env.DISTRIBUTION_ID: distribution.distribution_id,
            Env.REPOSITORY_NAME: repository.repository_name,
        }
        # The promoter's, the watcher's and the releaser's settings (training.control.promotion).
        self.environment = environment
        self.promoter = PythonFunction(
            self,
            "Promoter",
            handler="training.control.promoter.handler",
            description="Promotes a newly registered model through a CodeDeploy canary",
            environment=environment,
            architecture=architecture,
            log_retention_days=log_retention_days,
            timeout=cdk.Duration.minutes(5),
        )
        self.watcher = PythonFunction(
            self,
            "Watcher",
            handler="training.control.promoter.deployment_handler",
            description="Settles the registry and CloudFront cache when a deployment ends",
            environment=environment,
            architecture=architecture,
            log_retention_days=log_retention_days,
            timeout=cdk.Duration.minutes(2),
        )
        stack = cdk.Stack.of(self)
        versions = versions_finding(serving.function)
        parameter_arn = stack.format_arn(
            service="ssm",
            resource="parameter",
            resource_name=live_model_parameter.lstrip("/"),
        )
        for fn in (self.promoter, self.watcher):
            registry.grant(
                fn.function,
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
                "dynamodb:ConditionCheckItem",
            )
            fn.function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="MoveTheLiveModelPointer",
                    actions=["ssm:GetParameter", "ssm:PutParameter"],
                    resources=[parameter_arn],
                )
            )
            fn.function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="TagLiveAndRollbackImages",
                    actions=["ecr:BatchGetImage", "ecr:PutImage", "ecr:DescribeImages"],
                    resources=[repository.repository_arn],
                )
            )
            fn.function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ShiftTheAlias",
                    actions=[
                        "lambda:GetAlias",
                        "lambda:GetFunction",
                        "lambda:GetFunctionConfiguration",
                    ],
                    resources=[serving.function.function_arn, serving.alias.function_arn],
                )
            )
        # CodeDeploy must not shift traffic to a version whose image Lambda is still optimising:
        # the promoter waits for the published version itself (a qualified ARN) to be active.
        self.promoter.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="WaitForPublishedVersions",
                actions=["lambda:GetFunctionConfiguration"],
                resources=[f"{serving.function.function_arn}:*"],
            )
        )
        cdk.Validations.of(self.promoter.role).acknowledge(
            cdk.Acknowledgment(
                id=versions,
                reason="GetFunctionConfiguration of the serving function's own versions, whose "
                "numbers each promotion creates; read-only.",
            )
        )
        self.promoter.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeployNewImages",
                actions=["lambda:UpdateFunctionCode", "lambda:PublishVersion"],
                resources=[serving.function.function_arn],
            )
        )
        # Lambda pulls the image with the caller's rights when the code is updated.
        self.promoter.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="PullModelImages",
                actions=["ecr:GetDownloadUrlForLayer"],
                resources=[repository.repository_arn],
            )
        )
        self.promoter.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="StartCanaries",
                actions=[
                    "codedeploy:CreateDeployment",
                    "codedeploy:GetDeployment",
                    "codedeploy:GetDeploymentConfig",
                    "codedeploy:GetApplicationRevision",
                    "codedeploy:RegisterApplicationRevision",
                ],
                resources=[
                    self.application.application_arn,
                    self.deployment_group.deployment_group_arn,
                    self.deployment_group.deployment_config.deployment_config_arn,
                    stack.format_arn(
                        service="codedeploy",
                        resource="deploymentconfig",
                        resource_name="CodeDeployDefault.LambdaAllAtOnce",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    ),
                ],
            )
        )
        self.watcher.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="InvalidateCachedPredictions",
                actions=["cloudfront:CreateInvalidation"],
                resources=[
                    stack.format_arn(
                        service="cloudfront",
                        region="",
                        resource="distribution",
                        resource_name=distribution.distribution_id,
                    )
                ],
            )
        )
        # After a failed deployment the watcher points $LATEST back at the image the alias
        # serves again, so CloudFormation never publishes the failed image
        # (training.control.promotion).
        self.watcher.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadServedVersions",
                actions=["lambda:GetFunction"],
                resources=[serving.function.function_arn, f"{serving.function.function_arn}:*"],
            )
        )
        self.watcher.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RestoreLatest",
                actions=["lambda:UpdateFunctionCode"],
                resources=[serving.function.function_arn],
            )
        )
        cdk.Validations.of(self.watcher.role).acknowledge(
            cdk.Acknowledgment(
                id=versions,
                reason="GetFunction on the serving function's own versions (qualified ARNs), "
                "whose numbers each deploy and promotion create.",
            )
        )
        self.watcher.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="PullServedImages",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[repository.repository_arn, serving.image.repository.repository_arn],
            )
        )
        self.watcher.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadDeployments",
                actions=["codedeploy:GetDeployment"],
                resources=[self.deployment_group.deployment_group_arn],
            )
        )

        events.Rule(
            self,
            "ModelRegistered",
            description="The registrar recorded a model that passed the gate: promote it",
            event_pattern=events.EventPattern(
                source=[REGISTRY_EVENT_SOURCE], detail_type=[MODEL_REGISTERED]
            ),
            targets=[
                targets.LambdaFunction(
                    self.promoter.function,
                    dead_letter_queue=self.promoter.dead_letters,
                    retry_attempts=2,
                )
            ],
        )
        events.Rule(
            self,
            "DeploymentEnded",
            description="A serving deployment succeeded, failed or was stopped",
            event_pattern=events.EventPattern(
                source=["aws.codedeploy"],
                detail_type=[DEPLOYMENT_STATE_CHANGE],
                detail={
                    "application": [self.application.application_name],
                    "state": list(DEPLOYMENT_ENDS),
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.watcher.function,
                    dead_letter_queue=self.watcher.dead_letters,
                    retry_attempts=4,
                )
            ],
        )
