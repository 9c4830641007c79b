"""The trainer's AMI, built by EC2 Image Builder: Amazon Linux 2023 + Docker + Python + deps.

The base image comes from AWS's public SSM parameter (no AMI id in the code). The finished
AMI's id is written to an SSM parameter of ours, which the trainer's launch template resolves
at every launch; a weekly pipeline rebuilds the AMI when the base image has updates. The
trainer's code is not in the AMI: it arrives from S3 at boot, so a code change needs no AMI.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_imagebuilder as imagebuilder
from constructs import Construct

from cdk_app.constructs.training.trainer_network import TrainerNetwork

ROOT = Path(__file__).resolve().parents[3]
TRAINER_CONSTRAINTS = ROOT / "training" / "constraints.txt"
TRAINER_PYTHON = "python3.12"
VENV = "/opt/trainer/venv"
# Image Builder's wildcard version: in a lifecycle policy's recipe selection, every version.
ALL_VERSIONS = "x.x.x"


def _pins(path: Path) -> str:
    """A requirements-style file without its comments."""
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if line and not line.startswith("#")) + "\n"


def component_document() -> dict[str, object]:
    """The AWSTOE document that installs Docker, Python and the trainer's dependencies."""
    return {
        "name": "iris-trainer",
        "description": "Docker, Python and the trainer's pinned dependencies in a venv.",
        "schemaVersion": 1.0,
        "phases": [
            {
                "name": "build",
                "steps": [
                    {
                        "name": "InstallPackages",
                        "action": "ExecuteBash",
                        "inputs": {
                            "commands": [
                                f"dnf install -y docker unzip {TRAINER_PYTHON} "
                                f"{TRAINER_PYTHON}-pip",
                                "systemctl enable docker",
                            ]
                        },
                    },
                    {
                        "name": "WriteRequirements",
                        "action": "CreateFile",
                        "inputs": [
                            {
                                "path": "/opt/trainer/requirements.txt",
                                "content": _pins(ROOT / "training" / "requirements.txt"),
                            },
                            # Transitive pins too, so every AMI gets the tested versions:
                            # the trainer's subset only, so a dev-tool bump in the project's
                            # constraints.txt does not rebuild the AMI (`make lock` writes both).
                            {
                                "path": "/opt/trainer/constraints.txt",
                                "content": _pins(TRAINER_CONSTRAINTS),
                            },
                        ],
                    },
                    {
                        "name": "InstallTrainerDependencies",
                        "action": "ExecuteBash",
                        "inputs": {
                            "commands": [
                                f"{TRAINER_PYTHON} -m venv {VENV}",
                                f"{VENV}/bin/pip install --no-cache-dir "
                                "-r /opt/trainer/requirements.txt -c /opt/trainer/constraints.txt",
                            ]
                        },
                    },
                ],
            },
            {
                "name": "validate",
                "steps": [
                    {
                        "name": "ToolsPresent",
                        "action": "ExecuteBash",
                        "inputs": {
                            "commands": [
                                "docker --version",
                                f'{VENV}/bin/python -c "import numpy, sklearn, boto3"',
                            ]
                        },
                    }
                ],
            },
            {
                "name": "test",
                "steps": [
                    {
                        "name": "DockerDaemonStarts",
                        "action": "ExecuteBash",
                        "inputs": {"commands": ["systemctl start docker", "docker info"]},
                    }
                ],
            },
        ],
    }


def _version(*parts: str) -> str:
    """A semantic version that changes with the content (Image Builder versions are immutable)."""
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return f"1.0.{int(digest[:7], 16)}"


