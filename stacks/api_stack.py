"""API stack: CloudFront -> API Gateway -> container-image Lambda serving the live model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.constructs.observability.slack_channel import SlackRollback
from cdk_app.constructs.serving.cdn import ServingCdn
from cdk_app.constructs.serving.http_api import ServingApi
from cdk_app.constructs.serving.live_model_guard import LiveModelGuard
from cdk_app.constructs.serving.origin_lock import OriginLock
from cdk_app.constructs.serving.promotion import Promotion
from cdk_app.constructs.serving.release import ServingRelease
from cdk_app.constructs.serving.serving_function import ServingFunction
from cdk_app.constructs.shared.architecture import lambda_architecture
from cdk_app.constructs.shared.parameters import live_model_parameter, runtime_image_parameter
from stacks.data_stack import DataStack
from stacks.edge_stack import EdgeStack
from stacks.pipeline_stack import PipelineStack
from training.contract import Output


class ApiStack(cdk.Stack):
    """Serves predictions over HTTPS from the model the registry marks live."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: AppConfig,
        data: DataStack,
        pipeline: PipelineStack,
        edge: EdgeStack | None,
        serving_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        architecture = lambda_architecture(config.architecture)
        self.serving = ServingFunction(
            self,
            "Serving",
            serving_dir=serving_dir,
            runtime_parameter=runtime_image_parameter(config.stack_prefix),
            architecture=architecture,
            memory_mb=config.lambda_memory_mb,
            timeout_seconds=config.lambda_timeout_seconds,
            reserved_concurrency=config.reserved_concurrency,
            tracing=config.tracing,
            trace_sample_rate=config.trace_sample_rate,
            trace_reservoir_per_hour=config.trace_reservoir_per_hour,
            snapstart=config.snapstart,
            max_instances=config.max_instances,
            log_retention_days=config.log_retention_days,
        )
        lock = OriginLock(
            self,
            "OriginLock",
            key_version=config.origin_key_version,
            architecture=architecture,
            log_retention_days=config.log_retention_days,
        )
        self.api = ServingApi(
            self,
            "Http",
            name=config.stack_prefix,
            alias=self.serving.alias,
            authorizer=lock.authorizer,
            throttle_rate=config.api_throttle_rate,
            throttle_burst=config.api_throttle_burst,
            log_retention_days=config.log_retention_days,
        )
        self.cdn = ServingCdn(
            self,
            "Cdn",
            api=self.api.api,
            lock=lock,
            cache_ttl_seconds=config.cache_ttl_seconds,
            access_logs=data.access_logs,
            domain_name=config.domain_name,
            certificate_arn=config.certificate_arn,
            hosted_zone_id=config.hosted_zone_id,
            web_acl_arn=edge.web_acl.attr_arn if edge else None,
        )
        self.promotion = Promotion(
            self,
            "Promotion",
            serving=self.serving,
            api=self.api,
            distribution=self.cdn.distribution,
            registry=pipeline.registry,
            live_model_parameter=live_model_parameter(config.stack_prefix),
            repository=pipeline.repository,
            canary=config.canary,
            latency_p99_threshold_ms=config.latency_p99_threshold_ms,
            architecture=architecture,
            log_retention_days=config.log_retention_days,
        )
        self.release = ServingRelease(
            self,
            "Release",
            serving=self.serving,
            promotion=self.promotion,
            registry=pipeline.registry,
            architecture=architecture,
            log_retention_days=config.log_retention_days,
        )
        # The Slack rollback button's function, only with a Slack channel to press it in. It
        # lives beside the promoter: its rights name this stack's function, alias and group.
        self.slack_rollback: SlackRollback | None = None
        if config.slack_workspace_id:
            self.slack_rollback = SlackRollback(
                self,
                "SlackRollback",
                environment=self.promotion.environment,
                registry=pipeline.registry,
                serving_function=self.serving.function,
                serving_alias=self.serving.alias,
                serving_repository=self.serving.image.repository,
                model_repository=pipeline.repository,
                application=self.promotion.application,
                deployment_group=self.promotion.deployment_group,
                architecture=architecture,
                log_retention_days=config.log_retention_days,
                function_name=f"{config.stack_prefix}-rollback",
            )
        # Checked when CloudFormation creates the change set, before anything is touched.
        LiveModelGuard(
            self,
            "LiveModelGuard",
            parameter_name=live_model_parameter(config.stack_prefix),
            model_version=self.serving.model_version,
        )
        cdk.CfnOutput(self, Output.URL, value=self.cdn.url, description="Call the API here")
        cdk.CfnOutput(self, Output.API_ID, value=self.api.api.api_id)
        cdk.CfnOutput(self, Output.FUNCTION_NAME, value=self.serving.function.function_name)
        cdk.CfnOutput(self, Output.DISTRIBUTION_ID, value=self.cdn.distribution.distribution_id)
        cdk.CfnOutput(
            self,
            Output.RUNTIME_IMAGE_PARAMETER,
            value=self.serving.runtime_parameter.parameter_name,
        )
        cdk.CfnOutput(
            self, Output.CODEDEPLOY_APPLICATION, value=self.promotion.application.application_name
        )
        cdk.CfnOutput(
            self,
            Output.DEPLOYMENT_GROUP,
            value=self.promotion.deployment_group.deployment_group_name,
        )
