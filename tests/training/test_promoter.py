"""The promoter and watcher handlers on the recorded events, with settings from the environment."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

import training.control.promoter as promoter_module
from tests.training.fakes import (
    PROMOTION_ENV,
    REGISTRY_MODULES,
    V1,
    V2,
    PromotionWorld,
    appspec,
    load_sample,
    training_modules_imported,
)
from training.aws import JsonFormatter, SettingsError
from training.control.promoter import deployment_handler, handler, promotion_reason
from training.control.promotion_services import EventError, NotPromotableError, PromotionSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "d-8C4SHXQ2B"  # the id in the recorded CodeDeploy events
REASON = "new model registered: v2 accuracy 0.9800"


@pytest.fixture
def lambda_env(world: PromotionWorld, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The environment the CDK sets, and the world's clients in place of new ones."""
    for name, value in PROMOTION_ENV.items():
        monkeypatch.setenv(name, value)
    actors: list[str] = []

    def connect(settings: PromotionSettings, *, actor: str) -> Any:
        assert settings == PromotionSettings.from_env(PROMOTION_ENV)
        actors.append(actor)
        return world.services

    monkeypatch.setattr(promoter_module, "connect_services", connect)
    return actors


@pytest.fixture
def seeded(world: PromotionWorld) -> PromotionWorld:
    world.add_model(V1, "v1", accuracy=0.9667)
    world.add_model(V2, "v2", accuracy=0.98)
    world.seed_live(V1)
    return world


def test_the_model_registered_event_promotes_its_model(
    seeded: PromotionWorld, lambda_env: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    world = seeded
    world.expect_deployment(
        DEPLOYMENT,
        current="2",
        target="3",
        description=f"model promotion: promoted {V2} by promoter: {REASON}",
    )
    with caplog.at_level(logging.INFO):
        answer = handler(load_sample("model_registered"), None)
    world.verify()
    assert answer == {
        "status": "deploying",
        "model_version": V2,
        "previous_model_version": V1,
        "deployment_id": DEPLOYMENT,
        "lambda_version": "3",
    }
    assert lambda_env == ["promoter"]
    assert world.appspec_of(0) == appspec(current="2", target="3")
    event = world.registry.promotion_events(1)[0]
    assert (event.type, event.actor, event.reason) == ("promoted", "promoter", REASON)
    [record] = [r for r in caplog.records if r.name == "training.control.promoter"]
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["deployment_id"], line["model_version"]) == (
        "promotion started",
        DEPLOYMENT,
        V2,
    )

    # EventBridge delivers the event again: the model is live, nothing is called, no error.
    world.calls.clear()
    again = handler(load_sample("model_registered"), None)
    assert again["status"] == "skipped"
    assert f"model {V2} is already live" in again["reason"]
    assert world.calls == []


@pytest.mark.fault
def test_a_refused_model_raises_so_the_event_reaches_the_dead_letter_queue(
    world: PromotionWorld, lambda_env: list[str]
) -> None:
    world.add_model(V2, "v2", status="rejected")
    with pytest.raises(NotPromotableError, match=f"model {V2} is rejected"):
        handler(load_sample("model_registered"), None)
    with pytest.raises(EventError, match="not a Model Registered event"):
        handler(load_sample("codedeploy_deployment_success"), None)


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({"dataset_version": "v7", "accuracy": 1}, "new model registered: v7 accuracy 1.0000"),
        ({"dataset_version": "v7", "accuracy": None}, "new model registered: v7 accuracy unknown"),
    ],
)
def test_the_promotion_reason(detail: dict[str, Any], reason: str) -> None:
    assert promotion_reason(detail) == reason


@pytest.mark.parametrize(
    ("sample", "outcome"),
    [("codedeploy_deployment_success", "succeeded"), ("codedeploy_deployment_failure", "failed")],
)
def test_the_codedeploy_events_settle_the_deployment(
    seeded: PromotionWorld, lambda_env: list[str], sample: str, outcome: str
) -> None:
    world = seeded
    world.expect_deployment(
        DEPLOYMENT,
        current="2",
        target="3",
        description=f"model promotion: promoted {V2} by promoter: {REASON}",
    )
    handler(load_sample("model_registered"), None)
    if outcome == "failed":
        world.expect_get_deployment(
            DEPLOYMENT, "Failed", error={"code": "ALARM_ACTIVE", "message": "Api5xx"}
        )
    world.expect_invalidation(DEPLOYMENT)
    world.clock.advance(seconds=1)

    answer = deployment_handler(load_sample(sample), None)
    world.verify()
    assert (answer["status"], answer["deployment_id"], answer["model_version"]) == (
        outcome,
        DEPLOYMENT,
        V2,
    )
    assert lambda_env == ["promoter", "watcher"]
    live = world.registry.live()
    assert live is not None
    assert live.model_version == (V2 if outcome == "succeeded" else V1)
    assert world.registry.promotion_events(1)[0].actor == "watcher"
    # The same event again changes nothing.
    assert deployment_handler(load_sample(sample), None)["status"] == "duplicate"


def test_another_applications_deployment_is_ignored(
    world: PromotionWorld, lambda_env: list[str]
) -> None:
    event = load_sample("codedeploy_deployment_success", application="billing")
    answer = deployment_handler(event, None)
    assert (answer["status"], answer["deployment_id"]) == ("ignored", DEPLOYMENT)
    assert world.calls == []


@pytest.mark.parametrize("name", sorted(PROMOTION_ENV))
def test_a_missing_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    for key, value in PROMOTION_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(name, " ")
    for entry_point in (handler, deployment_handler):
        with pytest.raises(SettingsError, match=f"environment variable {name} is not set"):
            entry_point(load_sample("model_registered"), None)


def test_the_handlers_import_without_numpy_sklearn_or_type_stubs() -> None:
    modules = training_modules_imported(
        "training.control.promoter",
        blocked=(
            "numpy",
            "sklearn",
            "scipy",
            "mypy_boto3_cloudfront",
            "mypy_boto3_ecr",
            "mypy_boto3_lambda",
            "mypy_boto3_dynamodb",
        ),
    )
    assert modules == [
        "training",
        "training.aws",
        "training.contract",
        "training.control",
        "training.control.promoter",
        "training.control.promotion",
        "training.control.promotion_services",
        "training.control.serving_image",
        "training.control.settlement",
        *REGISTRY_MODULES,
    ]
