"""Data stack: the data lake's bucket properties, write-once dataset versions, the iris seed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from stacks.application import BuiltApp
from tests.support import build_app
from training.contract import SEED_DATASET
from training.ml.dataset import bundled_iris_csv

EXPIRE_LOGS = {"ExpirationInDays": 365, "Id": "expire-logs", "Status": "Enabled"}


def bucket_with_logging(template: Template) -> tuple[str, dict[str, Any]]:
    """The data-lake bucket: the one that logs its access to another bucket."""
    buckets = template.find_resources(
        "AWS::S3::Bucket", {"Properties": {"LoggingConfiguration": Match.any_value()}}
    )
    [(logical_id, bucket)] = buckets.items()
    return logical_id, bucket


def test_data_lake_bucket_is_versioned_encrypted_private_logged_retained(
    templates: dict[str, Template],
) -> None:
    data = templates["data"]
    logical_id, bucket = bucket_with_logging(data)
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "data-lake/"
    assert props["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"
    [rule] = props["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rule["Status"] == "Enabled"
    assert logical_id


def test_noncurrent_version_days_come_from_config(tmp_path: Path) -> None:
    built = build_app(tmp_path, noncurrent_version_days=7)
    _, bucket = bucket_with_logging(Template.from_stack(built.data))
    [rule] = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}


def test_access_log_bucket_is_private_and_expires_logs(templates: dict[str, Template]) -> None:
    templates["data"].has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "LifecycleConfiguration": {
                        "Rules": [
                            {
                                "ExpirationInDays": 365,
                                "Id": "expire-logs",
                                "Status": "Enabled",
                            }
                        ]
                    },
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                }
            ),
            "DeletionPolicy": "Retain",
        },
    )


def policy_statements(template: Template, bucket_id: str) -> list[dict[str, Any]]:
    """Statements of the bucket policy attached to `bucket_id`."""
    policies = template.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}}
    )
    [policy] = policies.values()
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_every_bucket_refuses_plain_http(templates: dict[str, Template]) -> None:
    data = templates["data"]
    for bucket_id in data.find_resources("AWS::S3::Bucket"):
        statements = policy_statements(data, bucket_id)
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ), bucket_id


def test_dataset_versions_are_write_once_and_never_deleted(templates: dict[str, Template]) -> None:
    data = templates["data"]
    bucket_id, _ = bucket_with_logging(data)
    statements = {s.get("Sid"): s for s in policy_statements(data, bucket_id)}
    write_once = statements["DatasetVersionsAreWriteOnce"]
    assert write_once["Effect"] == "Deny"
    assert write_once["Principal"] == {"AWS": "*"}
    assert write_once["Action"] == "s3:PutObject"
    assert write_once["Condition"] == {
        "Null": {"s3:if-none-match": "true"},
        "Bool": {"s3:ObjectCreationOperation": "true"},
    }
    assert json.dumps(write_once["Resource"]).endswith('"/datasets/*"]]}')
    never_deleted = statements["DatasetVersionsAreNeverDeleted"]
    assert never_deleted["Effect"] == "Deny"
    assert sorted(never_deleted["Action"]) == ["s3:DeleteObject", "s3:DeleteObjectVersion"]


def test_iris_v1_is_seeded_write_once_from_the_bundled_data(templates: dict[str, Template]) -> None:
    data = templates["data"]
    [seed] = data.find_resources("Custom::AWS").values()
    create = json.loads(
        "".join(
            p if isinstance(p, str) else "BUCKET"
            for p in seed["Properties"]["Create"]["Fn::Join"][1]
        )
    )
    assert create["action"] == "putObject"
    params = create["parameters"]
    assert params["Key"] == "datasets/iris/v1/data.csv"
    assert params["IfNoneMatch"] == "*"
    assert params["ChecksumAlgorithm"] == "SHA256"
    assert params["Body"].encode() == bundled_iris_csv()
    assert params["Metadata"]["sha256"] == hashlib.sha256(bundled_iris_csv()).hexdigest()
    assert create["ignoreErrorCodesMatching"] == "PreconditionFailed"


def test_committed_iris_v1_equals_what_make_model_trains_on() -> None:
    assert SEED_DATASET.read_bytes() == bundled_iris_csv()


def test_seed_provider_may_put_only_that_object(templates: dict[str, Template]) -> None:
    data = templates["data"]
    policies = data.find_resources(
        "AWS::IAM::Policy",
        {
            "Properties": {
                "PolicyDocument": {"Statement": [Match.object_like({"Action": "s3:PutObject"})]}
            }
        },
    )
    [policy] = policies.values()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert json.dumps(statement["Resource"]).endswith('"/datasets/iris/v1/data.csv"]]}')
    data.resource_properties_count_is("AWS::IAM::Role", {"ManagedPolicyArns": Match.any_value()}, 0)


def test_outputs_name_the_bucket(built: BuiltApp, templates: dict[str, Template]) -> None:
    outputs = templates["data"].find_outputs("*")
    assert {"DatasetBucketName", "SeededDataset"} <= set(outputs)
    assert built.data.bucket is not None
