"""Seeds a dataset version into the data lake at deploy time, write-once like any upload."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_app.constructs.shared.sdk_call import DeployTimeCall

# CloudFormation templates hold at most 1 MB; a seed is inlined, so it must stay small.
MAX_SEED_BYTES = 64 * 1024


class DatasetSeed(Construct):
    """Puts `source` at `key` with `If-None-Match: *` once; an existing object is left alone."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket: s3.IBucket,
        key: str,
        source: Path,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        body = source.read_bytes()
        if len(body) > MAX_SEED_BYTES:
            raise ValueError(f"{source} is {len(body)} bytes; a seed may be {MAX_SEED_BYTES}")
        self.key = key
        self.sha256 = hashlib.sha256(body).hexdigest()
        put = cr.AwsSdkCall(
            service="S3",
            action="putObject",
            parameters={
                "Bucket": bucket.bucket_name,
                "Key": key,
                "Body": body.decode(),
                "ContentType": "text/csv",
                "IfNoneMatch": "*",
                "ChecksumAlgorithm": "SHA256",
                "Metadata": {"sha256": self.sha256},
            },
            physical_resource_id=cr.PhysicalResourceId.of(key),
            # A stack update re-runs the call; the version already exists and stays as it is.
            ignore_error_codes_matching="PreconditionFailed",
        )
        DeployTimeCall(
            self,
            "Put",
            call=put,
            statements=[
                iam.PolicyStatement(
                    actions=["s3:PutObject"], resources=[bucket.arn_for_objects(key)]
                )
            ],
            log_retention_days=log_retention_days,
        )
