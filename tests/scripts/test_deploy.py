"""`make deploy`/`make destroy`: preflight first, bootstrap where it says; destroy if confirmed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
import pytest
from moto import mock_aws

from scripts import deploy as deploy_script
from scripts.preflight import Report
from scripts.preflight_checks import Finding, Status
from tests.training.fakes import deploy_outputs
from training.registry import Registry, create_table

CDK = ["npx", "--no-install", "cdk"]


def preflight(*bootstrap: str, blocker: bool = False) -> deploy_script.Preflight:
    """A preflight that answers with a fixed report and records the arguments it saw."""
    status = Status.BLOCKER if blocker else Status.OK
    report = Report((Finding(status, "credentials", "checked"),), "123456789012", bootstrap)

    def checks(_session: boto3.Session, extra: Sequence[str]) -> Report:
        seen.append(list(extra))
        return report

    seen: list[list[str]] = []
    checks.seen = seen  # type: ignore[attr-defined]
    return checks


def no_live(_session: boto3.Session, _extra: Sequence[str]) -> str:
    """The live-model step of a deploy whose registry has no live model yet."""
    return "live model: none yet"


class Recorder:
    """A runner that records the commands and answers with a fixed status."""

    def __init__(self, status: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.status = status

    def __call__(self, argv: Sequence[str]) -> int:
        self.calls.append(list(argv))
        return self.status


def test_first_deploy_bootstraps_both_regions_then_deploys() -> None:
    runner = Recorder()
    checks = preflight("eu-west-1", "us-east-1")
    assert (
        deploy_script.deploy(
            boto3.Session(), runner, [], checks=checks, fetch=no_live, after=no_live
        )
        == 0
    )
    assert runner.calls == [
        [*CDK, "bootstrap", "aws://123456789012/eu-west-1"],
        [*CDK, "bootstrap", "aws://123456789012/us-east-1"],
        [*CDK, "deploy", "--all", "--require-approval", "broadening"],
    ]


def test_bootstrapped_regions_are_not_bootstrapped_again() -> None:
    runner = Recorder()
    checks = preflight()
    extra = ["-c", "reserved_concurrency=0", "--hotswap-fallback"]
    assert (
        deploy_script.deploy(
            boto3.Session(), runner, extra, checks=checks, fetch=no_live, after=no_live
        )
        == 0
    )
    assert runner.calls == [[*CDK, "deploy", "--all", "--require-approval", "broadening", *extra]]
    assert checks.seen == [extra]  # type: ignore[attr-defined]  # the config cdk deploy will use


def test_a_failed_bootstrap_stops_the_deploy() -> None:
    runner = Recorder(status=1)
    assert (
        deploy_script.deploy(
            boto3.Session(), runner, [], checks=preflight("eu-west-1"), fetch=no_live, after=no_live
        )
        == 1
    )
    assert len(runner.calls) == 1


def test_a_preflight_blocker_stops_the_deploy_before_any_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runner = Recorder()
    assert (
        deploy_script.deploy(
            boto3.Session(),
            runner,
            [],
            checks=preflight(blocker=True),
            fetch=no_live,
            after=no_live,
        )
        == 1
    )
    assert runner.calls == []
    out, err = capsys.readouterr()
    assert "BLOCKER  credentials" in out
    assert "nothing was deployed" in err


def test_destroy_needs_the_stack_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    runner = Recorder()
    assert deploy_script.destroy(runner, None, lambda _: "yes") == 3
    assert runner.calls == []
    assert "nothing deleted" in capsys.readouterr().err


def test_destroy_deletes_and_says_what_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    runner = Recorder()
    assert deploy_script.destroy(runner, "iris-ml-dev", input) == 0
    assert runner.calls == [["npx", "--no-install", "cdk", "destroy", "--all", "--force"]]
    out = capsys.readouterr().out
    assert "data-lake" in out
    assert "registry table" in out


@mock_aws
def test_a_first_deploy_keeps_the_local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a pipeline stack there is no registry yet: lambda_image/model ships as it is."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    said = deploy_script.live_model(boto3.Session(region_name="eu-west-1"), [])
    assert said.startswith("live model: none yet (iris-ml-dev-pipeline is not deployed)")


def test_the_live_model_is_fetched_before_anything_is_deployed() -> None:
    """The api stack refuses a model that is not live, so the fetch must come first."""
    order: list[str] = []

    def fetch(_session: boto3.Session, _extra: Sequence[str]) -> str:
        order.append("fetch")
        return "live model: 111111111111"

    def runner(argv: Sequence[str]) -> int:
        order.append(argv[3])
        return 0

    def first(_session: boto3.Session, _extra: Sequence[str]) -> str:
        order.append("first model")
        return "first model: run ..."

    checks = preflight("eu-west-1")
    assert (
        deploy_script.deploy(boto3.Session(), runner, [], checks=checks, fetch=fetch, after=first)
        == 0
    )
    assert order == ["fetch", "bootstrap", "deploy", "first model"]


@mock_aws
def test_a_first_deploy_trains_the_seed_so_a_registered_model_goes_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The seed lands before the pipeline's S3 rule exists, so nothing else would train it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    session = boto3.Session(region_name="eu-west-1")
    create_table(session.client("dynamodb"), "registry")
    deploy_outputs({"iris-ml-dev-pipeline": {"RegistryTableName": "registry"}})
    asked: list[dict[str, Any]] = []

    def request_retrain(**request: Any) -> dict[str, Any]:
        asked.append(request)
        return {"run_id": "20261201T000000Z-00000001", "instance_id": "i-0abc", "market": "spot"}

    monkeypatch.setattr(deploy_script, "request_retrain", request_retrain)
    said = deploy_script.first_model(session, [])
    assert said.startswith("first model: run 20261201T000000Z-00000001 on i-0abc")
    [request] = asked
    assert (request["name"], request["version"], request["stack_prefix"]) == (
        "iris",
        "v1",
        "iris-ml-dev",
    )
    # Once the registry has a run, a later deploy asks for nothing.
    Registry("registry", dynamodb=session.resource("dynamodb"), actor="t").start_run(
        "20261201T000000Z-00000001",
        dataset_uri="s3://data/datasets/iris/v1/data.csv",
        dataset_name="iris",
        dataset_version="v1",
        trigger="manual",
    )
    assert deploy_script.first_model(session, []) == (
        "first model: not needed (the registry has runs or a live model)"
    )
    assert len(asked) == 1
