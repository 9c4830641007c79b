"""`python -m training promote|rollback --wait`: following the CodeDeploy deployment to its end.

CodeDeploy is stubbed (botocore Stubber): each GetDeployment answer the waiter polls is queued
with `world.expect_get_deployment`, and `world.verify()` checks every one was asked for.
"""

from __future__ import annotations

import functools

import boto3
import pytest

from tests.training.conftest import REGION
from tests.training.fakes import STACK_OUTPUTS, V1, V2, PromotionWorld, deploy_outputs
from training.cli import canary, promotion
from training.cli.main import main
from training.control.promotion_services import ALL_AT_ONCE, PromotionServices, PromotionSettings

CALLER = "arn:aws:sts::123456789012:user/moto"  # moto's STS caller identity
D1 = "d-1PROMOTE1"
V4 = "444444444444"
ALARM = {
    "code": "ALARM_ACTIVE",
    "message": "One or more alarms have been activated according to the Amazon CloudWatch "
    "metrics you selected: iris-ml-dev-api-FunctionErrors",
}


@pytest.fixture
def deployed(world: PromotionWorld, monkeypatch: pytest.MonkeyPatch) -> PromotionWorld:
    """v1 live, v2 a candidate, on the stacks' outputs; the CLI gets the world's stubbed clients.

    The waiter polls without sleeping (Delay 0) and gives up after 3 polls.
    """
    deploy_outputs(STACK_OUTPUTS)
    world.add_model(V1, "v1")
    world.add_model(V2, "v2")
    world.seed_live(V1)

    def connect(settings: PromotionSettings, *, actor: str, region: str) -> PromotionServices:
        assert region == REGION  # the CLI's resolved --region reaches every client
        return world.connected(settings, actor=actor)

    # Called on the class, a plain function stands in for the classmethod.
    monkeypatch.setattr(PromotionServices, "connect", connect)
    monkeypatch.setattr(
        promotion,
        "wait_for_deployment",
        functools.partial(canary.wait_for_deployment, delay_seconds=0, max_attempts=3),
    )
    return world


def expect_promote(world: PromotionWorld) -> None:
    """CodeDeploy accepts the promotion of v2 (Lambda version 2 -> 3) as deployment D1."""
    world.expect_deployment(
        D1,
        current="2",
        target="3",
        description=f"model promotion: promoted {V2} by {CALLER}: manual promotion",
    )


def expect_rollback_to_v4(world: PromotionWorld) -> None:
    """CodeDeploy accepts a rollback to v4 (Lambda version 2 -> 3, all at once) as D1."""
    world.add_model(V4, "v4")
    world.expect_deployment(
        D1,
        current="2",
        target="3",
        description=f"model promotion: rolled-back {V4} by {CALLER}: manual rollback",
        config=ALL_AT_ONCE,
        rollback=True,
    )


