"""The config: defaults, coercion of `-c` strings, and one clear error per broken rule."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from cdk_app.config import AppConfig, ConfigError, config_table
from tests.support import ROOT, cdk_json_context


def test_defaults_match_cdk_json() -> None:
    config = AppConfig.from_context(cdk_json_context())
    assert config == AppConfig()
    assert config.stack_prefix == "iris-ml-dev"


def test_every_knob_has_a_default_in_cdk_json() -> None:
    context = cdk_json_context()
    for field in dataclasses.fields(AppConfig):
        assert field.name in context, f"cdk.json lacks a default for {field.name}"


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
