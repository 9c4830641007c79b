"""`python -m training status|promote|rollback` against deployed stacks' outputs (moto)."""

from __future__ import annotations

import pytest
from botocore.stub import ANY

from tests.training.conftest import REGION
from tests.training.fakes import (
    APPLICATION,
    DISTRIBUTION,
    FUNCTION,
    GROUP,
    LIVE_PARAMETER,
    REPOSITORY,
    STACK_OUTPUTS,
    TABLE,
    V1,
    V2,
    V3,
    PromotionWorld,
    deploy_outputs,
)
from training.cli.main import main
from training.control.promotion_services import ALL_AT_ONCE, PromotionServices, PromotionSettings

CALLER = "arn:aws:sts::123456789012:user/moto"  # moto's STS caller identity
D1, D2 = "d-1PROMOTE1", "d-2PROMOTE2"


@pytest.fixture
def deployed(world: PromotionWorld, monkeypatch: pytest.MonkeyPatch) -> PromotionWorld:
    """The stacks' outputs on moto; connecting hands out the world's (stubbed) clients."""
    deploy_outputs(STACK_OUTPUTS)
    world.add_model(V1, "v1", accuracy=0.9667)
    world.add_model(V2, "v2", accuracy=0.98)
    world.add_model(V3, "v3", status="rejected", accuracy=0.7)
    world.seed_live(V1)

    def connect(settings: PromotionSettings, *, actor: str, region: str) -> PromotionServices:
        assert region == REGION  # the CLI's resolved --region reaches every client
        assert settings == PromotionSettings(
            registry_table=TABLE,
            function_name=FUNCTION,
            alias_name="live",
            live_model_parameter=LIVE_PARAMETER,
            codedeploy_application=APPLICATION,
            deployment_group=GROUP,
            distribution_id=DISTRIBUTION,
            repository_name=REPOSITORY,
        )
        return world.connected(settings, actor=actor)

    # Called on the class, a plain function stands in for the classmethod.
    monkeypatch.setattr(PromotionServices, "connect", connect)
    return world


def expect_promotion(
    world: PromotionWorld,
    deployment_id: str,
    *,
    model: str,
    reason: str,
    current: str,
    target: str,
    config: str | None = None,
    type_: str = "promoted",
    rollback: bool = False,
) -> None:
    world.expect_deployment(
        deployment_id,
        current=current,
        target=target,
        description=f"model promotion: {type_} {model} by {CALLER}: {reason}",
        config=config,
        rollback=rollback,
    )


