"""Promotion on moto (Lambda, SSM, ECR, DynamoDB) with CodeDeploy and CloudFront stubbed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.training.fakes import (
    APPLICATION,
    FUNCTION,
    GROUP,
    LIVE_PARAMETER,
    REPOSITORY,
    SEED_MODEL,
    TABLE,
    V1,
    V2,
    V3,
    PromotionWorld,
    appspec,
    granted_actions,
    iam_actions,
    load_sample,
)
from training.control.promotion import promote, rollback, status
from training.control.promotion_services import (
    ALL_AT_ONCE,
    MANIFEST_MEDIA_TYPES,
    AlreadyLiveError,
    DeploymentInProgressError,
    DeploymentNotRecordedError,
    EventError,
    ModelNotFoundError,
    NothingToRollBackError,
    NotPromotableError,
    Promotion,
    Settlement,
)
from training.control.settlement import settle_deployment
from training.registry import RegistryConflictError

D1, D2, D3 = "d-1PROMOTE1", "d-2PROMOTE2", "d-3PROMOTE3"
ALARM = {
    "code": "ALARM_ACTIVE",
    "message": "One or more alarms have been activated according to the Amazon CloudWatch "
    "metrics you selected: iris-ml-dev-api-FunctionErrors",
}
ROLLED_BACK = "Automatic rollback triggered by alarm"


def description(type_: str, model_version: str, actor: str, reason: str) -> str:
    return f"model promotion: {type_} {model_version} by {actor}: {reason}"


def state_change(deployment_id: str, state: str, **detail: Any) -> dict[str, Any]:
    name = "success" if state == "SUCCESS" else "failure"
    return load_sample(
        f"codedeploy_deployment_{name}", deploymentId=deployment_id, state=state, **detail
    )


def start_promotion(
    world: PromotionWorld,
    model_version: str,
    deployment_id: str,
    *,
    current: str,
    target: str,
    actor: str = "alice",
    reason: str = "better",
) -> Promotion:
    world.expect_deployment(
        deployment_id,
        current=current,
        target=target,
        description=description("promoted", model_version, actor, reason),
    )
    promotion = promote(model_version, actor=actor, reason=reason, services=world.services)
    world.clock.advance(seconds=1)
    return promotion


def succeed(world: PromotionWorld, deployment_id: str) -> Settlement:
    """End a deployment as CodeDeploy does on success: the alias on the new version, an event."""
    deployment = world.registry.get_deployment(deployment_id)
    assert deployment is not None
    world.services.lambda_client.update_alias(
        FunctionName=FUNCTION, Name="live", FunctionVersion=deployment.lambda_version
    )
    world.expect_invalidation(deployment_id)
    settlement = settle_deployment(state_change(deployment_id, "SUCCESS"), world.services)
    world.clock.advance(seconds=1)
    return settlement


def snapshot(world: PromotionWorld) -> dict[str, Any]:
    """Everything promotion writes: pointers, models, events, deployments, parameter, tags."""
    registry = world.registry
    deployments = world.services.registry._client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": "DEPLOYMENT"},
    )["Items"]
    return {
        "pointers": registry.pointer_and_revision("live"),
        "rollback": registry.pointer_and_revision("rollback"),
        "models": registry.list_models(),
        "events": registry.events(limit=100),
        "deployments": deployments,
        "parameter": world.parameter(),
        "tags": world.tags(),
    }


@pytest.fixture
def seeded(world: PromotionWorld) -> PromotionWorld:
    """v1 live (Lambda version 2 behind the alias), v2 a registered candidate."""
    world.add_model(V1, "v1", accuracy=0.9667)
    world.add_model(V2, "v2", accuracy=0.98)
    world.seed_live(V1)
    return world


# promote


def test_promote_deploys_through_codedeploy_then_records_and_moves_the_pointers(
    seeded: PromotionWorld,
) -> None:
    """Waits for no update in progress, then for the published version itself to be Active:
    AWS Lambda Developer Guide, "Lambda function states" (https://docs.aws.amazon.com/lambda/
    latest/dg/functions-states.html): an update in progress refuses another, and a new image
    version is Pending until Lambda has optimised it; invoking it then fails."""
    world = seeded
    promotion = start_promotion(world, V2, D1, current="2", target="3")
    world.verify()

    assert promotion == Promotion(
        type="promoted",
        model_version=V2,
        previous_model_version=V1,
        deployment_id=D1,
        lambda_version="3",
        previous_lambda_version="2",
        image_uri=world.uri(V2),
        deployment_config=None,
    )
    assert [name for name, _ in world.calls] == [
        "GetFunction",
        "UpdateFunctionCode",
        "GetFunctionConfiguration",
        "GetAlias",
        "CreateDeployment",
        "PutParameter",
        "BatchGetImage",
        "PutImage",
        "BatchGetImage",
        "PutImage",
    ]
    (
        idle,
        update,
        active,
        alias,
        deploy,
        parameter,
        get_live,
        tag_live,
        get_rollback,
        tag_rollback,
    ) = (params for _, params in world.calls)
    # No earlier update in progress first; then the published version itself active.
    assert idle == {"FunctionName": FUNCTION}
    assert update == {"FunctionName": FUNCTION, "ImageUri": world.uri(V2), "Publish": True}
    assert active == {"FunctionName": FUNCTION, "Qualifier": "3"}
    assert alias == {"FunctionName": FUNCTION, "Name": "live"}
    assert deploy == {
        "applicationName": APPLICATION,
        "deploymentGroupName": GROUP,
        "revision": {
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": deploy["revision"]["appSpecContent"]["content"]},
        },
        "description": description("promoted", V2, "alice", "better"),
    }
    assert world.appspec_of(0) == appspec(current="2", target="3")
    assert parameter == {
        "Name": LIVE_PARAMETER,
        "Value": V2,
        "Type": "String",
        "Overwrite": True,
    }
    for get, tag, model_version, name in (
        (get_live, tag_live, V2, "live"),
        (get_rollback, tag_rollback, V1, "rollback"),
    ):
        assert get == {
            "repositoryName": REPOSITORY,
            "imageIds": [{"imageDigest": world.digests[model_version]}],
            "acceptedMediaTypes": list(MANIFEST_MEDIA_TYPES),
        }
        assert (tag["imageTag"], tag["imageDigest"]) == (name, world.digests[model_version])
    # CodeDeploy moves the alias, not promotion.
    lambda_client = world.services.lambda_client
    assert lambda_client.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"] == "2"
    assert world.parameter() == V2
    assert world.tags() == {"live": world.digests[V2], "rollback": world.digests[V1]}

    registry = world.registry
    live, rollback_pointer = registry.live(), registry.rollback()
    assert live is not None
    assert rollback_pointer is not None
    assert (live.model_version, live.image_digest, live.image_uri, live.revision) == (
        V2,
        world.digests[V2],
        world.uri(V2),
        2,
    )
    assert (live.deployment_id, live.updated_by, live.reason) == (D1, "alice", "better")
    assert (rollback_pointer.model_version, rollback_pointer.revision) == (V1, 1)
    assert rollback_pointer.image_digest == world.digests[V1]
    assert (world.status_of(V2), world.status_of(V1)) == ("live", "retired")
    model = registry.get_model(V2)
    assert model is not None
    assert model.status_reason == f"promoted by alice (deployment {D1}): better"
    event = registry.promotion_events(1)[0]
    assert (event.type, event.actor, event.reason, event.model_version) == (
        "promoted",
        "alice",
        "better",
        V2,
    )
    assert event.detail == {
        "from_version": V1,
        "to_version": V2,
        "deployment_id": D1,
        "lambda_version": "3",
        "previous_lambda_version": "2",
        "image_digest": world.digests[V2],
        "revision": 2,
    }
    deployment = registry.get_deployment(D1)
    assert deployment is not None
    assert (deployment.status, deployment.previous_model_version, deployment.live_revision) == (
        "in-progress",
        V1,
        2,
    )


def _unknown(world: PromotionWorld) -> str:
    return "ffffffffffff"


def _rejected(world: PromotionWorld) -> str:
    world.add_model(V3, "v3", status="rejected", accuracy=0.5)
    return V3


def _failed(world: PromotionWorld) -> str:
    world.add_model(V3, "v3", status="failed")
    return V3


def _without_image(world: PromotionWorld) -> str:
    world.add_model(V3, "v3", register=False)
    return V3


def _live(world: PromotionWorld) -> str:
    return V1


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (_unknown, ModelNotFoundError, "model ffffffffffff is not in the registry"),
        (_rejected, NotPromotableError, f"model {V3} is rejected and cannot go live: rejected by"),
        (_failed, NotPromotableError, f"model {V3} is failed and cannot go live"),
        (_without_image, NotPromotableError, f"model {V3} has no registered image yet"),
        (_live, AlreadyLiveError, f"model {V1} is already live"),
    ],
)
@pytest.mark.fault
def test_a_refused_promotion_names_the_model_and_the_reason_and_calls_nothing(
    seeded: PromotionWorld, target: Any, error: type[Exception], message: str
) -> None:
    world = seeded
    model_version = target(world)
    before = snapshot(world)
    world.calls.clear()
    with pytest.raises(error, match=message):
        promote(model_version, actor="alice", reason="try", services=world.services)
    # The stubbed CodeDeploy and CloudFront answer nothing, so any call there would raise.
    assert world.calls == []
    assert snapshot(world) == before


@pytest.mark.fault
def test_a_promotion_that_loses_the_race_after_deploying_writes_nothing(
    seeded: PromotionWorld,
) -> None:
    world = seeded
    before = snapshot(world)

    def operator_moves_live(**_: Any) -> None:
        world.registry.set_live(V1, expected_revision=1, reason="someone else")

    world.services.codedeploy.meta.events.register(  # type: ignore[attr-defined]
        "after-call.codedeploy.CreateDeployment", operator_moves_live
    )
    world.expect_deployment(
        D1, current="2", target="3", description=description("promoted", V2, "alice", "better")
    )
    with pytest.raises(RegistryConflictError) as raised:
        promote(V2, actor="alice", reason="better", services=world.services)
    message = str(raised.value)
    assert "another promotion changed the live model" in message
    assert "run make status and retry" in message
    assert f"deployment {D1} (Lambda version 2 -> 3) is running but not recorded" in message
    world.verify()
    after = snapshot(world)
    assert after["pointers"][1] == 2  # only the operator's move
    assert {key: after[key] for key in after if key not in ("pointers", "events")} == {
        key: before[key] for key in before if key not in ("pointers", "events")
    }
    assert world.registry.get_deployment(D1) is None
    assert all(e.actor == "test" for e in world.registry.promotion_events(10))  # set_live's


@pytest.mark.fault
def test_a_promotion_that_loses_the_race_while_publishing_deploys_nothing(
    seeded: PromotionWorld,
) -> None:
    world = seeded

    def operator_moves_live(**_: Any) -> None:
        world.registry.set_live(V1, expected_revision=1, reason="someone else")

    world.services.lambda_client.meta.events.register(
        "after-call.lambda.GetAlias", operator_moves_live
    )
    with pytest.raises(RegistryConflictError, match="nothing was deployed"):
        promote(V2, actor="alice", reason="better", services=world.services)
    assert "CreateDeployment" not in [name for name, _ in world.calls]
    assert world.status_of(V2) == "candidate"
    assert world.parameter() == V1


@pytest.mark.fault
def test_a_deployment_still_running_refuses_the_next_promotion(seeded: PromotionWorld) -> None:
    world = seeded
    start_promotion(world, V2, D1, current="2", target="3")
    world.add_model(V3, "v3")
    world.calls.clear()
    world.expect_get_deployment(D1, "InProgress")
    with pytest.raises(
        DeploymentInProgressError, match=f"deployment {D1} of model {V2} is InProgress"
    ):
        promote(V3, actor="alice", reason="even better", services=world.services)
    world.verify()
    assert [name for name, _ in world.calls] == ["GetDeployment"]


@pytest.mark.fault
def test_an_ended_deployment_whose_event_was_lost_is_settled_before_the_next(
    seeded: PromotionWorld,
) -> None:
    world = seeded
    start_promotion(world, V2, D1, current="2", target="3")
    world.add_model(V3, "v3")
    world.expect_get_deployment(D1, "Failed", error=ALARM, rollback_message=ROLLED_BACK)
    # CodeDeploy moved the alias back to version 2; the new deployment starts from there.
    start_promotion(world, V3, D2, current="2", target="4")
    world.verify()
    assert world.registry.get_deployment(D1).status == "failed"  # type: ignore[union-attr]
    assert (world.status_of(V1), world.status_of(V2), world.status_of(V3)) == (
        "retired",
        "failed",
        "live",
    )
    rollback_pointer = world.registry.rollback()
    assert rollback_pointer is not None
    assert rollback_pointer.model_version == V1
    assert world.tags() == {"live": world.digests[V3], "rollback": world.digests[V1]}
    # The lost event arrives after all: nothing more happens.
    settlement = settle_deployment(state_change(D1, "FAILURE"), world.services)
    assert settlement.action == "duplicate"


# rollback


def test_rollback_returns_to_the_rollback_model_all_at_once(seeded: PromotionWorld) -> None:
    world = seeded
    start_promotion(world, V2, D1, current="2", target="3")
    succeed(world, D1)
    world.calls.clear()
    world.expect_deployment(
        D2,
        current="3",
        target="4",
        description=description("rolled-back", V1, "bob", "p99 latency doubled"),
        config=ALL_AT_ONCE,
        rollback=True,
    )
    promotion = rollback(actor="bob", reason="p99 latency doubled", services=world.services)
    world.verify()

    assert (promotion.type, promotion.model_version, promotion.previous_model_version) == (
        "rolled-back",
        V1,
        V2,
    )
    assert promotion.deployment_config == ALL_AT_ONCE
    assert world.calls_to("UpdateFunctionCode")[0][1]["ImageUri"] == world.uri(V1)
    assert world.appspec_of(0) == appspec(current="3", target="4")
    live, rollback_pointer = world.registry.live(), world.registry.rollback()
    assert live is not None
    assert rollback_pointer is not None
    assert (live.model_version, rollback_pointer.model_version) == (V1, V2)
    assert (world.status_of(V1), world.status_of(V2)) == ("live", "retired")
    event = world.registry.promotion_events(1)[0]
    assert (event.type, event.actor, event.reason) == ("rolled-back", "bob", "p99 latency doubled")
    assert (event.detail or {})["deployment_config"] == ALL_AT_ONCE
    assert world.parameter() == V1
    assert world.tags() == {"live": world.digests[V1], "rollback": world.digests[V2]}


def test_rollback_to_a_named_model(seeded: PromotionWorld) -> None:
    world = seeded
    world.add_model(V3, "v3", accuracy=0.99)
    start_promotion(world, V2, D1, current="2", target="3")
    succeed(world, D1)
    start_promotion(world, V3, D2, current="3", target="4")
    succeed(world, D2)
    world.expect_deployment(
        D3,
        current="4",
        target="5",
        description=description("rolled-back", V1, "carol", "v2 and v3 drift"),
        config=ALL_AT_ONCE,
        rollback=True,
    )
    rollback(to=V1, actor="carol", reason="v2 and v3 drift", services=world.services)
    world.verify()
    live, rollback_pointer = world.registry.live(), world.registry.rollback()
    assert live is not None
    assert rollback_pointer is not None
    assert (live.model_version, rollback_pointer.model_version) == (V1, V3)
    assert [world.status_of(v) for v in (V1, V2, V3)] == ["live", "retired", "retired"]
    assert world.tags() == {"live": world.digests[V1], "rollback": world.digests[V3]}


def test_rollback_without_a_rollback_model_is_refused(world: PromotionWorld) -> None:
    world.add_model(V1, "v1")
    world.seed_live(V1)
    with pytest.raises(
        NothingToRollBackError, match="name the model to return to with --model-version"
    ):
        rollback(actor="bob", reason="why not", services=world.services)
    with pytest.raises(AlreadyLiveError):
        rollback(to=V1, actor="bob", reason="why not", services=world.services)
    assert world.calls == []


# settle_deployment


def test_a_successful_deployment_invalidates_the_cached_predictions(
    seeded: PromotionWorld,
) -> None:
    world = seeded
    start_promotion(world, V2, D1, current="2", target="3")
    world.calls.clear()
    settlement = succeed(world, D1)
    world.verify()

    assert settlement == Settlement(
        "succeeded",
        D1,
        V2,
        f"CodeDeploy deployment {D1} succeeded: Lambda version 3 serves all traffic",
    )
    assert world.calls_to("CreateInvalidation") == [
        (
            "CreateInvalidation",
            {
                "DistributionId": "E2QWRUHAPOMQZL",
                "InvalidationBatch": {
                    "Paths": {"Quantity": 2, "Items": ["/predict/", "/predict/*"]},
                    "CallerReference": D1,
                },
            },
        )
    ]
    deployment = world.registry.get_deployment(D1)
    assert deployment is not None
    assert (deployment.status, deployment.settled_by) == ("succeeded", "watcher")
    assert (world.status_of(V2), world.status_of(V1)) == ("live", "retired")
    event = world.registry.promotion_events(1)[0]
    assert (event.type, event.model_version, (event.detail or {})["deployment_id"]) == (
        "deployment-succeeded",
        V2,
        D1,
    )
    # The parameter and the tags are set again (a repair), to what they already were.
    assert world.parameter() == V2
    assert world.tags() == {"live": world.digests[V2], "rollback": world.digests[V1]}


@pytest.mark.fault
@pytest.mark.parametrize(("state", "outcome"), [("FAILURE", "failed"), ("STOP", "stopped")])
def test_a_failed_deployment_puts_registry_parameter_and_tags_back(
    seeded: PromotionWorld, state: str, outcome: str
) -> None:
    world = seeded
    world.add_model(V3, "v3", accuracy=0.99)
    start_promotion(world, V2, D1, current="2", target="3")
    succeed(world, D1)
    before = snapshot(world)
    start_promotion(world, V3, D2, current="3", target="4")
    world.expect_get_deployment(
        D2, "Failed" if state == "FAILURE" else "Stopped", error=ALARM, rollback_message=ROLLED_BACK
    )
    world.expect_invalidation(D2)
    settlement = settle_deployment(state_change(D2, state), world.services)
    world.verify()

    verb = "failed" if state == "FAILURE" else "was stopped"
    reason = (
        f"CodeDeploy deployment {D2} {verb}; ALARM_ACTIVE: {ALARM['message']}; "
        f"rollback: {ROLLED_BACK}"
    )
    assert settlement == Settlement(outcome, D2, V3, reason)
    after = snapshot(world)
    assert after["parameter"] == before["parameter"] == V2
    assert (
        after["tags"]
        == before["tags"]
        == {
            "live": world.digests[V2],
            "rollback": world.digests[V1],
        }
    )
    live, rollback_pointer = world.registry.live(), world.registry.rollback()
    assert live is not None
    assert rollback_pointer is not None
    assert (live.model_version, live.revision, live.updated_by) == (V2, 4, "watcher")
    assert (rollback_pointer.model_version, rollback_pointer.image_digest) == (
        V1,
        world.digests[V1],
    )
    assert [world.status_of(v) for v in (V1, V2, V3)] == ["retired", "live", "failed"]
    failed = world.registry.get_model(V3)
    assert failed is not None
    assert failed.status_reason == reason
    event = world.registry.promotion_events(1)[0]
    assert (event.type, event.model_version, event.reason) == ("promotion-failed", V3, reason)
    assert (event.detail or {})["to_version"] == V2
    deployment = world.registry.get_deployment(D2)
    assert deployment is not None
    assert (deployment.status, deployment.outcome) == (outcome, reason)


@pytest.mark.fault
def test_a_duplicate_event_changes_nothing(seeded: PromotionWorld) -> None:
    world = seeded
    start_promotion(world, V2, D1, current="2", target="3")
    world.expect_get_deployment(D1, "Failed", error=ALARM)
    world.expect_invalidation(D1)
    settle_deployment(state_change(D1, "FAILURE"), world.services)
    world.verify()
    before = snapshot(world)
    world.calls.clear()
    for state in ("FAILURE", "SUCCESS"):
        settlement = settle_deployment(state_change(D1, state), world.services)
        assert (settlement.action, settlement.reason) == ("duplicate", "already settled as failed")
    assert world.calls == []
    assert snapshot(world) == before


@pytest.mark.fault
def test_a_failed_first_promotion_leaves_no_model_live_and_the_bootstrap_image(
    world: PromotionWorld,
) -> None:
    world.add_model(V1, "v1")
    world.add_model(V2, "v2")
    start_promotion(world, V1, D1, current="1", target="2")
    assert world.calls_to("GetParameter") == [("GetParameter", {"Name": LIVE_PARAMETER})]
    assert world.tags() == {"live": world.digests[V1]}
    world.expect_get_deployment(D1, "Failed", error=ALARM)
    world.expect_invalidation(D1)
    settle_deployment(state_change(D1, "FAILURE"), world.services)

    assert world.registry.live() is None
    assert world.registry.pointer_and_revision("live")[1] == 2
    assert world.parameter() == SEED_MODEL
    assert world.status_of(V1) == "failed"
    # ECR cannot untag without deleting: `live` stays on the failed image until the next move.
    assert world.tags() == {"live": world.digests[V1]}
    # The next promotion starts from the bootstrap version again and moves the tag.
    promotion = start_promotion(world, V2, D2, current="1", target="3")
    world.verify()
    assert promotion.previous_model_version is None
    assert world.tags() == {"live": world.digests[V2]}
    live = world.registry.live()
    assert live is not None
    assert (live.model_version, live.revision) == (V2, 3)


@pytest.mark.fault
def test_events_for_other_applications_or_states_are_ignored(seeded: PromotionWorld) -> None:
    world = seeded
    for event, reason in (
        (
            state_change(D1, "SUCCESS", application="someone-else"),
            f"deployment of someone-else/{GROUP}, not of {APPLICATION}/{GROUP}",
        ),
        (state_change(D1, "START"), "state START is not an end"),
    ):
        settlement = settle_deployment(event, world.services)
        assert (settlement.action, settlement.reason) == ("ignored", reason)
    assert world.calls == []
    with pytest.raises(EventError, match="not a CodeDeploy deployment state change"):
        settle_deployment(load_sample("ecr_image_push"), world.services)


def test_an_unrecorded_deployment_is_ours_only_by_its_description(seeded: PromotionWorld) -> None:
    world = seeded
    world.expect_get_deployment(D3, "Succeeded", description="rollback of d-1PROMOTE1")
    settlement = settle_deployment(state_change(D3, "SUCCESS"), world.services)
    assert settlement.action == "ignored"
    world.expect_get_deployment(D3, "Failed", description=description("promoted", V2, "a", "b"))
    with pytest.raises(DeploymentNotRecordedError, match=f"deployment {D3} was started by"):
        settle_deployment(state_change(D3, "FAILURE"), world.services)
    world.verify()


# status


def test_status_reports_pointers_models_and_the_newest_promotions(
    seeded: PromotionWorld,
) -> None:
    world = seeded
    world.add_model(V3, "v3", status="rejected", accuracy=0.5)
    start_promotion(world, V2, D1, current="2", target="3")
    succeed(world, D1)
    report = status(world.registry, events=2)
    assert report.live is not None
    assert report.rollback is not None
    assert (report.live.model_version, report.rollback.model_version) == (V2, V1)
    assert report.deployment is not None
    assert (report.deployment.deployment_id, report.deployment.status) == (D1, "succeeded")
    assert [(m.model_version, m.status) for m in report.models] == [
        (V3, "rejected"),
        (V2, "live"),
        (V1, "retired"),
    ]
    assert [e.type for e in report.promotions] == ["deployment-succeeded", "promoted"]


@pytest.mark.fault
def test_a_failed_deployment_points_latest_back_at_the_served_image(
    seeded: PromotionWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloudFormation publishes its versions from $LATEST (AWS::Lambda::Version, https://docs.
    aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-version.html,
    publishes the function's current code), so $LATEST left on a failed model would be
    published by the next configuration-only deploy: the watcher points it back at the image
    the alias serves again.
    """
    world = seeded
    start_promotion(world, V2, D1, current="2", target="3")
    lambda_client = world.services.lambda_client
    assert lambda_client.get_function(FunctionName=FUNCTION)["Code"]["ImageUri"] == world.uri(V2)
    # moto answers every qualified GetFunction with $LATEST's image; Lambda keeps each
    # version's own. Versions 2 and 3 run V1 and V2 (seed_live and the promotion published them).
    images = {"2": world.uri(V1), "3": world.uri(V2)}
    real = lambda_client.get_function

    def get_function(**request: Any) -> Any:
        if "Qualifier" in request:
            return {"Code": {"ImageUri": images[request["Qualifier"]]}}
        return real(**request)

    monkeypatch.setattr(lambda_client, "get_function", get_function)
    world.expect_get_deployment(D1, "Failed", error=ALARM)
    world.expect_invalidation(D1)
    settle_deployment(state_change(D1, "FAILURE"), world.services)
    world.verify()
    assert lambda_client.get_function(FunctionName=FUNCTION)["Code"]["ImageUri"] == world.uri(V1)


