"""The registrar announces a registered candidate once on the default bus ("Model Registered")."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tests.training.fakes import REPOSITORY, TABLE, load_event
from training.control.registrar import PublishError, RegistrarSettings, register
from training.registry import ModelRecord, Registry

SETTINGS = RegistrarSettings(registry_table=TABLE, repository_name=REPOSITORY)
MODEL_VERSION = "0a1b2c3d4e5f"
DIGEST = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678"
IMAGE_URI = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{REPOSITORY}@{DIGEST}"


def record(registry: Registry, status: str = "candidate") -> None:
    registry.record_model(
        ModelRecord(
            model_version=MODEL_VERSION,
            status=status,
            status_reason=f"{status} by the quality gate",
            run_id="20261127T140501Z-1a2b3c4d",
            dataset_name="iris",
            dataset_version="v2",
            dataset_uri="s3://data/datasets/iris/v2/data.csv",
            dataset_sha256="e" * 64,
            metrics={"accuracy": 0.9667},
            gate={"passed": status == "candidate"},
            image_tag=f"v2-{MODEL_VERSION}",
        )
    )


@pytest.fixture
def bus(registry: Registry) -> Any:
    """A rule on the default bus for the promoter's pattern, delivering to a queue to read."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="promoter")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events")
    pattern = {"source": ["iris-ml.registry"], "detail-type": ["Model Registered"]}
    events.put_rule(Name="ModelRegistered", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="ModelRegistered", Targets=[{"Id": "promoter", "Arn": arn}])

    def delivered() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(message["Body"]) for message in messages]

    return delivered


def test_a_registered_candidate_is_announced_once(registry: Registry, bus: Any) -> None:
    record(registry)
    register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    [event] = bus()
    assert (event["source"], event["detail-type"]) == ("iris-ml.registry", "Model Registered")
    assert event["detail"] == {
        "model_version": MODEL_VERSION,
        "dataset_name": "iris",
        "dataset_version": "v2",
        "image_tag": f"v2-{MODEL_VERSION}",
        "image_digest": DIGEST,
        "image_uri": IMAGE_URI,
        "accuracy": 0.9667,
    }
    model = registry.get_model(MODEL_VERSION)
    assert model is not None
    assert model.announced_at == "2026-11-27T14:05:01Z"
    [announced] = [e for e in registry.events(limit=100) if e.type == "model-announced"]
    assert (announced.detail or {})["event_id"] == event["id"]

    # ECR's event delivered again: recorded already, announced already.
    answer = register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    assert answer["status"] == "duplicate"
    assert bus() == []


@pytest.mark.parametrize("status", ["rejected", "failed"])
def test_an_image_of_a_model_that_did_not_pass_is_not_announced(
    registry: Registry, bus: Any, status: str
) -> None:
    record(registry, status)
    answer = register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    assert answer["status"] == "registered"
    assert bus() == []
    model = registry.get_model(MODEL_VERSION)
    assert model is not None
    assert (model.status, model.announced_at) == (status, None)


def test_an_announcement_eventbridge_refuses_raises_and_the_retry_announces(
    registry: Registry, bus: Any
) -> None:
    record(registry)
    refusing = boto3.client("events")
    with Stubber(refusing) as stubber:
        stubber.add_response(
            "put_events",
            {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}],
            },
            {"Entries": ANY},
        )
        with pytest.raises(PublishError, match="ThrottlingException: Rate exceeded"):
            register(load_event("ecr_image_push"), SETTINGS, registry=registry, events=refusing)
    model = registry.get_model(MODEL_VERSION)
    assert model is not None
    assert (model.image_digest, model.announced_at) == (DIGEST, None)
    # Lambda retries the push event: the image is a duplicate, the announcement is not.
    answer = register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    assert answer["status"] == "duplicate"
    assert [event["detail"]["model_version"] for event in bus()] == [MODEL_VERSION]
    register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    assert bus() == []
