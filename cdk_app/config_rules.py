"""The config's rules: value markers, rules across keys, and one plain line per broken rule."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import annotated_types
from pydantic import GetCoreSchemaHandler, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

INSTANCE_TYPE = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"


def split_list(value: object) -> object:
    """`-c key=a,b` arrives as one string: split it; lists from cdk.json pass through."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def is_graviton(instance_type: str) -> bool:
    """Graviton (arm64) families carry a `g` right after the generation: c7g, m6gd, t4g, a1."""
    family = instance_type.split(".", 1)[0]
    return family == "a1" or re.fullmatch(r"[a-z]+\d+g[a-z]*", family) is not None


class Rule:
    """Annotated marker: the plain-English rule `allowed` reports for the field."""

    def __init__(self, text: str) -> None:
        self.text = text


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


def check_instance_types(instance_types: Sequence[str], architecture: str) -> None:
    """Trainer instance types must run the configured architecture."""
    wrong = [t for t in instance_types if is_graviton(t) != (architecture == "arm64")]
    if wrong:
        raise ValueError(
            f"context key 'trainer_instance_types': {', '.join(wrong)} cannot run "
            f"architecture {architecture!r}; use "
            + (
                "Graviton types such as c7g.large"
                if architecture == "arm64"
                else "x86 types such as c7i.large"
            )
        )


def check_slack_ids(workspace_id: str, channel_id: str) -> None:
    """Chatbot needs both the workspace and the channel."""
    if bool(workspace_id) != bool(channel_id):
        missing = "slack_channel_id" if workspace_id else "slack_workspace_id"
        raise ValueError(f"context key {missing!r}: required when the other Slack id is set")


def check_custom_domain(domain_name: str, certificate_arn: str, hosted_zone_id: str) -> None:
    """A custom domain needs its certificate; a zone or certificate needs the domain."""
    if domain_name and not certificate_arn:
        raise ValueError(
            "context key 'certificate_arn': required when domain_name is set; "
            "CloudFront needs an ACM certificate in us-east-1 for it"
        )
    if not domain_name and (certificate_arn or hosted_zone_id):
        raise ValueError(
            "context key 'domain_name': required when certificate_arn or hosted_zone_id is set"
        )


def describe(exc: ValidationError, fields: Mapping[str, FieldInfo]) -> str:
    """One line per broken rule: key, bad value, allowed values."""
    lines = []
    for err in exc.errors(include_url=False):
        if not err["loc"]:
            # A rule across fields: its message names the key itself.
            lines.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        key = str(err["loc"][0])
        lines.append(
            f"context key {key!r}: {err['input']!r} is not allowed; must be {allowed(fields[key])}"
        )
    return "; ".join(lines)


def allowed(field: FieldInfo) -> str:
    """Plain-English rule of a config field, derived from its type and constraints."""
    annotation = field.annotation
    bounds = dict(_bounds(field.metadata))
    if typing.get_origin(annotation) is Literal:
        bounds["one_of"] = typing.get_args(annotation)
    if "rule" in bounds:
        return str(bounds["rule"])
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
        elif isinstance(item, Rule):
            yield "rule", item.text
        elif (pattern := getattr(item, "pattern", None)) is not None:
            yield "pattern", pattern
