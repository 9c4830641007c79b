"""Where operator commands find the deployed app: the flag, else the environment, else cdk.json."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from cdk_app.config import AppConfig, ConfigError
from training.aws import SettingsError
from training.cli import settings
from training.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = AppConfig.from_cdk_json()  # what `cdk synth` builds the stacks from


def resolved(argv: list[str], environ: dict[str, str]) -> argparse.Namespace:
    """The parsed arguments of `argv` once resolve() has filled the settings in."""
    args = build_parser(argv[:1]).parse_args(argv)
    settings.resolve(args, environ)
    return args


def test_without_flag_or_variable_cdk_json_decides() -> None:
    """The CLI talks to the stacks `cdk deploy` made: named from cdk.json's project and stage."""
    args = resolved(["retrain", "--dataset-version", "v2"], {})
    assert (args.stack_prefix, args.region, args.dataset_name) == (
        CONFIG.stack_prefix,
        CONFIG.region,
        CONFIG.dataset_name,
    )


def test_a_variable_beats_cdk_json_and_a_flag_beats_both() -> None:
    environ = {"STACK_PREFIX": "iris-ml-prod", "DATASET_NAME": "flowers"}
    args = resolved(["upload", "--dataset", "x.csv", "--dataset-version", "v2"], environ)
    assert (args.stack_prefix, args.dataset_name) == ("iris-ml-prod", "flowers")
    argv = ["upload", "--dataset", "x.csv", "--dataset-version", "v2", "--stack-prefix", "a-b"]
    args = resolved([*argv, "--dataset-name", "petals", "--region", "us-east-2"], environ)
    assert (args.stack_prefix, args.dataset_name, args.region) == ("a-b", "petals", "us-east-2")


@pytest.mark.parametrize(
    ("environ", "region"),
    [
        ({"AWS_DEFAULT_REGION": "eu-north-1"}, "eu-north-1"),
        ({"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-north-1"}, "us-west-2"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "eu-north-1"}, "eu-north-1"),
    ],
)
def test_the_region_variables_in_the_sdks_order(environ: dict[str, str], region: str) -> None:
    """AWS_REGION wins over AWS_DEFAULT_REGION, as in the AWS SDKs and tools reference guide
    (docs.aws.amazon.com/sdkref/latest/guide/feature-region.html); an empty one is unset."""
    assert resolved(["status"], environ).region == region


def test_local_commands_are_not_touched() -> None:
    """train's --dataset-name defaults to the path layout, never to cdk.json's dataset."""
    args = resolved(["train", "--out", "m"], {"DATASET_NAME": "flowers"})
    assert args.dataset_name is None


def test_a_bad_variable_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SettingsError, match="DATASET_NAME='no/slash' is not a valid dataset name"):
        resolved(["retrain", "--dataset-version", "v2"], {"DATASET_NAME": "no/slash"})


def test_an_unreadable_cdk_json_exits_2_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(cls: type[AppConfig]) -> AppConfig:
        raise ConfigError("cannot read /repo/cdk.json: No such file or directory")

    monkeypatch.setattr(AppConfig, "from_cdk_json", classmethod(broken))
    for name in ("STACK_PREFIX", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert main(["status"]) == 2
    assert capsys.readouterr().err == (
        "cdk.json: cannot read /repo/cdk.json: No such file or directory\n"
    )


def test_reading_cdk_json_needs_no_cdk() -> None:
    """The CLI reads cdk.json through cdk_app.config, which must not load aws-cdk-lib (or jsii's
    Node process): `make run`'s environment has neither."""
    probe = "import sys, cdk_app.config; sys.stdout.write(str('aws_cdk' in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout == "False"
