"""API stack: CloudFront -> API Gateway -> container-image Lambda serving the live model."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from stacks.pipeline_stack import PipelineStack


class ApiStack(cdk.Stack):
    """Serves predictions over HTTPS from the model the registry marks live."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: AppConfig,
        pipeline: PipelineStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        self.pipeline = pipeline