def test_promote_then_status(deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]) -> None:
    world = deployed
    expect_promotion(world, D1, model=V2, reason="fresh data", current="2", target="3")
    assert main(["promote", "--model-version", V2, "--reason", "fresh data"]) == 0
    world.verify()
    assert capsys.readouterr().out == (
        f"promoting {V2}: CodeDeploy deployment {D1} shifts the live alias from Lambda version 2 "
        "to 3 (by the deployment group's canary)\n"
        f"rollback model: {V1}\n"
        "CodeDeploy moves the alias back by itself if a guard alarm fires; follow it with "
        "`python -m training status`\n"
    )
    event = world.registry.promotion_events(1)[0]
    assert (event.type, event.actor, event.reason) == ("promoted", CALLER, "fresh data")

    world.clock.advance(seconds=1)
    assert main(["status", "--events", "2"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(
        f"live:     {V2}  v2-{V2}  accuracy 0.9800  revision 2, 2026-11-27T14:05:05Z by {CALLER}"
    )
    assert lines[0].endswith(": fresh data")
    assert lines[1] == (
        f"          deployment {D1} in-progress (promoted by {CALLER}; Lambda version 2 -> 3)"
    )
    assert lines[2].startswith(f"rollback: {V1}  v1-{V1}  accuracy 0.9667  revision 1")
    assert lines[4] == "models (3, newest first):"
    assert lines[5].split() == [
        "MODEL",
        "STATUS",
        "ACCURACY",
        "DATASET",
        "IMAGE",
        "TAG",
        "CREATED",
        "REASON",
    ]
    assert [line.split()[:3] for line in lines[6:9]] == [
        [V3, "rejected", "0.7000"],
        [V2, "live", "0.9800"],
        [V1, "retired", "0.9667"],
    ]
    assert lines[10] == "promotions (newest 2):"
    assert lines[11].split() == [
        "TIME",
        "EVENT",
        "MODEL",
        "LIVE",
        "MOVED",
        "DEPLOYMENT",
        "BY",
        "REASON",
    ]
    promoted = lines[12].split()
    assert promoted[1:8] == ["promoted", V2, V1, "->", V2, D1, CALLER]
    assert lines[12].endswith("fresh data")
    assert lines[13].split()[1:6] == ["promoted", V1, "none", "->", V1]  # the seed (set_live)


def test_status_before_any_promotion(
    world: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_outputs(STACK_OUTPUTS)
    assert main(["status"]) == 0
    assert capsys.readouterr().out == (
        "live:     none (the API serves the image the stack was deployed with)\n"
        "rollback: none\n"
        "\n"
        "models (0, newest first):\n"
        "  (none)\n"
        "\n"
        "promotions (newest 0):\n"
        "  (none)\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "--model-version", V3], f"refused: model {V3} is rejected and cannot go live"),
        (["promote", "--model-version", V1], f"refused: model {V1} is already live"),
        (
            ["promote", "--model-version", "ffffffffffff"],
            "refused: model ffffffffffff is not in the registry",
        ),
        (["rollback"], "refused: no rollback model is recorded"),
    ],
)
def test_refusals_exit_8(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 8
    assert capsys.readouterr().err.startswith(message)
    assert deployed.calls == []


def test_rollback_returns_all_at_once(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    world = deployed
    expect_promotion(world, D1, model=V2, reason="fresh data", current="2", target="3")
    assert main(["promote", "--model-version", V2, "--reason", "fresh data"]) == 0
    capsys.readouterr()
    # The canary succeeded (CodeDeploy moved the alias) but its event has not been settled:
    # rollback settles it first, then returns to v1.
    world.services.lambda_client.update_alias(
        FunctionName=FUNCTION, Name="live", FunctionVersion="3"
    )
    world.clock.advance(seconds=1)
    world.expect_get_deployment(D1, "Succeeded")
    expect_promotion(
        world,
        D2,
        model=V1,
        reason="manual rollback",
        current="3",
        target="4",
        config=ALL_AT_ONCE,
        rollback=True,
        type_="rolled-back",
    )
    assert main(["rollback"]) == 0
    world.verify()
    assert capsys.readouterr().out.startswith(
        f"rolling back to {V1}: CodeDeploy deployment {D2} shifts the live alias from Lambda "
        "version 3 to 4 (all at once)\n"
        f"rollback model: {V2}\n"
    )
    # Both in the same second (the test clock stands still), so in either order.
    assert sorted(e.type for e in world.registry.promotion_events(2)) == [
        "deployment-succeeded",
        "rolled-back",
    ]
    assert world.calls_to("CreateInvalidation") == []


def test_rollback_to_a_named_model(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    world = deployed
    world.add_model("444444444444", "v4")
    expect_promotion(
        world,
        D1,
        model="444444444444",
        reason="v4 was fine",
        current="2",
        target="3",
        config=ALL_AT_ONCE,
        rollback=True,
        type_="rolled-back",
    )
    assert main(["rollback", "--model-version", "444444444444", "--reason", "v4 was fine"]) == 0
    world.verify()
    live = world.registry.live()
    assert live is not None
    assert (live.model_version, live.updated_by) == ("444444444444", CALLER)


def test_an_aws_error_exits_1_and_changes_nothing(
    deployed: PromotionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    world = deployed
    world.codedeploy.add_client_error(
        "create_deployment",
        service_error_code="DeploymentLimitExceededException",
        service_message="The Deployment Group already has an active Deployment",
        expected_params={
            "applicationName": APPLICATION,
            "deploymentGroupName": GROUP,
            "revision": ANY,
            "description": ANY,
        },
    )
    assert main(["promote", "--model-version", V2]) == 1
    assert capsys.readouterr().err == (
        "failed: DeploymentLimitExceededException: The Deployment Group already has an active "
        "Deployment\n"
    )
    world.verify()
    assert world.status_of(V2) == "candidate"
    assert world.registry.live().model_version == V1  # type: ignore[union-attr]


def test_without_deployed_stacks(world: PromotionWorld, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["promote", "--model-version", V2]) == 1
    assert "failed: cannot read stack iris-ml-dev-api" in capsys.readouterr().err
    assert main(["status"]) == 1
    assert "cannot read the registry: cannot read stack iris-ml-dev-pipeline" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote"], "the following arguments are required: --model-version"),
        (["promote", "--model-version", "v2"], "'v2' is not a model version"),
        (["rollback", "--model-version", "ABCDEFABCDEF"], "is not a model version"),
        (["status", "--events", "0"], "must be at least 1"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("status", ["--stack-prefix", "--region", "--events"]),
        ("promote", ["--model-version", "--reason", "--wait", "--stack-prefix", "--region"]),
        ("rollback", ["--model-version", "--reason", "--wait", "--stack-prefix", "--region"]),
    ],
)
def test_help_explains_every_option_and_exit_code(
    command: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m training {command}")
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  --")]
    assert listed == options
    codes = ["0", "1", "2"] + (["8", "9"] if command != "status" else [])
    assert [
        line.split()[0]
        for line in out.split("exit codes:\n")[1].splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ] == codes


def test_top_level_help_lists_the_promotion_commands_and_exit_8(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("status", "promote", "rollback"):
        assert f"    {command}  " in out
    assert "\n  8  promote/rollback: refused" in out
