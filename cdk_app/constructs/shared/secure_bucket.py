"""S3 buckets with the project's secure defaults, defined once: private, encrypted, TLS-only."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app import checkov


def _secure(**props: Any) -> dict[str, Any]:
    """The defaults every bucket here shares, plus `props`."""
    return {
        "encryption": s3.BucketEncryption.S3_MANAGED,
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        "enforce_ssl": True,
        "minimum_tls_version": 1.2,
        # Buckets outlive the stack: `cdk destroy` orphans them instead of deleting data.
        "removal_policy": cdk.RemovalPolicy.RETAIN,
        **props,
    }


class LogBucket(Construct):
    """A bucket for logs a service delivers: private, encrypted, TLS-only, logs expire.

    With `access_logs`, its own access is logged there; without, it is the access-log bucket.
    `acl_delivery` keeps object ACLs on, which CloudFront's standard logs still need.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        retention_days: int,
        access_logs: s3.IBucket | None = None,
        log_prefix: str | None = None,
        acl_delivery: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        ownership = (
            s3.ObjectOwnership.BUCKET_OWNER_PREFERRED
            if acl_delivery
            else s3.ObjectOwnership.BUCKET_OWNER_ENFORCED
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            **_secure(
                object_ownership=ownership,
                server_access_logs_bucket=access_logs,
                server_access_logs_prefix=log_prefix,
                lifecycle_rules=[
                    s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(retention_days))
                ],
            ),
        )
        checkov.skip(
            self.bucket,
            "CKV_AWS_21",
            "Logs are written once by the delivering service and expire by lifecycle; "
            "versions would only keep deleted logs longer.",
        )
        if access_logs is None:
            checkov.skip(
                self.bucket,
                "CKV_AWS_18",
                "This bucket receives the other buckets' access logs; it cannot log into itself.",
            )
            cdk.Validations.of(self.bucket).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-S1",
                    reason="This bucket receives the other buckets' access logs; logging its "
                    "own access into itself would loop, and a second log bucket would need a "
                    "third.",
                )
            )


class SecureBucket(Construct):
    """A bucket that is private, encrypted, TLS-only, versioned, access-logged and retained."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        access_logs: s3.IBucket,
        log_prefix: str,
        noncurrent_version_days: int,
        event_bridge: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            **_secure(
                versioned=True,
                server_access_logs_bucket=access_logs,
                server_access_logs_prefix=log_prefix,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="expire-noncurrent-versions",
                        noncurrent_version_expiration=cdk.Duration.days(noncurrent_version_days),
                        abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                    )
                ],
            ),
        )
        if event_bridge:
            # CloudFormation sets this natively; the L2's `event_bridge_enabled` would deploy
            # a notification-handler Lambda (and its IAM role) to do the same.
            cfn = self.bucket.node.default_child
            assert isinstance(cfn, s3.CfnBucket)  # noqa: S101 - the L2's documented child
            cfn.add_property_override(
                "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
            )