def test_a_rollback_is_not_stopped_by_the_guard_alarms(seeded: PromotionWorld) -> None:
    """CodeDeploy API Reference, CreateDeployment (https://docs.aws.amazon.com/codedeploy/
    latest/APIReference/API_CreateDeployment.html), overrideAlarmConfiguration: to deploy a
    known-good revision while the group's alarms are in ALARM, turn alarm polling off for that
    deployment (which needs codedeploy:UpdateDeploymentGroup); else the alarm that called for
    the rollback stops it and CodeDeploy reverts it.
    """
    world = seeded
    start_promotion(world, V2, D1, current="2", target="3")
    succeed(world, D1)
    world.calls.clear()
    world.expect_deployment(
        D2,
        current="3",
        target="4",
        description=description("rolled-back", V1, "bob", "5xx"),
        config=ALL_AT_ONCE,
        rollback=True,
    )
    rollback(actor="bob", reason="5xx", services=world.services)
    world.verify()
    [(_, request)] = world.calls_to("CreateDeployment")
    assert request["overrideAlarmConfiguration"] == {"enabled": False, "alarms": []}
    assert request["autoRollbackConfiguration"] == {"enabled": False}


def test_every_call_promotion_and_settlement_make_is_granted(
    seeded: PromotionWorld, templates: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The promoter's and the watcher's roles allow every call their code makes (IAM action
    = service prefix + operation name, Service Authorization Reference); a missing grant is an
    AccessDenied in AWS that moto and stubs never raise. Actions only: which resources each
    statement names is held by the template tests and tests/infra/iam_allowlist.py."""
    world = seeded
    start_promotion(world, V2, D1, current="2", target="3")
    promoter = iam_actions(world.calls)
    world.calls.clear()
    # moto answers a qualified GetFunction with $LATEST's image (see the test above); the
    # served version 2 runs V1's, so the watcher must point $LATEST back at it.
    lambda_client = world.services.lambda_client
    real = lambda_client.get_function

    def get_function(**request: Any) -> Any:
        if "Qualifier" not in request:
            return real(**request)
        world.calls.append(("GetFunction", request))
        return {"Code": {"ImageUri": world.uri(V1)}}

    monkeypatch.setattr(lambda_client, "get_function", get_function)
    world.expect_get_deployment(D1, "Failed", error=ALARM)
    world.expect_invalidation(D1)
    settle_deployment(state_change(D1, "FAILURE"), world.services)
    watcher = iam_actions(world.calls)
    assert {"lambda:UpdateFunctionCode", "codedeploy:CreateDeployment"} <= promoter
    assert {"lambda:UpdateFunctionCode", "cloudfront:CreateInvalidation"} <= watcher
    api = templates["api"]
    assert promoter - granted_actions(api, "PromotionPromoterRole") == set()
    assert watcher - granted_actions(api, "PromotionWatcherRole") == set()
