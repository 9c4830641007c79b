"""Release: a `cdk deploy`'s new serving version reaches `live` through the promotion canary."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

import training.control.release as release_module
from tests.training.fakes import (
    ACCOUNT,
    APPLICATION,
    BOOTSTRAP_IMAGE,
    FUNCTION,
    GROUP,
    REGISTRY_MODULES,
    SEED_MODEL,
    V1,
    PromotionWorld,
    appspec,
    granted_actions,
    iam_actions,
    load_sample,
    training_modules_imported,
)
from training.control.promotion_services import DeploymentInProgressError
from training.control.release import Release, ReleaseRefusedError, answer, release, run_release
from training.control.settlement import settle_deployment

# The image a later deploy built: the same model on a changed serving runtime.
NEW_ASSET = (
    f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets-"
    f"{ACCOUNT}-eu-west-1:9a8b7c6d5e4f"
)
D9 = "d-9RELEASE9"
REASON = "serving code or configuration changed by cdk deploy"


def cloudformation_publishes(world: PromotionWorld, image: str = NEW_ASSET) -> str:
    """What CloudFormation does for a changed function: update $LATEST, publish a version."""
    version = world.services.lambda_client.update_function_code(
        FunctionName=FUNCTION, ImageUri=image, Publish=True
    )["Version"]
    world.calls.clear()
    return str(version)


def deploy_release(world: PromotionWorld, target: str, *, image: str = NEW_ASSET) -> Release:
    """What the release custom resource does for a deploy that published `target`."""
    return release(
        target, model_version=SEED_MODEL, image_uri=image, reason=REASON, services=world.services
    )


def expect_release(world: PromotionWorld, *, current: str, target: str) -> None:
    world.codedeploy.add_response(
        "list_deployments",
        {"deployments": []},
        {
            "applicationName": APPLICATION,
            "deploymentGroupName": GROUP,
            "includeOnlyStatuses": ["Created", "Queued", "InProgress", "Baking", "Ready"],
        },
    )
    world.expect_deployment(
        D9,
        current=current,
        target=target,
        description=f"serving release: model {SEED_MODEL}, {REASON}",
    )


def test_a_first_deploy_has_nothing_to_shift(world: PromotionWorld) -> None:
    """Version 1 is what CloudFormation created the alias on: no deployment is started."""
    done = deploy_release(world, "1", image=BOOTSTRAP_IMAGE)
    world.verify()
    assert (done.target_version, done.previous_version, done.deployment_id) == ("1", "1", None)
    assert world.calls_to("CreateDeployment") == []


def test_a_new_version_is_shifted_to_through_the_canary(world: PromotionWorld) -> None:
    """From the version the alias serves (read from Lambda) to the new one, canary and guards."""
    target = cloudformation_publishes(world)
    expect_release(world, current="1", target=target)
    done = deploy_release(world, target)
    world.verify()
    assert (done.previous_version, done.deployment_id) == ("1", D9)
    assert world.appspec_of(0) == appspec(current="1", target=target)
    # The group's own canary: a release sets no deploymentConfigName.
    assert "deploymentConfigName" not in world.calls_to("CreateDeployment")[0][1]
    # The published version was waited for before traffic moved.
    assert ("GetFunctionConfiguration", {"FunctionName": FUNCTION, "Qualifier": target}) in (
        world.calls
    )
    [event] = world.registry.events(1)
    assert (event.type, event.model_version, event.reason) == ("released", SEED_MODEL, REASON)
    assert (event.detail or {})["deployment_id"] == D9
    # A release moves no registry pointer: the live model is unchanged.
    assert world.registry.live() is None


def test_a_deploy_that_carries_another_model_than_the_live_one_is_refused(
    world: PromotionWorld,
) -> None:
    world.add_model(V1, "v1")
    world.seed_live(V1)
    target = cloudformation_publishes(world)
    with pytest.raises(ReleaseRefusedError, match=f"registry's live model is {V1}"):
        deploy_release(world, target)
    world.verify()
    assert world.calls_to("CreateDeployment") == []


def test_a_version_published_from_a_promoted_latest_is_republished_with_the_deploys_image(
    world: PromotionWorld,
) -> None:
    """CloudFormation publishes $LATEST; after a promotion $LATEST may hold another image."""
    target = cloudformation_publishes(world, image=BOOTSTRAP_IMAGE + "-promoted")
    republished = str(int(target) + 1)
    expect_release(world, current="1", target=republished)
    done = deploy_release(world, target)
    world.verify()
    assert done.target_version == republished
    update = world.calls_to("UpdateFunctionCode")
    assert update == [
        ("UpdateFunctionCode", {"FunctionName": FUNCTION, "ImageUri": NEW_ASSET, "Publish": True})
    ]


def test_a_running_deployment_refuses_the_release(world: PromotionWorld) -> None:
    target = cloudformation_publishes(world)
    world.codedeploy.add_response("list_deployments", {"deployments": ["d-RUNNING1"]}, None)
    with pytest.raises(DeploymentInProgressError, match="d-RUNNING1 is still running"):
        deploy_release(world, target)
    world.verify()


def test_a_release_that_fails_its_canary_is_settled_without_moving_pointers(
    world: PromotionWorld,
) -> None:
    target = cloudformation_publishes(world)
    expect_release(world, current="1", target=target)
    deploy_release(world, target)
    world.clock.advance(seconds=1)
    world.expect_get_deployment(D9, "Failed", description=f"serving release: model {SEED_MODEL}")
    world.expect_invalidation(D9)
    event = load_sample("codedeploy_deployment_failure", deploymentId=D9, state="FAILURE")
    settlement = settle_deployment(event, world.services)
    world.verify()
    assert settlement.action == "release-failed"
    assert world.registry.events(1)[0].type == "release-failed"
    assert world.registry.live() is None
    assert world.parameter() == SEED_MODEL


# The custom resource protocol.


def cfn_event(request_type: str, **properties: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": "https://cloudformation-custom-resource-response.s3.amazonaws.com/x",
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/iris-ml-dev-api/1",
        "RequestId": "r-1",
        "LogicalResourceId": "ReleaseA3CECE7D",
        "ResourceProperties": {"ServiceToken": "arn", **properties},
    }


class Sent:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, url: str, body: bytes) -> None:
        self.bodies.append(json.loads(body))


def test_every_request_is_answered_even_when_the_release_fails() -> None:
    """The provider must PUT a response to the presigned ResponseURL, or the stack waits for
    the custom resource until it times out ("Custom resource response objects",
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html)."""
    sent = Sent()

    def broken(_: Mapping[str, Any]) -> Mapping[str, str]:
        raise RuntimeError("CodeDeploy is down")

    body = answer(cfn_event("Update", TargetVersion="2"), broken, send=sent)
    assert sent.bodies == [body]
    assert (body["Status"], body["Reason"]) == ("FAILED", "RuntimeError: CodeDeploy is down")
    assert body["PhysicalResourceId"] == "ReleaseA3CECE7D"
    assert answer(cfn_event("Delete"), broken, send=sent)["Status"] == "SUCCESS"


def test_bad_properties_fail_with_the_field_named(world: PromotionWorld) -> None:
    with pytest.raises(ValueError, match="TargetVersion must be a published version number"):
        run_release({"TargetVersion": "$LATEST"}, world.services)
    with pytest.raises(ValueError, match="ImageUri must name the image"):
        run_release({"TargetVersion": "1", "ModelVersion": SEED_MODEL}, world.services)


def test_every_call_a_release_makes_is_granted_to_the_releaser(
    world: PromotionWorld, templates: dict[str, Any]
) -> None:
    """Lambda, CodeDeploy: the IAM action of an API call is its operation name (Service
    Authorization Reference); the releaser's role must allow each call its handler makes
    (actions; the resources are held by the template tests and tests/infra/iam_allowlist.py)."""
    target = cloudformation_publishes(world, image=BOOTSTRAP_IMAGE + "-promoted")
    expect_release(world, current="1", target=str(int(target) + 1))
    deploy_release(world, target)
    made = iam_actions(world.calls)
    assert {"lambda:UpdateFunctionCode", "codedeploy:CreateDeployment"} <= made
    granted = granted_actions(templates["api"], "ReleaseReleaserRole")
    assert made - granted == set()


def test_the_release_handler_imports_only_the_standard_library_and_boto3() -> None:
    """The releaser ships as a zip Lambda with boto3 only: no numpy, no type stubs."""
    modules = training_modules_imported(
        "training.control.release",
        blocked=("numpy", "sklearn", "scipy", "mypy_boto3_lambda", "mypy_boto3_ecr"),
    )
    assert modules == [
        "training",
        "training.aws",
        "training.contract",
        "training.control",
        "training.control.promotion",
        "training.control.promotion_services",
        "training.control.release",
        "training.control.serving_image",
        "training.control.settlement",
        *REGISTRY_MODULES,
    ]


def test_a_release_answers_cloudformation_when_its_settings_are_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broken environment must still reach CloudFormation as FAILED, not hang the stack."""
    sent = Sent()
    monkeypatch.delenv("REGISTRY_TABLE", raising=False)
    monkeypatch.setattr(release_module, "send_response", sent)
    body = release_module.handler(cfn_event("Create", TargetVersion="1"), None)
    assert sent.bodies == [body]
    assert body["Status"] == "FAILED"
    assert "REGISTRY_TABLE" in body["Reason"]


