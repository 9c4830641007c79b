"""The config: defaults, coercion of `-c` strings, and one clear error per broken rule."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from cdk_app.config import AppConfig, ConfigError, cdk_json_context, config_table
from tests.support import ROOT


def repeated_defaults(context: Mapping[str, Any]) -> list[str]:
    """Our keys in `context` whose value, once validated, is the dataclass's default."""
    config, defaults = AppConfig.from_context(context), AppConfig()
    return [
        field.name
        for field in dataclasses.fields(AppConfig)
        if field.name in context and getattr(config, field.name) == getattr(defaults, field.name)
    ]


def flags_at_their_default(context: Mapping[str, Any]) -> list[str]:
    """Boolean feature flags in `context` set to what aws-cdk-lib assumes when they are unset."""
    flags = cdk.FeatureFlags.of(cdk.App())  # no context: every flag at its default
    # Our keys are snake_case; a flag is `@package:name` (CDK's own non-flag keys are `aws:cdk:*`).
    # The two non-boolean ones (defaultCrossStackReferences, target-partitions) have no
    # boolean default to compare; both differ from it ("weak" vs "strong", a list vs none).
    return [
        key
        for key, value in context.items()
        if key.startswith("@") and isinstance(value, bool) and flags.is_enabled(key) == value
    ]


def test_cdk_json_repeats_no_config_default() -> None:
    """Each default is written once, in cdk_app/config.py: cdk.json holds only what differs."""
    repeated = repeated_defaults(cdk_json_context())
    assert not repeated, f"cdk.json repeats the default of {repeated}: delete those keys"


def test_a_repeated_default_is_found() -> None:
    # The same value spelled differently still repeats the default once validated.
    context = {"region": "eu-west-1", "min_accuracy": "0.9", "environment": "prod"}
    assert repeated_defaults(context) == ["region", "min_accuracy"]


def test_cdk_json_sets_no_feature_flag_to_its_default() -> None:
    """A flag left out of cdk.json takes aws-cdk-lib's default (AWS CDK v2 guide: featureflags),
    and the CLI only warns of an unset flag whose default is not the recommended value, so a
    flag set to its default is noise."""
    at_default = flags_at_their_default(cdk_json_context())
    assert not at_default, f"cdk.json sets {at_default} to aws-cdk-lib's default: delete them"


def test_a_feature_flag_at_its_default_is_found() -> None:
    context = {
        "@aws-cdk/aws-s3:keepNotificationInImportedBucket": False,  # the default
        "@aws-cdk/aws-iam:minimizePolicies": True,  # off by default
        "tracing": False,  # ours, not a flag
    }
    assert flags_at_their_default(context) == ["@aws-cdk/aws-s3:keepNotificationInImportedBucket"]


def test_committed_config_is_read_without_synthesizing() -> None:
    config = AppConfig.from_cdk_json()
    assert config == AppConfig.from_context(cdk_json_context())
    assert config.stack_prefix == "iris-ml-dev"


def test_from_cdk_json_applies_overrides_as_the_cli_does(tmp_path: Path) -> None:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text('{"app": "python3 app.py", "context": {"region": "us-east-2"}}')
    config = AppConfig.from_cdk_json({"environment": "prod"}, path=cdk_json)
    assert (config.region, config.stack_prefix) == ("us-east-2", "iris-ml-prod")
    assert AppConfig.from_cdk_json({"region": "eu-north-1"}, path=cdk_json).region == "eu-north-1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"context": {"region": }', "cdk.json is not valid JSON: Expecting value at line 1"),
        ('{"context": ["region"]}', "cdk.json: 'context' must be an object"),
        ("[]", "cdk.json: 'context' must be an object"),
    ],
)
def test_a_broken_cdk_json_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        AppConfig.from_cdk_json(path=cdk_json)


def test_a_missing_cdk_json_is_a_config_error(tmp_path: Path) -> None:
    """The operator CLI reads cdk.json outside `cdk synth`: a missing file is named, not a trace."""
    with pytest.raises(ConfigError, match=r"cannot read .*cdk\.json: No such file"):
        AppConfig.from_cdk_json(path=tmp_path / "cdk.json")


