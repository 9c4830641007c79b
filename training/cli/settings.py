"""Where operator commands find the deployed app: the flag, else the environment, else cdk.json."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from training.aws import SettingsError
from training.contract import IDENTIFIER


class _FromSettings:
    """The default of an option resolve() fills in; not a str, so argparse does not parse it."""

    def __repr__(self) -> str:
        return "<from the environment or cdk.json>"


FROM_SETTINGS: Any = _FromSettings()


@dataclass(frozen=True)
class Source:
    """Where one setting comes from when its flag is not given."""

    variables: tuple[str, ...]
    config: str  # the attribute of cdk_app.config.AppConfig
    valid: Callable[[str], bool] = bool


SOURCES: dict[str, Source] = {
    "stack_prefix": Source(("STACK_PREFIX",), "stack_prefix"),
    # The SDKs read AWS_REGION and the AWS CLI AWS_DEFAULT_REGION; AWS_REGION wins over it
    # (docs.aws.amazon.com/sdkref/latest/guide/feature-region.html). The profile's region is
    # not read: cdk.json's region is where `cdk deploy` put the stacks.
    "region": Source(("AWS_REGION", "AWS_DEFAULT_REGION"), "region"),
    "dataset_name": Source(
        ("DATASET_NAME",), "dataset_name", lambda value: bool(IDENTIFIER.fullmatch(value))
    ),
}


def resolve(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> None:
    """Fill each option left at FROM_SETTINGS from its variables, else from cdk.json."""
    config = None  # cdk.json is read and validated once, and only when a setting needs it
    for dest, source in SOURCES.items():
        if getattr(args, dest, None) is not FROM_SETTINGS:
            continue  # given on the command line, or not an option of this command
        variable = next((name for name in source.variables if environ.get(name)), None)
        if variable is None:
            config = config or _config()
            setattr(args, dest, str(getattr(config, source.config)))
            continue
        value = environ[variable]
        if not source.valid(value):
            raise SettingsError(f"{variable}={value!r} is not a valid {dest.replace('_', ' ')}")
        setattr(args, dest, value)


def _config() -> Any:
    """The app's config as `cdk synth` builds it from cdk.json (SettingsError if it cannot)."""
    # Imported on use: the local commands and --help never read cdk.json.
    from cdk_app.config import AppConfig, ConfigError  # noqa: PLC0415

    try:
        return AppConfig.from_cdk_json()
    except ConfigError as err:
        raise SettingsError(f"cdk.json: {err}") from None