def test_a_stack_rollback_that_cannot_release_does_not_fail_the_rollback(
    world: PromotionWorld,
) -> None:
    """An Update request carries OldResourceProperties ("Update request for CloudFormation
    custom resources", https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
    crpg-ref-requesttypes-update.html); a stack rollback updates the resource back to its
    previous properties, and a resource that cannot roll back leaves the stack in
    UPDATE_ROLLBACK_FAILED (API Reference, ContinueUpdateRollback). Versions only grow, so a
    lower TargetVersion marks the rollback, which must not fail on a running deployment."""
    target = cloudformation_publishes(world)
    world.codedeploy.add_response("list_deployments", {"deployments": ["d-FORWARD1"]}, None)
    properties = {"TargetVersion": "1", "ModelVersion": SEED_MODEL, "ImageUri": BOOTSTRAP_IMAGE}
    # moto keeps one image for every version; version 1 runs the bootstrap image in Lambda.
    world.services.lambda_client.update_function_code(
        FunctionName=FUNCTION, ImageUri=BOOTSTRAP_IMAGE
    )
    world.services.lambda_client.update_alias(
        FunctionName=FUNCTION, Name="live", FunctionVersion=target
    )
    data = run_release(properties, world.services, previous={"TargetVersion": target})
    world.verify()
    assert "d-FORWARD1 is still running" in data["Skipped"]
    # The same refusal on a forward deploy fails it, as it should.
    world.codedeploy.add_response("list_deployments", {"deployments": ["d-FORWARD1"]}, None)
    with pytest.raises(DeploymentInProgressError):
        run_release(properties, world.services, previous={"TargetVersion": "0"})
