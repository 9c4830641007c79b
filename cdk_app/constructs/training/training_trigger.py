"""Starts and watches training runs.

The launcher Lambda starts a Spot trainer for a new dataset version (an S3 Object Created event
under `datasets/<name>/`, or a manual invoke from `make retrain`), falling back across instance
types and optionally to on-demand. The monitor Lambda, every ten minutes and whenever a trainer
instance ends, stops runs past their time limit and records runs whose instance died without a
word, so every run ends with an outcome and a reason.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.constructs.shared.python_function import PythonFunction
from cdk_app.constructs.training.spot_trainer import SpotTrainer
from cdk_app.constructs.training.trainer_network import TrainerNetwork
from training.contract import (
    DATASETS_PREFIX,
    INSTANCE_STATE_CHANGE,
    OBJECT_CREATED,
    Env,
    dataset_key,
)

# How cdk-nag renders the ARNs below in finding ids: pseudo-parameters as <AWS::...>.
_NAG_EC2 = "arn:<AWS::Partition>:ec2:<AWS::Region>"
# What RunInstances creates, so no id of it exists before the call; the launcher tags these.
_CREATED_BY_RUN_INSTANCES = ("instance", "volume", "network-interface")
# A Spot RunInstances also creates a Spot Instance request, which the launcher does not tag.
_SPOT_REQUEST = "spot-instances-request"
_SPOT_SERVICE = "spot.amazonaws.com"
_SPOT_ROLE = f"role/aws-service-role/{_SPOT_SERVICE}/AWSServiceRoleForEC2Spot"


def ec2_arn(kind: str, name: str, *, owned: bool = True) -> str:
    """An EC2 ARN in pseudo-parameters, so it reads the same whatever the stack's environment."""
    account = cdk.Aws.ACCOUNT_ID if owned else ""
    return f"arn:{cdk.Aws.PARTITION}:ec2:{cdk.Aws.REGION}:{account}:{kind}/{name}"


