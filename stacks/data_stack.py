"""Data stack: the S3 data lake where every dataset version is kept and addressable."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig


class DataStack(cdk.Stack):
    """Holds the dataset versions the pipeline trains on."""

    def __init__(self, scope: Construct, id_: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
