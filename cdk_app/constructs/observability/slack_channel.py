"""Slack through AWS Chatbot: a channel on the alarm topics, and a guarded rollback button.

What a channel member can do is the intersection of the channel role and the guardrail
policies (https://docs.aws.amazon.com/chatbot/latest/adminguide/understanding-permissions.html):
both hold the same two policies, reading alarm metrics and invoking the rollback function.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_app.constructs.serving.serving_function import versions_finding
from cdk_app.constructs.shared.python_function import PythonFunction
from training.contract import REQUESTED_BY, Env

# The button goes on CloudWatch's own alarm cards, which every alarm sends to the topic.
ALARM_NOTIFICATIONS = "CloudWatch"
ROLLBACK_BUTTON = "Roll back the model"
# The variable the button's command text prompts for: Chatbot fills `$by` with the answer.
REQUESTED_BY_VARIABLE = "by"


class SlackRollback(Construct):
    """The function the Slack button invokes (training.control.slack_rollback), with its rights."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        environment: Mapping[str, str],
        registry: dynamodb.ITableV2,
        serving_function: lambda_.Function,
        serving_alias: lambda_.IAlias,
        serving_repository: ecr.IRepository,
        model_repository: ecr.IRepository,
        application: codedeploy.ILambdaApplication,
        deployment_group: codedeploy.ILambdaDeploymentGroup,
        architecture: lambda_.Architecture,
        log_retention_days: int,
        function_name: str,
    ) -> None:
        super().__init__(scope, id_)
        self.handler = PythonFunction(
            self,
            "Rollback",
            handler="training.control.slack_rollback.handler",
            description="Rolls the API back to the registry's rollback model from Slack",
            environment=dict(environment),
            architecture=architecture,
            log_retention_days=log_retention_days,
            # Publishing waits for the image version to be active
            # (training.control.promotion.publish).
            timeout=cdk.Duration.minutes(5),
        )
        self.function = self.handler.function
        # A name of our own, short and known at synth: the button's command names the function,
        # and Chatbot's CreateCustomAction takes at most 100 characters of command text.
        cfn_rollback = self.function.node.default_child
        assert isinstance(cfn_rollback, lambda_.CfnFunction)  # noqa: S101 - the L2's child
        cfn_rollback.function_name = function_name
        self.function_name = function_name
        stack = cdk.Stack.of(self)
        function_arn = serving_function.function_arn
        versions = f"{function_arn}:*"
        # The same calls as `make rollback`: training.control.promotion's rollback and, when an
        # ended deployment's event was lost, its settlement (which restores $LATEST after a
        # failure).
        registry.grant(
            self.function,
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "dynamodb:ConditionCheckItem",
        )
        statements = [
            iam.PolicyStatement(
                sid="MoveTheLiveModelPointer",
                actions=["ssm:GetParameter", "ssm:PutParameter"],
                resources=[
                    stack.format_arn(
                        service="ssm",
                        resource="parameter",
                        resource_name=environment[Env.LIVE_MODEL_PARAMETER].lstrip("/"),
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="TagAndPullModelImages",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:PutImage",
                    "ecr:DescribeImages",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[model_repository.repository_arn],
            ),
            iam.PolicyStatement(
                sid="PullServedImages",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[serving_repository.repository_arn],
            ),
            iam.PolicyStatement(
                sid="ReadTheAlias",
                actions=[
                    "lambda:GetAlias",
                    "lambda:GetFunction",
                    "lambda:GetFunctionConfiguration",
                ],
                resources=[function_arn, serving_alias.function_arn],
            ),
            iam.PolicyStatement(
                sid="ReadPublishedVersions",
                actions=["lambda:GetFunction", "lambda:GetFunctionConfiguration"],
                resources=[versions],
            ),
            iam.PolicyStatement(
                sid="DeployTheRollbackImage",
                actions=["lambda:UpdateFunctionCode", "lambda:PublishVersion"],
                resources=[function_arn],
            ),
            iam.PolicyStatement(
                sid="DeployAllAtOnce",
                actions=[
                    "codedeploy:CreateDeployment",
                    "codedeploy:GetDeployment",
                    "codedeploy:GetDeploymentConfig",
                    "codedeploy:GetApplicationRevision",
                    "codedeploy:RegisterApplicationRevision",
                ],
                resources=[
                    application.application_arn,
                    deployment_group.deployment_group_arn,
                    stack.format_arn(
                        service="codedeploy",
                        resource="deploymentconfig",
                        resource_name="CodeDeployDefault.LambdaAllAtOnce",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    ),
                ],
            ),
        ]
        for statement in statements:
            self.function.add_to_role_policy(statement)
        # The finding id needs the serving function's logical id: this is why the function
        # lives in the serving function's stack (an imported ARN has no stable id).
        cdk.Validations.of(self.handler.role).acknowledge(
            cdk.Acknowledgment(
                id=versions_finding(serving_function),
                reason="Reads of the serving function's own versions (is the published one "
                "active, which image an older one runs), numbered by each deploy and promotion.",
            )
        )


class SlackChannel(Construct):
    """Posts every alarm topic message to one Slack channel, with a guarded rollback button.

    Members can read metrics and, with `rollback`, press the button on an alarm card; nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        workspace_id: str,
        channel_id: str,
        topics: list[sns.ITopic],
        rollback: lambda_.IFunction | None = None,
        rollback_name: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        # Chatbot posts notifications without any permission; this read-only policy lets it
        # draw alarm graphs and bounds what anyone in the channel can ask for.
        read_metrics = iam.ManagedPolicy(
            self,
            "ReadMetrics",
            description="Chatbot channel: read CloudWatch alarms and metrics, nothing else",
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "cloudwatch:DescribeAlarms",
                        "cloudwatch:GetMetricData",
                        "cloudwatch:GetMetricStatistics",
                    ],
                    resources=["*"],
                )
            ],
        )
        cdk.Validations.of(read_metrics).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="CloudWatch's DescribeAlarms and GetMetric* have no resource-level "
                "permissions; the policy grants these three read calls only.",
            )
        )
        policies: list[iam.IManagedPolicy] = [read_metrics]
        self.invoke_rollback: iam.ManagedPolicy | None = None
        self.rollback_action: chatbot.CfnCustomAction | None = None
        if rollback is not None:
            self.invoke_rollback = iam.ManagedPolicy(
                self,
                "InvokeRollback",
                description="Chatbot channel: invoke the Slack rollback function, nothing else",
                statements=[
                    iam.PolicyStatement(
                        actions=["lambda:InvokeFunction"], resources=[rollback.function_arn]
                    )
                ],
            )
            policies.append(self.invoke_rollback)
            if rollback_name is None:
                raise ValueError("rollback_name: the button's command names the function")
            self.rollback_action = _rollback_action(
                self, f"{scope.node.id}-rollback", rollback_name
            )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("chatbot.amazonaws.com"),
            managed_policies=policies,
        )
        self.channel = chatbot.SlackChannelConfiguration(
            self,
            "Channel",
            slack_channel_configuration_name=f"{scope.node.id}-alarms"[:128],
            slack_workspace_id=workspace_id,
            slack_channel_id=channel_id,
            notification_topics=topics,
            role=role,
            guardrail_policies=policies,
            logging_level=chatbot.LoggingLevel.ERROR,
        )


# CreateCustomAction's CustomActionDefinition.CommandText: "Maximum length of 100" (Chatbot
# API Reference); CloudFormation's schema says 5,000, but it calls that API.
COMMAND_TEXT_LIMIT = 100


def rollback_command(function_name: str) -> str:
    """The button's command: invoke the rollback function, passing who asked."""
    payload = f'{{"{REQUESTED_BY}":"${REQUESTED_BY_VARIABLE}"}}'
    command = f"lambda invoke --function-name {function_name} --payload {payload}"
    if len(command) > COMMAND_TEXT_LIMIT:
        raise ValueError(
            f"the Slack rollback command is {len(command)} characters; Chatbot takes at most "
            f"{COMMAND_TEXT_LIMIT}: shorten project_name or environment"
        )
    return command


def _rollback_action(scope: Construct, name: str, function_name: str) -> chatbot.CfnCustomAction:
    """A button on alarm cards that runs `lambda invoke` of `function` with who asked.

    A variable in the command text that the notification does not define is asked of the
    person who runs the action (AWS's CreateCustomAction sample, "you're prompted for the
    function name"): Chatbot prompts for the name the registry records.
    """
    return chatbot.CfnCustomAction(
        scope,
        "RollbackAction",
        # Custom actions are per account: the stack's id keeps two deployments apart.
        action_name=name[:64],
        definition=chatbot.CfnCustomAction.CustomActionDefinitionProperty(
            command_text=rollback_command(function_name)
        ),
        attachments=[
            chatbot.CfnCustomAction.CustomActionAttachmentProperty(
                notification_type=ALARM_NOTIFICATIONS, button_text=ROLLBACK_BUTTON
            )
        ],
    )
