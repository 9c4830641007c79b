"""Runtime settings of the serving app, read once from environment variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import environment as names

# In the image the model sits beside the package (/var/task/model); in a checkout, likewise.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
# CloudWatch's rules for a namespace; "AWS/" is reserved for AWS services.
_NAMESPACE = re.compile(r"(?!AWS/)(?=.*\S)[0-9A-Za-z.\-_/#: ]{1,255}")
# A dimension value: 1-1024 printable ASCII characters, not only spaces.
_DIMENSION_VALUE = re.compile(r"(?=.*\S)[ -~]{1,1024}")


class SettingsError(ValueError):
    """An environment variable holds a value the app cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment."""

    model_dir: Path = DEFAULT_MODEL_DIR
    max_instances: int = 1000
    max_body_bytes: int = 1024 * 1024
    service_name: str = names.DEFAULT_SERVICE
    metrics_namespace: str = names.DEFAULT_NAMESPACE

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Parse MODEL_DIR, MAX_INSTANCES, MAX_BODY_BYTES, POWERTOOLS_*; unset means default."""
        env = dict(os.environ if environ is None else environ)
        return cls(
            model_dir=Path(env.get(names.MODEL_DIR) or DEFAULT_MODEL_DIR),
            max_instances=_int(env, names.MAX_INSTANCES, cls.max_instances, 1, 100_000),
            # Lambda's synchronous payload limit is 6 MB; the cap stays well below it.
            max_body_bytes=_int(env, names.MAX_BODY_BYTES, cls.max_body_bytes, 1024, 5_000_000),
            service_name=_text(
                env,
                names.SERVICE_NAME,
                cls.service_name,
                _DIMENSION_VALUE,
                "1-1024 printable ASCII characters",
            ),
            metrics_namespace=_text(
                env,
                names.METRICS_NAMESPACE,
                cls.metrics_namespace,
                _NAMESPACE,
                "1-255 of A-Z a-z 0-9 . - _ / # : and space, not starting with AWS/",
            ),
        )


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer setting within [low, high], or a SettingsError naming the variable."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range; must be from {low} to {high}")
    return value


def _text(env: dict[str, str], name: str, default: str, pattern: re.Pattern[str], rule: str) -> str:
    """A string setting matching `pattern`, or a SettingsError naming the variable and the rule."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not pattern.fullmatch(raw):
        raise SettingsError(f"{name}={raw!r} is not allowed; it must be {rule}")
    return raw