def test_cli_strings_are_coerced() -> None:
    # `cdk synth -c log_retention_days=30` passes the value as a string.
    config = AppConfig.from_context({"log_retention_days": "30", "environment": "prod"})
    assert config.log_retention_days == 30
    assert config.environment == "prod"


def test_config_is_frozen() -> None:
    config = AppConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.region = "us-east-1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("log_retention_days", -5, "must be one of 1, 3, 5"),
        ("log_retention_days", 31, "must be one of 1, 3, 5"),
        ("log_retention_days", "ninety", "must be one of 1, 3, 5"),
        ("environment", "qa", "must be one of dev, staging, prod"),
        ("project_name", "Iris ML", "must be a string matching"),
        ("project_name", "x", "must be a string matching"),
        ("project_name", "ends-with-dash-", "must be a string matching"),
        ("region", "mars-1", "must be a string matching"),
    ],
)
def test_bad_value_names_key_value_and_rule(key: str, value: Any, rule: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        AppConfig.from_context({key: value})
    message = str(excinfo.value)
    assert message.startswith(f"context key {key!r}: {value!r} is not allowed; {rule}")
    assert "\n" not in message


def test_every_broken_rule_is_reported() -> None:
    with pytest.raises(ConfigError) as excinfo:
        AppConfig.from_context({"environment": "qa", "log_retention_days": 2})
    assert "'environment'" in str(excinfo.value)
    assert "'log_retention_days'" in str(excinfo.value)


def test_unknown_snake_case_key_is_a_typo() -> None:
    with pytest.raises(ConfigError, match="context key 'log_retention_dayz' is unknown"):
        AppConfig.from_context({"log_retention_dayz": 30})


def test_feature_flags_and_cdk_keys_are_not_ours() -> None:
    context = {"@aws-cdk/core:stackRelativeExports": True, "aws:cdk:enable-path-metadata": True}
    assert AppConfig.from_context(context) == AppConfig()


def test_readme_configuration_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- config-table -->\n(.*?)\n<!-- /config-table -->", readme, re.S)
    assert match, "README.md lacks the <!-- config-table --> section"
    assert match.group(1) == config_table(), "run: .venv/bin/python -m cdk_app.config"


def test_a_comma_separated_cli_list_is_split() -> None:
    # `-c trainer_instance_types=a,b` arrives as one string; cdk.json would give a list.
    config = AppConfig.from_context({"trainer_instance_types": "c7g.large, m7g.large,"})
    assert config.trainer_instance_types == ("c7g.large", "m7g.large")


def test_a_malformed_instance_type_names_the_list_rule() -> None:
    with pytest.raises(ConfigError) as excinfo:
        AppConfig.from_context({"trainer_instance_types": "c7g.large,c7g"})
    assert str(excinfo.value) == (
        "context key 'trainer_instance_types': 'c7g' is not allowed; must be a comma-separated "
        "list of EC2 instance types matching the architecture"
    )


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"trainer_instance_types": "c7g.large,c7i.large"},
            "context key 'trainer_instance_types': c7i.large cannot run architecture 'arm64'; "
            "use Graviton types such as c7g.large",
        ),
        (
            {"architecture": "x86_64"},
            "context key 'trainer_instance_types': c7g.large, m7g.large, c6g.large, m6g.large, "
            "t4g.large cannot run architecture 'x86_64'; use x86 types such as c7i.large",
        ),
        (
            {"slack_workspace_id": "T01234567"},
            "context key 'slack_channel_id': required when the other Slack id is set",
        ),
        (
            {"slack_channel_id": "C01234567"},
            "context key 'slack_workspace_id': required when the other Slack id is set",
        ),
        (
            {"domain_name": "iris.example.com"},
            "context key 'certificate_arn': required when domain_name is set; CloudFront needs "
            "an ACM certificate in us-east-1 for it",
        ),
        (
            {"hosted_zone_id": "Z0123456789"},
            "context key 'domain_name': required when certificate_arn or hosted_zone_id is set",
        ),
    ],
)
def test_a_rule_across_keys_names_the_key_and_the_rule(
    context: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        AppConfig.from_context(context)
    assert str(excinfo.value) == message


def test_the_module_prints_the_table() -> None:
    # What the README's configuration section tells a reader to run.
    proc = subprocess.run(
        [sys.executable, "-m", "cdk_app.config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout == config_table() + "\n"
