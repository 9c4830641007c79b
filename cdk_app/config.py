"""Application configuration: one frozen dataclass, built from cdk.json context and validated."""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import ConfigDict, Field, GetCoreSchemaHandler, ValidationError
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_OUR_KEY = re.compile(r"[a-z][a-z0-9_]*")

Environment = Literal["dev", "staging", "prod"]


class ConfigError(ValueError):
    """A context value that breaks a rule; the message names the key, the value and the rule."""


class OneOf:
    """Annotated marker: the value must be one of a fixed set (and `allowed` can say which)."""

    def __init__(self, *values: object) -> None:
        self.values = values

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, value: object) -> object:
        if value not in self.values:
            raise ValueError("not in the allowed set")
        return value


@dataclass(
    frozen=True,
    config=ConfigDict(extra="forbid", validate_default=True, str_strip_whitespace=True),
)
class AppConfig:
    """Every knob of the app; keys match cdk.json context and `cdk synth -c key=value`."""

    project_name: Annotated[
        str,
        Field(
            pattern=r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$",
            description="Prefix of stack names and tag value; lower-case letters, digits, dashes.",
        ),
    ] = "iris-ml"
    environment: Annotated[
        Environment, Field(description="Deployment stage; part of stack names and tags.")
    ] = "dev"
    region: Annotated[
        str,
        Field(
            pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$",
            description="AWS region the stacks deploy to.",
        ),
    ] = "eu-west-1"
    log_retention_days: Annotated[
        int,
        OneOf(*LOG_RETENTION_DAYS),
        Field(description="Retention of every log group the app creates, in days."),
    ] = 90

    @property
    def stack_prefix(self) -> str:
        """Prefix shared by the four stack names, e.g. `iris-ml-dev`."""
        return f"{self.project_name}-{self.environment}"

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> AppConfig:
        """Build the config from the app's context (cdk.json plus `-c key=value`)."""
        names = [f.name for f in dataclasses.fields(cls)]
        # Our keys are snake_case; feature flags and CDK's own keys carry ':' or '-', so a
        # snake_case key we do not know is a typo that would otherwise be silently ignored.
        unknown = sorted(k for k in context if _OUR_KEY.fullmatch(k) and k not in names)
        if unknown:
            raise ConfigError(
                f"context key {unknown[0]!r} is unknown; known keys: {', '.join(names)}"
            )
        values = {name: context[name] for name in names if context.get(name) is not None}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """One line per broken rule: key, bad value, allowed values."""
    lines = []
    for err in exc.errors(include_url=False):
        key = str(err["loc"][0]) if err["loc"] else "?"
        lines.append(
            f"context key {key!r}: {err['input']!r} is not allowed; must be {allowed(key)}"
        )
    return "; ".join(lines)


def _fields() -> dict[str, FieldInfo]:
    """Pydantic's view of the config's fields: type, constraints, default, description."""
    fields: dict[str, FieldInfo] = AppConfig.__pydantic_fields__  # type: ignore[attr-defined]
    return fields


def allowed(name: str) -> str:
    """Plain-English rule of a config field, derived from its type and constraints."""
    field = _fields()[name]
    annotation = field.annotation
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    bounds = dict(_bounds(field.metadata))
    if "one_of" in bounds:
        return "one of " + ", ".join(map(str, bounds["one_of"]))
    kinds: dict[Any, str] = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
    }
    kind = kinds.get(annotation, "a value")
    if "pattern" in bounds:
        return f"{kind} matching `{bounds['pattern']}`"
    if "ge" in bounds and "le" in bounds:
        return f"{kind} from {bounds['ge']} to {bounds['le']}"
    if "ge" in bounds:
        return f"{kind} of at least {bounds['ge']}"
    return kind


def _bounds(metadata: list[Any]) -> Iterator[tuple[str, Any]]:
    """Yield (kind, value) pairs for the constraints pydantic stores on a field."""
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            yield "ge", item.ge
        elif isinstance(item, annotated_types.Le):
            yield "le", item.le
        elif isinstance(item, OneOf):
            yield "one_of", item.values
        elif (pattern := getattr(item, "pattern", None)) is not None:
            yield "pattern", pattern


def config_table() -> str:
    """Markdown table of every knob, its default and its rule (kept in the README by a test)."""
    rows = ["| key | default | allowed | what it sets |", "|---|---|---|---|"]
    for name, field in _fields().items():
        default = json.dumps(field.default).replace("|", "\\|")
        rows.append(f"| `{name}` | `{default}` | {allowed(name)} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    # `python -m cdk_app.config` prints the table for the README's configuration section.
    import sys

    sys.stdout.write(config_table() + "\n")
