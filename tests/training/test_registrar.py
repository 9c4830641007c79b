"""The registrar on a recorded ECR push event: registration, duplicates, order, ignored tags."""

from __future__ import annotations

import json
import logging

import pytest

from tests.training.fakes import REPOSITORY, TABLE, load_event
from training.aws import JsonFormatter
from training.control.registrar import EventError, RegistrarSettings, handler, register
from training.registry import ModelRecord, Registry, RegistryConflictError

SETTINGS = RegistrarSettings(registry_table=TABLE, repository_name=REPOSITORY)
MODEL_VERSION = "0a1b2c3d4e5f"
DIGEST = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678"


def trainer_record() -> ModelRecord:
    return ModelRecord(
        model_version=MODEL_VERSION,
        status="candidate",
        status_reason="passed the quality gate with accuracy 1.0000",
        run_id="20261127T140501Z-1a2b3c4d",
        dataset_name="iris",
        dataset_version="v2",
        dataset_uri="s3://data/datasets/iris/v2/data.csv",
        dataset_sha256="e" * 64,
        metrics={"accuracy": 1.0},
        gate={"passed": True},
        image_tag=f"v2-{MODEL_VERSION}",
    )


def test_a_push_of_a_model_tag_is_recorded_on_its_model(registry: Registry) -> None:
    registry.record_model(trainer_record())
    answer = register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    image_uri = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{REPOSITORY}@{DIGEST}"
    assert answer == {
        "status": "registered",
        "model_version": MODEL_VERSION,
        "image_uri": image_uri,
        "repository": REPOSITORY,
        "image_tag": f"v2-{MODEL_VERSION}",
        "image_digest": DIGEST,
    }
    model = registry.get_model(MODEL_VERSION)
    assert model is not None
    assert (model.image_digest, model.image_uri, model.repository) == (
        DIGEST,
        image_uri,
        REPOSITORY,
    )
    assert model.registered_at == "2026-11-27T14:05:01Z"
    assert (model.status, model.metrics) == ("candidate", {"accuracy": 1.0})
    registered = [e for e in registry.events() if e.type == "image-registered"]
    assert [(e.model_version, e.actor) for e in registered] == [(MODEL_VERSION, "test")]


@pytest.mark.fault
def test_a_duplicate_event_changes_nothing(registry: Registry) -> None:
    register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    model = registry.get_model(MODEL_VERSION)
    events = registry.events(limit=100)
    answer = register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    assert answer["status"] == "duplicate"
    assert registry.get_model(MODEL_VERSION) == model
    assert registry.events(limit=100) == events


@pytest.mark.fault
def test_a_push_before_the_trainer_records_converges(registry: Registry) -> None:
    register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    early = registry.get_model(MODEL_VERSION)
    assert early is not None
    assert (early.status, early.dataset_version, early.metrics) == ("candidate", "v2", None)
    registry.record_model(trainer_record())
    model = registry.get_model(MODEL_VERSION)
    assert model is not None
    assert (model.image_digest, model.metrics, model.run_id) == (
        DIGEST,
        {"accuracy": 1.0},
        "20261127T140501Z-1a2b3c4d",
    )
    assert model.status_reason == "passed the quality gate with accuracy 1.0000"


@pytest.mark.fault
def test_another_digest_for_a_registered_model_raises_for_the_dead_letter_queue(
    registry: Registry,
) -> None:
    register(load_event("ecr_image_push"), SETTINGS, registry=registry)
    tampered = load_event("ecr_image_push", image_digest="sha256:" + "99" * 32)
    with pytest.raises(RegistryConflictError, match="tampered"):
        register(tampered, SETTINGS, registry=registry)
    model = registry.get_model(MODEL_VERSION)
    assert model is not None
    assert model.image_digest == DIGEST


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"image_tag": "live"}, "tag live is not <dataset_version>-<model_version>"),
        ({"image_tag": "rollback"}, "tag rollback is not"),
        ({"image_tag": "v2-0A1B2C3D4E5F"}, "is not <dataset_version>-<model_version>"),
        ({"image_tag": None}, "untagged"),
        ({"repository_name": "someone-else"}, "repository someone-else is not iris-models"),
        ({"action_type": "DELETE"}, "action DELETE is not a push"),
        ({"result": "FAILURE"}, "result FAILURE is not a success"),
    ],
)
def test_other_pushes_are_ignored(
    registry: Registry, changes: dict[str, str | None], reason: str
) -> None:
    event = load_event("ecr_image_push", **changes)
    if changes.get("image_tag", "") is None:
        del event["detail"]["image-tag"]
    answer = register(event, SETTINGS, registry=registry)
    assert answer["status"] == "ignored"
    assert reason in answer["reason"]
    assert registry.list_models() == []
    assert registry.events() == []


@pytest.mark.fault
def test_an_event_from_elsewhere_is_an_error(registry: Registry) -> None:
    with pytest.raises(EventError, match="not an ECR event"):
        register({"source": "aws.s3", "detail": {}}, SETTINGS, registry=registry)


def test_the_handler_registers_from_its_environment_and_logs_json(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REGISTRY_TABLE", TABLE)
    monkeypatch.setenv("REPOSITORY_NAME", REPOSITORY)
    with caplog.at_level(logging.INFO, logger="training.control.registrar"):
        answer = handler(load_event("ecr_image_push"), None)
    assert answer["status"] == "registered"
    [record] = [r for r in caplog.records if r.name == "training.control.registrar"]
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "image registered"
    assert line["level"] == "INFO"
    assert line["model_version"] == MODEL_VERSION
    assert line["event_id"] == "13cde686-328b-6117-af20-0e5566167482"
    assert line["image_digest"] == DIGEST
