"""Pipeline stack: Spot trainer on a custom AMI, model image repository and model registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.constructs.serving.live_model_pointer import LiveModelPointer
from cdk_app.constructs.serving.serving_function import baked_model_version
from cdk_app.constructs.shared.architecture import lambda_architecture
from cdk_app.constructs.shared.parameters import live_model_parameter, runtime_image_parameter
from cdk_app.constructs.training.model_registry import ModelRegistry
from cdk_app.constructs.training.model_repository import ModelRepository
from cdk_app.constructs.training.registrar import Registrar
from cdk_app.constructs.training.spot_trainer import SpotTrainer
from cdk_app.constructs.training.trainer_image import TrainerImage
from cdk_app.constructs.training.trainer_network import TrainerNetwork
from cdk_app.constructs.training.training_trigger import TrainingTrigger
from stacks.data_stack import DataStack
from training.contract import Output, Stack, stack_name


class PipelineStack(cdk.Stack):
    """Turns a new dataset version into a registered model image."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: AppConfig,
        data: DataStack,
        serving_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        architecture = lambda_architecture(config.architecture)
        self.repository = ModelRepository(
            self,
            "Models",
            max_images=config.max_model_images,
            # Generated function names start with the stack's name: the api stack's functions.
            serving_function_prefix=f"{stack_name(config.stack_prefix, Stack.API)}-",
        ).repository
        self.live_model = LiveModelPointer(
            self,
            "LiveModel",
            parameter_name=live_model_parameter(config.stack_prefix),
            seed_model_version=baked_model_version(serving_dir),
            log_retention_days=config.log_retention_days,
        )
        self.registry = ModelRegistry(self, "Registry").table
        network = TrainerNetwork(self, "Network", log_retention_days=config.log_retention_days)
        image = TrainerImage(
            self,
            "TrainerImage",
            name=config.stack_prefix,
            architecture=config.architecture,
            instance_types=list(config.trainer_instance_types),
            volume_gb=config.trainer_volume_gb,
            network=network,
            schedule=config.ami_build_schedule,
        )
        self.trainer = SpotTrainer(
            self,
            "Trainer",
            network=network,
            image=image,
            read_datasets=data.read_datasets,
            repository=self.repository,
            runtime_parameter=runtime_image_parameter(config.stack_prefix),
            registry=self.registry,
            architecture=config.architecture,
            volume_gb=config.trainer_volume_gb,
            time_limit_minutes=config.training_time_limit_minutes,
            min_accuracy=config.min_accuracy,
            accuracy_tolerance=config.accuracy_tolerance,
        )
        self.trigger = TrainingTrigger(
            self,
            "Training",
            trainer=self.trainer,
            network=network,
            data_bucket=data.bucket,
            dataset_name=config.dataset_name,
            registry=self.registry,
            architecture=architecture,
            instance_types=list(config.trainer_instance_types),
            on_demand_fallback=config.trainer_on_demand_fallback,
            time_limit_minutes=config.training_time_limit_minutes,
            retrain_every_days=config.retrain_every_days,
            log_retention_days=config.log_retention_days,
            reserved_concurrency=config.launcher_reserved_concurrency,
        )
        self.registrar = Registrar(
            self,
            "Registrar",
            repository=self.repository,
            registry=self.registry,
            architecture=architecture,
            log_retention_days=config.log_retention_days,
        )
        cdk.CfnOutput(
            self, Output.LAUNCHER_FUNCTION_NAME, value=self.trigger.launcher.function.function_name
        )
        cdk.CfnOutput(self, Output.REGISTRY_TABLE_NAME, value=self.registry.table_name)
        cdk.CfnOutput(self, Output.REPOSITORY_URI, value=self.repository.repository_uri)
        cdk.CfnOutput(self, Output.TRAINER_AMI_PARAMETER, value=image.ami_parameter_name)
        cdk.CfnOutput(self, Output.LIVE_MODEL_PARAMETER, value=self.live_model.parameter_name)

    @property
    def availability_zones(self) -> list[str]:
        """Two zones resolved by CloudFormation (Fn::GetAZs) rather than looked up at synth.

        A lookup would need AWS credentials and a network call on every fresh checkout.
        """
        return [cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(2)]
