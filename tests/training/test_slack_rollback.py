"""The Slack rollback function on the emulated serving stack (moto, stubbed CodeDeploy).

AWS behaviour relied on: AWS Chatbot's custom action runs `lambda invoke` with the payload its
command text names, and asks the person for a variable the notification does not define
(https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/chatbot/aws.sdk.kotlin.services.chatbot/-chatbot-client/create-custom-action.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-chatbot-customaction-customactiondefinition.html);
an IAM action is the service prefix plus the API operation
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

import training.control.slack_rollback as slack_module
from tests.support import build_app
from tests.training.fakes import (
    PROMOTION_ENV,
    REGISTRY_MODULES,
    V1,
    V2,
    PromotionWorld,
    granted_actions,
    iam_actions,
    training_modules_imported,
)
from tests.training.test_promotion import D1, D2, description, start_promotion, succeed
from training.control.promotion_services import ALL_AT_ONCE, PromotionSettings
from training.control.slack_rollback import handler, requester


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

    monkeypatch.setattr(slack_module, "connect_services", connect)
    return actors


@pytest.fixture
def seeded(world: PromotionWorld) -> PromotionWorld:
    """v1 live (Lambda version 2 behind the alias), v2 a registered candidate."""
    world.add_model(V1, "v1", accuracy=0.9667)
    world.add_model(V2, "v2", accuracy=0.98)
    world.seed_live(V1)
    return world


def promote_v2(world: PromotionWorld) -> None:
    """v2 live through a settled canary: v1 becomes the rollback target."""
    start_promotion(world, V2, D1, current="2", target="3")
    succeed(world, D1)
    world.calls.clear()


def test_the_button_rolls_back_to_the_rollback_target_as_the_slack_user(
    seeded: PromotionWorld, lambda_env: list[str]
) -> None:
    world = seeded
    promote_v2(world)
    world.expect_deployment(
        D2,
        current="3",
        target="4",
        description=description("rolled-back", V1, "slack:alice", "rollback from Slack by alice"),
        config=ALL_AT_ONCE,
        rollback=True,
    )
    answer = handler({"by": "alice"}, None)
    world.verify()

    assert answer["status"] == "rolling-back"
    assert (answer["model_version"], answer["previous_model_version"]) == (V1, V2)
    assert answer["deployment_id"] == D2
    assert "Rolling back to model" in answer["message"]
    assert "requested by alice" in answer["message"]
    assert lambda_env == ["slack:alice"]
    live, rollback_pointer = world.registry.live(), world.registry.rollback()
    assert live is not None
    assert rollback_pointer is not None
    assert (live.model_version, live.updated_by, rollback_pointer.model_version) == (
        V1,
        "slack:alice",
        V2,
    )
    # The registry's history records who asked and why.
    event = world.registry.promotion_events(1)[0]
    assert (event.type, event.actor, event.reason, event.model_version) == (
        "rolled-back",
        "slack:alice",
        "rollback from Slack by alice",
        V1,
    )


def test_without_a_rollback_target_it_refuses_readably_and_changes_nothing(
    seeded: PromotionWorld, lambda_env: list[str]
) -> None:
    world = seeded
    events_before = world.registry.events(limit=100)
    world.calls.clear()
    answer = handler({"by": "bob"}, None)
    assert answer["status"] == "refused"
    assert answer["message"].startswith("Nothing was rolled back: the registry records no rollback")
    assert "make rollback TO=<model version>" in answer["message"]
    assert world.calls == []
    assert world.registry.events(limit=100) == events_before


def test_a_rollback_target_already_live_is_refused_readably(
    seeded: PromotionWorld, lambda_env: list[str]
) -> None:
    world = seeded
    promote_v2(world)
    world.expect_deployment(
        D2,
        current="3",
        target="4",
        description=description("rolled-back", V1, "slack:alice", "rollback from Slack by alice"),
        config=ALL_AT_ONCE,
        rollback=True,
    )
    handler({"by": "alice"}, None)
    world.calls.clear()
    # The deployment is still running: a second press does not start another.
    world.expect_get_deployment(D2, "InProgress")
    answer = handler({"by": "carol"}, None)
    world.verify()
    assert answer["status"] == "refused"
    assert f"deployment {D2}" in answer["message"]
    assert world.calls_to("UpdateFunctionCode", "CreateDeployment") == []
    assert world.registry.promotion_events(1)[0].actor == "slack:alice"


@pytest.mark.parametrize(
    ("payload", "who"),
    [
        ({"by": "alice"}, "alice"),
        ({"by": " Jane Doe "}, "Jane.Doe"),
        ({"by": "<@U024BE7LH>; rm -rf"}, "@U024BE7LH.rm.-rf"),
        ({"by": "x" * 100}, "x" * 64),
        # Chatbot did not fill the variable in: its literal text names nobody.
        ({"by": "$by"}, "unnamed"),
        ({"by": ""}, "unnamed"),
        ({"by": 7}, "unnamed"),
        ({}, "unnamed"),
        ("not an object", "unnamed"),
        (None, "unnamed"),
    ],
)
def test_who_asked_comes_from_the_payload(payload: Any, who: str) -> None:
    assert requester(payload) == who


def test_every_call_the_slack_rollback_makes_is_granted(
    seeded: PromotionWorld, lambda_env: list[str], tmp_path: Path
) -> None:
    """The function's role (built with Slack ids) allows every call the rollback makes; a
    missing grant is an AccessDenied in AWS that moto and stubs never raise."""
    world = seeded
    promote_v2(world)
    world.expect_deployment(
        D2,
        current="3",
        target="4",
        description=description("rolled-back", V1, "slack:dan", "rollback from Slack by dan"),
        config=ALL_AT_ONCE,
        rollback=True,
    )
    handler({"by": "dan"}, None)
    called = iam_actions(world.calls)
    assert {"lambda:UpdateFunctionCode", "codedeploy:CreateDeployment"} <= called
    built = build_app(
        tmp_path, slack_workspace_id="T0123456789", slack_channel_id="C0123456789", checks=False
    )
    api = Template.from_stack(built.api)
    assert called - granted_actions(api, "SlackRollbackRole") == set()


def test_the_handler_imports_without_numpy_sklearn_or_type_stubs() -> None:
    modules = training_modules_imported(
        "training.control.slack_rollback",
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
        "training.control.promotion",
        "training.control.promotion_services",
        "training.control.serving_image",
        "training.control.settlement",
        "training.control.slack_rollback",
        *REGISTRY_MODULES,
    ]
