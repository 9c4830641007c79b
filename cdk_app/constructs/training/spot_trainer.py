"""The Spot trainer: a launch template that boots the custom AMI, fetches code, trains, exits.

Each run is one Spot instance: IMDSv2 only, encrypted EBS, no SSH key, no inbound rule,
instance-initiated shutdown terminates it. The training code and the serving image's build
context are S3 assets fetched at boot, so a code change needs no new AMI. The instance powers
itself off at the time limit whatever happens, so a stuck run cannot bill for long.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from cdk_app.constructs.training.trainer_image import VENV, TrainerImage
from cdk_app.constructs.training.trainer_network import TrainerNetwork
from training.contract import SEED_DATASET, Env

ROOT = Path(__file__).resolve().parents[3]
_IGNORE = ["__pycache__", "*.pyc"]


class SpotTrainer(Construct):
    """Launch template, instance role and code assets of a training run."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network: TrainerNetwork,
        image: TrainerImage,
        read_datasets: iam.IManagedPolicy,
        repository: ecr.IRepository,
        runtime_parameter: str,
        registry: dynamodb.ITableV2,
        architecture: str,
        volume_gb: int,
        time_limit_minutes: int,
        min_accuracy: float,
        accuracy_tolerance: float,
    ) -> None:
        super().__init__(scope, id_)
        # The seed data stays out: the run reads its dataset version from the lake.
        seed_folder = SEED_DATASET.relative_to(ROOT / "training").parts[0]
        code = s3_assets.Asset(
            self, "Code", path=str(ROOT / "training"), exclude=[*_IGNORE, seed_folder]
        )
        # The model image is built FROM the serving runtime `cdk deploy` shipped
        # (lambda_image/model.Dockerfile), so the context holds only that Dockerfile; the
        # trainer exports its model into model/ beside it.
        context = s3_assets.Asset(
            self,
            "BuildContext",
            path=str(ROOT / "lambda_image"),
            exclude=["*", "!model.Dockerfile", "!.dockerignore"],
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="Spot trainer: read datasets, push model images, record runs",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"),
                read_datasets,
            ],
        )
        cdk.Validations.of(self.role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
                reason="Session Manager is the only way into a trainer (no SSH key, no inbound "
                "rule); this is AWS's documented minimum policy for its agent.",
            )
        )
        # The two asset objects by key, rather than Asset.grant_read's s3:GetObject* and
        # s3:List* on the whole assets bucket.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="FetchCodeAndBuildContext",
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:s3:::{asset.s3_bucket_name}/{asset.s3_object_key}"
                    for asset in (code, context)
                ],
            )
        )
        repository.grant_push(self.role)
        cdk.Validations.of(self.role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ecr:GetAuthorizationToken (docker login) has no resource-level "
                "permissions; pushing is limited to the model repository.",
            ),
        )
        stack = cdk.Stack.of(self)
        # The serving runtime is a CDK image asset in the bootstrap repository; its URI is in
        # an SSM parameter the api stack writes on every deploy.
        runtime_repository = ecr.Repository.from_repository_name(
            self, "RuntimeRepository", _asset_repository_name(stack)
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PullTheServingRuntime",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                    # The runtime's digest, so the model image's FROM is pinned to it.
                    "ecr:DescribeImages",
                ],
                resources=[runtime_repository.repository_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTheServingRuntime",
                actions=["ssm:GetParameter"],
                resources=[
                    stack.format_arn(
                        service="ssm",
                        resource="parameter",
                        resource_name=runtime_parameter.lstrip("/"),
                    )
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="FindExistingImages",
                actions=["ecr:DescribeImages"],
                resources=[repository.repository_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RecordRuns",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:Query",
                    "dynamodb:ConditionCheckItem",
                ],
                resources=[registry.table_arn],
            )
        )

        platform = "linux/arm64" if architecture == "arm64" else "linux/amd64"
        user_data = ec2.UserData.for_linux(shebang="#!/bin/bash")
        user_data.add_commands(
            "set -uo pipefail",
            # Everything the run prints reaches the EC2 console output (GetConsoleOutput).
            "exec > >(tee /var/log/trainer.log > /dev/console) 2>&1",
            # Hard stop: power off (= terminate) at the time limit whatever happens below.
            f"shutdown -h +{time_limit_minutes + 5}",
            "trap 'shutdown -h now' EXIT",
            "mkdir -p /opt/trainer/src/training /opt/trainer/build",
            f"aws s3 cp --only-show-errors {code.s3_object_url} /tmp/code.zip",
            "unzip -q -o /tmp/code.zip -d /opt/trainer/src/training",
            f"aws s3 cp --only-show-errors {context.s3_object_url} /tmp/context.zip",
            "unzip -q -o /tmp/context.zip -d /opt/trainer/build",
            "systemctl start docker",
            f"export AWS_REGION={stack.region}",
            f"export {Env.REGISTRY_TABLE}={registry.table_name}",
            f"export {Env.REPOSITORY_URI}={repository.repository_uri}",
            f"export {Env.BUILD_CONTEXT}=/opt/trainer/build",
            f"export {Env.RUNTIME_IMAGE_PARAMETER}={runtime_parameter}",
            # Lambda runs single-image manifests only; buildx would add attestations (an index).
            "export BUILDX_NO_DEFAULT_ATTESTATIONS=1",
            f"export {Env.DOCKER_PLATFORM}={platform}",
            f"export {Env.MIN_ACCURACY}={min_accuracy}",
            f"export {Env.ACCURACY_TOLERANCE}={accuracy_tolerance}",
            f"export {Env.TIME_LIMIT_MINUTES}={time_limit_minutes}",
            "export PYTHONPATH=/opt/trainer/src",
            f"cd /opt/trainer && {VENV}/bin/python -m training pipeline --from-instance-tags",
            'echo "trainer exited with status $?"',
        )
        profile = iam.InstanceProfile(self, "Profile", role=self.role)

        def template(id_: str, *, spot: bool) -> ec2.LaunchTemplate:
            """A launch template for this run; Spot or on-demand is all that differs."""
            launch_template = ec2.LaunchTemplate(
                self,
                id_,
                machine_image=ec2.MachineImage.resolve_ssm_parameter_at_launch(
                    image.ami_parameter_name, os=ec2.OperatingSystemType.LINUX
                ),
                instance_profile=profile,
                security_group=network.security_group,
                user_data=user_data,
                require_imdsv2=True,
                # 1 hop: the host reads instance metadata; containers it builds cannot.
                http_put_response_hop_limit=1,
                instance_metadata_tags=True,
                instance_initiated_shutdown_behavior=ec2.InstanceInitiatedShutdownBehavior.TERMINATE,
                spot_options=(
                    ec2.LaunchTemplateSpotOptions(
                        request_type=ec2.SpotRequestType.ONE_TIME,
                        interruption_behavior=ec2.SpotInstanceInterruption.TERMINATE,
                    )
                    if spot
                    else None
                ),
                block_devices=[
                    ec2.BlockDevice(
                        device_name="/dev/xvda",
                        volume=ec2.BlockDeviceVolume.ebs(
                            volume_gb,
                            encrypted=True,
                            volume_type=ec2.EbsDeviceVolumeType.GP3,
                            delete_on_termination=True,
                        ),
                    )
                ],
            )
            # The template resolves the AMI parameter that the first image build creates.
            launch_template.node.add_dependency(image.image)
            return launch_template

        self.launch_template = template("LaunchTemplate", spot=True)
        # Used only when Spot capacity is gone everywhere and trainer_on_demand_fallback is on.
        self.on_demand_template = template("OnDemandLaunchTemplate", spot=False)
        self.launch_template_arns = [
            stack.format_arn(
                service="ec2", resource="launch-template", resource_name=t.launch_template_id
            )
            for t in (self.launch_template, self.on_demand_template)
        ]
        self.ami_parameter_name = image.ami_parameter_name


def _asset_repository_name(stack: cdk.Stack) -> str:
    """The bootstrap repository CDK pushes image assets to (DefaultStackSynthesizer's name)."""
    # The context key the CLI's `cdk bootstrap --qualifier` pairs with.
    qualifier = stack.node.try_get_context("@aws-cdk/core:bootstrapQualifier") or (
        cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER
    )
    template = cdk.DefaultStackSynthesizer.DEFAULT_IMAGE_ASSETS_REPOSITORY_NAME
    return str(cdk.Fn.sub(template.replace("${Qualifier}", str(qualifier))))
