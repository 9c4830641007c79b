"""Settings from the environment: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import DEFAULT_MODEL_DIR, Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.model_dir == DEFAULT_MODEL_DIR
    assert settings.max_instances == 1000
    assert settings.max_body_bytes == 1024 * 1024


def test_overrides() -> None:
    settings = Settings.from_env(
        {"MODEL_DIR": "/opt/model", "MAX_INSTANCES": "50", "MAX_BODY_BYTES": "4096"}
    )
    assert settings == Settings(Path("/opt/model"), 50, 4096)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_INSTANCES", "many", "MAX_INSTANCES='many' is not an integer"),
        ("MAX_INSTANCES", "0", "MAX_INSTANCES=0 is out of range; must be from 1 to 100000"),
        ("MAX_BODY_BYTES", "7000000", "MAX_BODY_BYTES=7000000 is out of range"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})
