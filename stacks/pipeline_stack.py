"""Pipeline stack: Spot trainer, model image repository and model registry."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from stacks.data_stack import DataStack


class PipelineStack(cdk.Stack):
    """Turns a new dataset version into a registered model image."""

    def __init__(
        self, scope: Construct, id_: str, *, config: AppConfig, data: DataStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        self.data = data