def test_promote_wait_succeeds_after_the_canary(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """botocore's CodeDeploy waiter DeploymentSuccessful polls GetDeployment every 15 s, up to
    120 times, until deploymentInfo.status is Succeeded (botocore
    data/codedeploy/2014-10-06/waiters-2.json; boto3 docs, CodeDeploy.Waiter.DeploymentSuccessful);
    InProgress, one of GetDeployment's other statuses, keeps it polling.
    """
    world = deployed
    expect_promote(world)
    world.expect_get_deployment(D1, "InProgress")
    world.expect_get_deployment(D1, "Succeeded")
    assert main(["promote", "--model-version", V2, "--wait"]) == 0
    world.verify()
    out = capsys.readouterr().out
    assert out.startswith(f"promoting {V2}: CodeDeploy deployment {D1} shifts the live alias")
    assert out.endswith(
        f"waiting for CodeDeploy to end deployment {D1} ...\n"
        f"deployment {D1} succeeded: the live alias serves Lambda version 3 ({V2})\n"
    )
    assert len(world.calls_to("GetDeployment")) == 2


@pytest.mark.fault
def test_promote_wait_exits_9_when_the_canary_fails(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """The waiter's Failed acceptor is a failure state, so botocore raises WaiterError carrying
    the last GetDeployment answer (botocore waiters-2.json and waiter.py). deploymentInfo's
    errorInformation holds a code and a message (CodeDeploy API Reference, ErrorInformation,
    https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_ErrorInformation.html), and
    ALARM_ACTIVE is one of its ErrorCode values (botocore codedeploy service-2.json).
    """
    world = deployed
    expect_promote(world)
    world.expect_get_deployment(D1, "InProgress")
    world.expect_get_deployment(
        D1, "Failed", error=ALARM, rollback_message="Automatic rollback triggered by alarm"
    )
    assert main(["promote", "--model-version", V2, "--wait"]) == 9
    world.verify()
    captured = capsys.readouterr()
    assert "succeeded" not in captured.out
    assert captured.err == (
        f"deployment {D1} failed: ALARM_ACTIVE: {ALARM['message']}; "
        "rollback: Automatic rollback triggered by alarm\n"
        "CodeDeploy moves the alias back to Lambda version 2; the watcher puts the registry "
        "back (follow it with `python -m training status`)\n"
    )


@pytest.mark.fault
def test_promote_wait_exits_9_when_the_deployment_is_stopped(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stopped is the waiter's other failure acceptor (botocore codedeploy waiters-2.json); a
    stopped deployment without errorInformation still ends the wait as a failure.
    """
    world = deployed
    expect_promote(world)
    world.expect_get_deployment(D1, "Stopped")
    assert main(["promote", "--model-version", V2, "--wait"]) == 9
    world.verify()
    assert capsys.readouterr().err.startswith(
        f"deployment {D1} was stopped: CodeDeploy gave no reason\n"
    )


@pytest.mark.fault
def test_promote_wait_timeout_exits_1_and_is_not_success(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """When MaxAttempts polls pass without Succeeded, Failed or Stopped, botocore raises
    WaiterError "Max attempts exceeded" (botocore waiter.py; WaiterConfig MaxAttempts, boto3 docs
    CodeDeploy.Waiter.DeploymentSuccessful): the deployment may still be running.
    """
    world = deployed
    expect_promote(world)
    for _ in range(3):
        world.expect_get_deployment(D1, "InProgress")
    assert main(["promote", "--model-version", V2, "--wait"]) == 1
    world.verify()
    captured = capsys.readouterr()
    assert "succeeded" not in captured.out + captured.err
    assert captured.err == (
        f"stopped waiting for deployment {D1}: still InProgress after 3 checks\n"
        "it may still be running; follow it with `python -m training status`\n"
    )


@pytest.mark.fault
def test_promote_wait_aws_error_exits_1(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """The waiter turns a GetDeployment error no acceptor matches into WaiterError at once, the
    error response as last_response (botocore waiter.py, NormalizedOperationMethod).
    """
    world = deployed
    expect_promote(world)
    world.codedeploy.add_client_error(
        "get_deployment",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: codedeploy:GetDeployment",
        expected_params={"deploymentId": D1},
    )
    assert main(["promote", "--model-version", V2, "--wait"]) == 1
    world.verify()
    assert capsys.readouterr().err == (
        f"stopped waiting for deployment {D1}: AccessDeniedException: not authorized to "
        "perform: codedeploy:GetDeployment\n"
        "it may still be running; follow it with `python -m training status`\n"
    )


def test_rollback_wait_succeeds(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollback deploys all at once (CodeDeployDefault.LambdaAllAtOnce), and the same
    DeploymentSuccessful waiter ends on Succeeded (botocore codedeploy waiters-2.json).
    """
    world = deployed
    expect_rollback_to_v4(world)
    world.expect_get_deployment(D1, "Succeeded")
    assert main(["rollback", "--model-version", V4, "--wait"]) == 0
    world.verify()
    assert capsys.readouterr().out.endswith(
        f"deployment {D1} succeeded: the live alias serves Lambda version 3 ({V4})\n"
    )


@pytest.mark.fault
def test_rollback_wait_failure_says_nothing_moves_it_back(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollback's CreateDeployment turns automatic rollback off (autoRollbackConfiguration
    enabled false, CodeDeploy API Reference CreateDeployment), so a failed rollback is not
    reverted: the message must not claim it is. Failed ends the waiter (waiters-2.json).
    """
    world = deployed
    expect_rollback_to_v4(world)
    world.expect_get_deployment(
        D1, "Failed", error={"code": "INTERNAL_ERROR", "message": "internal error"}
    )
    assert main(["rollback", "--model-version", V4, "--wait"]) == 9
    world.verify()
    err = capsys.readouterr().err
    assert err.startswith(f"deployment {D1} failed: INTERNAL_ERROR: internal error\n")
    assert "automatic rollback is off for a rollback" in err
    assert "moves the alias back" not in err


def test_without_wait_nothing_is_polled(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --wait the command returns once the deployment started: no GetDeployment (the
    Stubber refuses any call it was not given an answer for).
    """
    world = deployed
    expect_promote(world)
    assert main(["promote", "--model-version", V2]) == 0
    world.verify()
    assert world.calls_to("GetDeployment") == []
    assert "waiting" not in capsys.readouterr().out


def test_waiter_defaults_are_botocores() -> None:
    """The CLI waits as botocore's DeploymentSuccessful does by default: 15 s between polls, 120
    polls (botocore data/codedeploy/2014-10-06/waiters-2.json).
    """
    client = boto3.client("codedeploy", region_name="eu-west-1")
    model = client.get_waiter("deployment_successful").config
    assert (model.delay, model.max_attempts) == (canary.DELAY_SECONDS, canary.MAX_ATTEMPTS)
    assert {acceptor.expected: acceptor.state for acceptor in model.acceptors} == {
        "Succeeded": "success",
        "Failed": "failure",
        "Stopped": "failure",
    }
