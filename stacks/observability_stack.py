"""Observability stack: alarms to SNS and Slack, the dashboard, the budget, pipeline metrics."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.constructs.observability.alarm_topic import AlarmTopic
from cdk_app.constructs.observability.alert_enricher import AlertEnricher
from cdk_app.constructs.observability.budget import MonthlyBudget
from cdk_app.constructs.observability.dashboard import RequestCost, SystemDashboard, dashboard_name
from cdk_app.constructs.observability.pipeline_alarms import PipelineAlarms
from cdk_app.constructs.observability.registry_metrics import RegistryMetrics
from cdk_app.constructs.observability.serving_alarms import ServingAlarms
from cdk_app.constructs.observability.slack_channel import SlackChannel
from cdk_app.constructs.serving.serving_function import SERVICE
from cdk_app.constructs.shared.architecture import lambda_architecture
from stacks.api_stack import ApiStack
from stacks.cdn_monitoring_stack import CdnMonitoringStack
from stacks.pipeline_stack import PipelineStack
from training.contract import METRICS_NAMESPACE, Output


class ObservabilityStack(cdk.Stack):
    """Watches the API and the pipeline and tells the team when they misbehave."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: AppConfig,
        api: ApiStack,
        pipeline: PipelineStack,
        cdn_monitoring: CdnMonitoringStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        alarm_topic = AlarmTopic(self, "Alarms", email=config.alarm_email)
        self.topic = alarm_topic.topic
        architecture = lambda_architecture(config.architecture)
        RegistryMetrics(
            self,
            "RegistryMetrics",
            registry=pipeline.registry,
            architecture=architecture,
            log_retention_days=config.log_retention_days,
        )
        serving = ServingAlarms(
            self,
            "Serving",
            topic=self.topic,
            api=api.api.api,
            function=api.serving.function,
            timeout_seconds=config.lambda_timeout_seconds,
            reserved_concurrency=config.reserved_concurrency,
            api_5xx_rate_percent=config.api_5xx_rate_percent,
            api_4xx_rate_percent=config.api_4xx_rate_percent,
            latency_p99_threshold_ms=config.latency_p99_threshold_ms,
        )
        dead_letters = {
            "Registrar": pipeline.registrar.handler.dead_letters,
            "Launcher": pipeline.trigger.launcher.dead_letters,
            "Monitor": pipeline.trigger.monitor.dead_letters,
            "Promoter": api.promotion.promoter.dead_letters,
            "Watcher": api.promotion.watcher.dead_letters,
        }
        pipeline_alarms = PipelineAlarms(
            self,
            "Pipeline",
            topic=self.topic,
            dead_letter_queues=dead_letters,
            registry=pipeline.registry,
            repository=pipeline.repository,
            retrain_every_days=config.retrain_every_days,
        )
        MonthlyBudget(self, "Budget", amount_usd=config.monthly_budget_usd, topic=self.topic)
        self.enricher = AlertEnricher(
            self,
            "Notify",
            topic=self.topic,
            topic_key=alarm_topic.key,
            registry=pipeline.registry,
            # The CDN's alarms arrive from us-east-1 through the forwarder there.
            alarms=[*serving.alarms, *pipeline_alarms.alarms, *cdn_monitoring.alarms],
            application=api.promotion.application,
            deployment_group=api.promotion.deployment_group,
            dashboard_name=dashboard_name(config.stack_prefix),
            architecture=architecture,
            log_retention_days=config.log_retention_days,
        )
        SystemDashboard(
            self,
            "Dashboard",
            name=config.stack_prefix,
            api=api.api.api,
            function=api.serving.function,
            function_logs=api.serving.logs,
            distribution_id=api.cdn.distribution.distribution_id,
            metrics_namespace=METRICS_NAMESPACE,
            service=SERVICE,
            alarms=[*serving.alarms, *pipeline_alarms.alarms, self.enricher.dead_letter_alarm],
            cost=RequestCost(
                memory_mb=config.lambda_memory_mb,
                architecture=config.architecture,
                traced_share=config.trace_sample_rate if config.tracing else 0.0,
            ),
        )
        if config.slack_workspace_id:
            SlackChannel(
                self,
                "Slack",
                workspace_id=config.slack_workspace_id,
                channel_id=config.slack_channel_id,
                topics=[self.topic, cdn_monitoring.topic],
                rollback=api.slack_rollback.function if api.slack_rollback else None,
                rollback_name=api.slack_rollback.function_name if api.slack_rollback else None,
            )
        else:
            cdk.Annotations.of(self).add_warning_v2(
                "iris-ml:no-slack",
                "Slack is not configured (slack_workspace_id, slack_channel_id): alarms go to "
                "the SNS topics only. See docs/runbook.md to connect AWS Chatbot.",
            )
        # Slack subscribes to both topics (this one and the CDN's), e-mail to both too.
        alarm_topic.warn_if_unheard(chat=bool(config.slack_workspace_id))
        cdk.CfnOutput(self, Output.ALARM_TOPIC_ARN, value=self.topic.topic_arn)
