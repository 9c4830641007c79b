"""Data stack: the S3 data lake where every dataset version is kept and addressable."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.constructs.data.data_lake import DataLake
from cdk_app.constructs.data.dataset_seed import DatasetSeed
from cdk_app.constructs.shared.secure_bucket import LogBucket
from training.contract import SEED_DATASET, Output, dataset_key


class DataStack(cdk.Stack):
    """Holds the dataset versions the pipeline trains on, and the access logs."""

    def __init__(self, scope: Construct, id_: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.access_logs = LogBucket(
            self, "AccessLogs", retention_days=config.access_log_days
        ).bucket
        lake = DataLake(
            self,
            "DataLake",
            access_logs=self.access_logs,
            noncurrent_version_days=config.noncurrent_version_days,
        )
        self.bucket = lake.bucket
        self.read_datasets = lake.read_datasets
        self.seed = DatasetSeed(
            self,
            "IrisV1",
            bucket=self.bucket,
            key=dataset_key("iris", "v1"),
            source=SEED_DATASET,
            log_retention_days=config.log_retention_days,
        )
        cdk.CfnOutput(self, Output.DATASET_BUCKET_NAME, value=self.bucket.bucket_name)
        cdk.CfnOutput(
            self, Output.SEEDED_DATASET, value=f"s3://{self.bucket.bucket_name}/{self.seed.key}"
        )