class TrainingTrigger(Construct):
    """Launcher and monitor functions and the events that start them."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        trainer: SpotTrainer,
        network: TrainerNetwork,
        data_bucket: s3.IBucket,
        dataset_name: str,
        registry: dynamodb.ITableV2,
        architecture: lambda_.Architecture,
        instance_types: list[str],
        on_demand_fallback: bool,
        time_limit_minutes: int,
        retrain_every_days: int,
        log_retention_days: int,
        reserved_concurrency: int,
    ) -> None:
        super().__init__(scope, id_)
        if reserved_concurrency < 0:
            raise ValueError(
                f"reserved_concurrency is {reserved_concurrency}; use 0 (no reservation) or more"
            )
        stack = cdk.Stack.of(self)
        self.launcher = PythonFunction(
            self,
            "Launcher",
            handler="training.control.launcher.handler",
            description="Starts a Spot training run for a dataset version",
            architecture=architecture,
            log_retention_days=log_retention_days,
            timeout=cdk.Duration.minutes(2),
            environment={
                Env.REGISTRY_TABLE: registry.table_name,
                Env.LAUNCH_TEMPLATE_ID: trainer.launch_template.launch_template_id or "",
                Env.ON_DEMAND_LAUNCH_TEMPLATE_ID: (
                    trainer.on_demand_template.launch_template_id or ""
                ),
                Env.SUBNET_IDS: ",".join(s.subnet_id for s in network.subnets),
                Env.INSTANCE_TYPES: ",".join(instance_types),
                Env.ON_DEMAND_FALLBACK: "true" if on_demand_fallback else "false",
                Env.TIME_LIMIT_MINUTES: str(time_limit_minutes),
                Env.DATASET_BUCKET: data_bucket.bucket_name,
            },
        )
        launcher = self.launcher.function
        # 0 reserves nothing: Lambda keeps 100 executions unreserved, so an account with the new
        # account quota of 10 refuses any reservation. Launches need none to be correct: a
        # duplicate event gets the same run id, and the registry's conditional put lets one
        # of any concurrent deliveries launch (training/control/launcher.py, launch).
        if reserved_concurrency:
            cfn_launcher = launcher.node.default_child
            assert isinstance(cfn_launcher, lambda_.CfnFunction)  # noqa: S101 - the L2's child
            cfn_launcher.reserved_concurrent_executions = reserved_concurrency
        registry.grant(launcher, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
        account = cdk.Aws.ACCOUNT_ID
        launch = iam.Policy(
            self,
            "LaunchTrainers",
            statements=[
                iam.PolicyStatement(
                    sid="FromTheTrainerTemplate",
                    actions=["ec2:RunInstances"],
                    resources=[
                        *trainer.launch_template_arns,
                        ec2_arn("security-group", network.security_group.security_group_id),
                        *(ec2_arn("subnet", s.subnet_id) for s in network.subnets),
                    ],
                ),
                iam.PolicyStatement(
                    sid="NewInstancesAndVolumes",
                    actions=["ec2:RunInstances", "ec2:CreateTags"],
                    resources=[ec2_arn(kind, "*") for kind in _CREATED_BY_RUN_INSTANCES],
                ),
                # A Spot launch is authorized against its spot-instances-request too. No
                # CreateTags on it: nothing tags Spot requests on create (EC2 User Guide, "Tag
                # Spot Instance requests"), neither RunInstances nor the launch templates.
                iam.PolicyStatement(
                    sid="NewSpotRequests",
                    actions=["ec2:RunInstances"],
                    resources=[ec2_arn(_SPOT_REQUEST, "*")],
                ),
                # The first Spot request in an account creates AWSServiceRoleForEC2Spot with the
                # caller's rights; without this it fails with
                # AuthFailure.ServiceLinkedRoleCreationNotPermitted. Only that role, only Spot's.
                iam.PolicyStatement(
                    sid="CreateSpotServiceLinkedRole",
                    actions=["iam:CreateServiceLinkedRole"],
                    resources=[f"arn:{cdk.Aws.PARTITION}:iam::{account}:{_SPOT_ROLE}"],
                    conditions={"StringLike": {"iam:AWSServiceName": _SPOT_SERVICE}},
                ),
                iam.PolicyStatement(
                    sid="OwnAmisOnly",
                    actions=["ec2:RunInstances"],
                    resources=[ec2_arn("image", "*", owned=False)],
                    conditions={"StringEquals": {"ec2:Owner": account}},
                ),
                iam.PolicyStatement(
                    sid="PassTrainerRole",
                    actions=["iam:PassRole"],
                    resources=[trainer.role.role_arn],
                ),
                iam.PolicyStatement(
                    sid="ResolveTrainerAmi",
                    actions=["ssm:GetParameters"],
                    resources=[
                        stack.format_arn(
                            service="ssm",
                            resource="parameter",
                            resource_name=trainer.ami_parameter_name.lstrip("/"),
                        )
                    ],
                ),
            ],
        )
        launch.attach_to_role(self.launcher.role)
        cdk.Validations.of(launch).acknowledge(
            *(
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{_NAG_EC2}:<AWS::AccountId>:{kind}/*]",
                    reason="RunInstances creates this resource, so its id does not exist yet; the "
                    "launch template, subnets and security group it may use are named.",
                )
                for kind in (*_CREATED_BY_RUN_INSTANCES, _SPOT_REQUEST)
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{_NAG_EC2}::image/*]",
                reason="The trainer AMI id changes with every weekly rebuild; the statement "
                "only admits AMIs this account owns (ec2:Owner).",
            ),
        )
        events.Rule(
            self,
            "NewDatasetVersion",
            description="A dataset version was written: train on it",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=[OBJECT_CREATED],
                detail={
                    "bucket": {"name": [data_bucket.bucket_name]},
                    "object": {"key": events.Match.wildcard(dataset_key(dataset_name, "*"))},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    launcher,
                    dead_letter_queue=self.launcher.dead_letters,
                    retry_attempts=4,
                    max_event_age=cdk.Duration.hours(6),
                )
            ],
        )

        if retrain_every_days:
            # The schedule trains on the newest version: the launcher lists the dataset's
            # prefix, so it may list that prefix and nothing else.
            launcher.add_to_role_policy(
                iam.PolicyStatement(
                    sid="FindNewestDatasetVersion",
                    actions=["s3:ListBucket"],
                    resources=[data_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": f"{DATASETS_PREFIX}{dataset_name}/*"}},
                )
            )
            events.Rule(
                self,
                "RetrainSchedule",
                description=f"Retrain on the newest {dataset_name} version, every "
                f"{retrain_every_days} days",
                schedule=events.Schedule.rate(cdk.Duration.days(retrain_every_days)),
                targets=[
                    targets.LambdaFunction(
                        launcher,
                        event=events.RuleTargetInput.from_object({"latest_of": dataset_name}),
                        dead_letter_queue=self.launcher.dead_letters,
                        retry_attempts=4,
                    )
                ],
            )

        self.monitor = PythonFunction(
            self,
            "Monitor",
            handler="training.control.monitor.handler",
            description="Stops runs past their time limit, records runs whose trainer died",
            architecture=architecture,
            log_retention_days=log_retention_days,
            timeout=cdk.Duration.minutes(2),
            environment={
                Env.REGISTRY_TABLE: registry.table_name,
                Env.TIME_LIMIT_MINUTES: str(time_limit_minutes),
            },
        )
        monitor = self.monitor.function
        registry.grant(
            monitor, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"
        )
        watch = iam.Policy(
            self,
            "WatchTrainers",
            statements=[
                iam.PolicyStatement(
                    sid="SeeTrainers", actions=["ec2:DescribeInstances"], resources=["*"]
                ),
                iam.PolicyStatement(
                    sid="StopOverdueTrainers",
                    actions=["ec2:TerminateInstances"],
                    resources=[ec2_arn("instance", "*")],
                    # Only instances the launcher tagged as training runs.
                    conditions={"StringLike": {"aws:ResourceTag/RunId": "*"}},
                ),
            ],
        )
        watch.attach_to_role(self.monitor.role)
        cdk.Validations.of(watch).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ec2:DescribeInstances has no resource-level permissions.",
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{_NAG_EC2}:<AWS::AccountId>:instance/*]",
                reason="Trainer instance ids are not known in advance; TerminateInstances is "
                "limited by condition to instances tagged with a RunId by the launcher.",
            ),
        )
        dlq_target = targets.LambdaFunction(
            monitor, dead_letter_queue=self.monitor.dead_letters, retry_attempts=2
        )
        events.Rule(
            self,
            "Every10Minutes",
            description="Check running trainers against their time limit",
            schedule=events.Schedule.rate(cdk.Duration.minutes(10)),
            targets=[dlq_target],
        )
        events.Rule(
            self,
            "TrainerEnded",
            description="A trainer instance stopped or terminated: settle its run",
            event_pattern=events.EventPattern(
                source=["aws.ec2"],
                detail_type=[INSTANCE_STATE_CHANGE],
                detail={"state": ["terminated", "stopped"]},
            ),
            targets=[dlq_target],
        )
