"""Observability stack: metrics, dashboard and alarms to SNS and Slack."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from stacks.api_stack import ApiStack
from stacks.pipeline_stack import PipelineStack


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
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        self.api = api
        self.pipeline = pipeline