class TrainerImage(Construct):
    """Component, recipe, build infrastructure, distribution, weekly pipeline, first image."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        architecture: str,
        instance_types: list[str],
        volume_gb: int,
        network: TrainerNetwork,
        schedule: str,
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        self.ami_parameter_name = f"/{name}/trainer/ami-id"
        # JSON is YAML: AWSTOE reads it as is.
        document = json.dumps(component_document(), indent=2, sort_keys=True)
        component = imagebuilder.CfnComponent(
            self,
            "Component",
            name=f"{name}-trainer",
            platform="Linux",
            version=_version(document),
            data=document,
            description="Docker, Python and the trainer's dependencies",
            supported_os_versions=["Amazon Linux 2023"],
        )
        base = f"ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{architecture}"
        update_linux = (
            f"arn:{stack.partition}:imagebuilder:{stack.region}:aws:component/update-linux/x.x.x"
        )
        recipe = imagebuilder.CfnImageRecipe(
            self,
            "Recipe",
            name=f"{name}-trainer",
            version=_version(base, document, str(volume_gb)),
            parent_image=base,
            components=[
                imagebuilder.CfnImageRecipe.ComponentConfigurationProperty(
                    component_arn=update_linux
                ),
                imagebuilder.CfnImageRecipe.ComponentConfigurationProperty(
                    component_arn=component.attr_arn
                ),
            ],
            block_device_mappings=[
                imagebuilder.CfnImageRecipe.InstanceBlockDeviceMappingProperty(
                    device_name="/dev/xvda",
                    ebs=imagebuilder.CfnImageRecipe.EbsInstanceBlockDeviceSpecificationProperty(
                        encrypted=True,
                        volume_size=volume_gb,
                        volume_type="gp3",
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        role = iam.Role(
            self,
            "BuildRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(policy)
                for policy in ("EC2InstanceProfileForImageBuilder", "AmazonSSMManagedInstanceCore")
            ],
        )
        cdk.Validations.of(role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/EC2InstanceProfileForImageBuilder]",
                reason="AWS's documented policy for Image Builder build instances; AWS keeps it "
                "in step with what the build and test agents call.",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
                reason="Image Builder drives the build instance through Systems Manager; this "
                "is AWS's documented minimum for the SSM agent.",
            ),
        )
        profile = iam.CfnInstanceProfile(self, "BuildProfile", roles=[role.role_name])
        infrastructure = imagebuilder.CfnInfrastructureConfiguration(
            self,
            "Infrastructure",
            name=f"{name}-trainer",
            instance_profile_name=profile.ref,
            instance_types=instance_types,
            subnet_id=network.subnets[0].subnet_id,
            security_group_ids=[network.security_group.security_group_id],
            terminate_instance_on_failure=True,
            instance_metadata_options=imagebuilder.CfnInfrastructureConfiguration.InstanceMetadataOptionsProperty(
                http_tokens="required", http_put_response_hop_limit=1
            ),
        )
        distribution = imagebuilder.CfnDistributionConfiguration(
            self,
            "Distribution",
            name=f"{name}-trainer",
            distributions=[
                imagebuilder.CfnDistributionConfiguration.DistributionProperty(
                    region=stack.region,
                    ami_distribution_configuration={
                        "Name": f"{name}-trainer-{{{{ imagebuilder:buildDate }}}}",
                        "AmiTags": {"project": name, "purpose": "trainer"},
                    },
                    ssm_parameter_configurations=[
                        imagebuilder.CfnDistributionConfiguration.SsmParameterConfigurationProperty(
                            parameter_name=self.ami_parameter_name, data_type="aws:ec2:image"
                        )
                    ],
                )
            ],
        )
        tests = imagebuilder.CfnImagePipeline.ImageTestsConfigurationProperty(
            image_tests_enabled=True, timeout_minutes=60
        )
        imagebuilder.CfnImagePipeline(
            self,
            "Pipeline",
            name=f"{name}-trainer",
            image_recipe_arn=recipe.attr_arn,
            infrastructure_configuration_arn=infrastructure.attr_arn,
            distribution_configuration_arn=distribution.attr_arn,
            image_tests_configuration=tests,
            schedule=imagebuilder.CfnImagePipeline.ScheduleProperty(
                schedule_expression=schedule,
                # Rebuild only when the base image or a component has a newer version.
                pipeline_execution_start_condition="EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
            ),
            status="ENABLED",
        )
        # Weekly rebuilds would pile up AMIs and snapshots (~$0.40/month each): keep three of
        # this recipe's, which is plenty to launch from or go back to. Every content change is
        # a new recipe version, so the selection is all of them (x.x.x), not the current one.
        lifecycle_role = iam.Role(
            self,
            "LifecycleRole",
            assumed_by=iam.ServicePrincipal("imagebuilder.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/EC2ImageBuilderLifecycleExecutionPolicy"
                )
            ],
        )
        cdk.Validations.of(lifecycle_role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/EC2ImageBuilderLifecycleExecutionPolicy]",
                reason="AWS's documented execution policy for Image Builder lifecycle policies; "
                "it lets the service deregister the AMIs and delete the snapshots it selects.",
            )
        )
        imagebuilder.CfnLifecyclePolicy(
            self,
            "KeepThreeAmis",
            name=f"{name}-trainer-amis",
            description="Keep the three newest trainer AMIs (and their snapshots)",
            execution_role=lifecycle_role.role_arn,
            resource_type="AMI_IMAGE",
            policy_details=[
                imagebuilder.CfnLifecyclePolicy.PolicyDetailProperty(
                    action=imagebuilder.CfnLifecyclePolicy.ActionProperty(
                        type="DELETE",
                        include_resources=imagebuilder.CfnLifecyclePolicy.IncludeResourcesProperty(
                            amis=True, snapshots=True
                        ),
                    ),
                    filter=imagebuilder.CfnLifecyclePolicy.FilterProperty(type="COUNT", value=3),
                )
            ],
            resource_selection=imagebuilder.CfnLifecyclePolicy.ResourceSelectionProperty(
                recipes=[
                    imagebuilder.CfnLifecyclePolicy.RecipeSelectionProperty(
                        name=recipe.name, semantic_version=ALL_VERSIONS
                    )
                ]
            ),
        )
        # The first AMI, built while the stack deploys, so a trainer can launch right after.
        self.image = imagebuilder.CfnImage(
            self,
            "FirstImage",
            image_recipe_arn=recipe.attr_arn,
            infrastructure_configuration_arn=infrastructure.attr_arn,
            distribution_configuration_arn=distribution.attr_arn,
            image_tests_configuration=imagebuilder.CfnImage.ImageTestsConfigurationProperty(
                image_tests_enabled=True, timeout_minutes=60
            ),
        )
