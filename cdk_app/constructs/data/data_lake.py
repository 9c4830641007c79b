"""The data lake: a versioned bucket where every dataset version is an immutable object.

Layout: `datasets/<name>/<version>/data.csv`. The bucket policy makes a version write-once:
a PutObject under `datasets/` must carry `If-None-Match: *` (so it cannot replace an object)
and nobody may delete an object or an object version there.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.constructs.shared.secure_bucket import SecureBucket
from training.contract import DATASETS_PREFIX


class DataLake(Construct):
    """The dataset bucket and the policy that keeps dataset versions immutable."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        access_logs: s3.IBucket,
        noncurrent_version_days: int,
    ) -> None:
        super().__init__(scope, id_)
        self.bucket = SecureBucket(
            self,
            "Lake",
            access_logs=access_logs,
            log_prefix="data-lake/",
            noncurrent_version_days=noncurrent_version_days,
            # Object Created events start training runs (EventBridge rule in the pipeline).
            event_bridge=True,
        ).bucket
        datasets = self.bucket.arn_for_objects(f"{DATASETS_PREFIX}*")
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DatasetVersionsAreWriteOnce",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[datasets],
                # Only requests that complete an object carry the header; the parts of a
                # multipart upload cannot, and are let through (S3's documented pattern).
                conditions={
                    "Null": {"s3:if-none-match": "true"},
                    "Bool": {"s3:ObjectCreationOperation": "true"},
                },
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DatasetVersionsAreNeverDeleted",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[datasets],
            )
        )
        # Readers attach this policy: the grant lives beside the bucket it names, so no other
        # stack writes (or has to justify) a wildcard on a bucket it does not own.
        self.read_datasets = iam.ManagedPolicy(
            self,
            "ReadDatasets",
            description="Read any dataset version (GetObject, GetObjectVersion on datasets/)",
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[datasets]
                )
            ],
        )
        lake = cdk.Stack.of(self).get_logical_id(self.bucket.node.default_child)
        cdk.Validations.of(self.read_datasets).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{lake}.Arn>/{DATASETS_PREFIX}*]",
                reason="A training run may read any dataset version, and versions are added "
                "without redeploying; the grant stops at the datasets/ prefix and two read "
                "actions.",
            )
        )
