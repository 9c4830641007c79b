"""`make deploy`/`make destroy`: bootstrap only where missing; destroy only when confirmed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import boto3
import pytest
from moto import mock_aws

from scripts import deploy as deploy_script

TEMPLATE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}})


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.Session()


class Recorder:
    """A runner that records the commands and answers with a fixed status."""

    def __init__(self, status: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.status = status

    def __call__(self, argv: Sequence[str]) -> int:
        self.calls.append(list(argv))
        return self.status


def bootstrap(session: boto3.Session, region: str) -> None:
    session.client("cloudformation", region_name=region).create_stack(
        StackName="CDKToolkit", TemplateBody=TEMPLATE
    )


def test_first_deploy_bootstraps_both_regions_then_deploys(session: boto3.Session) -> None:
    runner = Recorder()
    assert deploy_script.deploy(session, runner, []) == 0
    cdk = ["npx", "--no-install", "cdk"]
    assert runner.calls == [
        [*cdk, "bootstrap", "aws://123456789012/eu-west-1"],
        [*cdk, "bootstrap", "aws://123456789012/us-east-1"],
        [*cdk, "deploy", "--all", "--require-approval", "broadening"],
    ]


def test_bootstrapped_regions_are_not_bootstrapped_again(session: boto3.Session) -> None:
    bootstrap(session, "eu-west-1")
    bootstrap(session, "us-east-1")
    runner = Recorder()
    assert deploy_script.deploy(session, runner, ["--hotswap-fallback"]) == 0
    assert runner.calls == [
        [
            "npx",
            "--no-install",
            "cdk",
            "deploy",
            "--all",
            "--require-approval",
            "broadening",
            "--hotswap-fallback",
        ]
    ]


def test_a_failed_bootstrap_stops_the_deploy(session: boto3.Session) -> None:
    runner = Recorder(status=1)
    assert deploy_script.deploy(session, runner, []) == 1
    assert len(runner.calls) == 1


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
