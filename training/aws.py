"""Helpers the trainer, the Lambda handlers and the CLI share: time, ids, S3 layout, errors, logs.

The Lambda handlers import this module, so it imports nothing beyond the standard library and
boto3/botocore (numpy and scikit-learn are not in the Lambda runtime).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from training.contract import DATASET_FILE, DATASETS_PREFIX, IDENTIFIER, IMAGE_TAG, dataset_key

# A clock returns the current UTC time; tests pass a fixed or stepping one.
Clock = Callable[[], datetime]

_S3_SCHEME = "s3://"


def utc_now() -> datetime:
    """The current UTC time to the second (registry timestamps have second resolution)."""
    return datetime.now(tz=UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    """A UTC ISO-8601 timestamp like 2026-11-27T14:05:01Z, which sorts as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """The datetime of an ISO-8601 timestamp (a trailing Z or an offset); naive means UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_run_id(moment: datetime, idempotency_key: str | None = None) -> str:
    """A run id `<UTC yyyymmddThhmmssZ>-<8 hex>`, so runs sort by start time.

    With an idempotency key the hex part derives from it: the same event delivered twice gives
    the same run id, and the registry's conditional put then refuses the second launch.
    """
    if idempotency_key is None:
        suffix = secrets.token_hex(4)
    else:
        suffix = hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}-{suffix}"


def image_tag(dataset_version: str, model_version: str) -> str:
    """The immutable ECR tag of a model image: `<dataset_version>-<model_version>`."""
    return f"{dataset_version}-{model_version}"


def parse_image_tag(tag: str) -> tuple[str, str] | None:
    """(dataset_version, model_version) of a model image tag; None for any other tag."""
    match = IMAGE_TAG.fullmatch(tag)
    if match is None:
        return None
    return match["dataset_version"], match["model_version"]


class LocationError(ValueError):
    """A dataset URI outside the data lake's layout."""


@dataclass(frozen=True)
class DatasetLocation:
    """Where a dataset version lives: s3://<bucket>/datasets/<name>/<version>/data.csv."""

    bucket: str
    name: str
    version: str

    @property
    def key(self) -> str:
        """The object key."""
        return dataset_key(self.name, self.version)

    @property
    def uri(self) -> str:
        """The s3:// URI."""
        return f"{_S3_SCHEME}{self.bucket}/{self.key}"

    @classmethod
    def from_key(cls, bucket: str, key: str) -> DatasetLocation:
        """The location of an object key; LocationError unless it follows the layout."""
        parts = key.split("/")
        uri = f"{_S3_SCHEME}{bucket}/{key}"
        if (
            len(parts) != 4
            or f"{parts[0]}/" != DATASETS_PREFIX
            or parts[3] != DATASET_FILE
            or not all(IDENTIFIER.fullmatch(part) for part in parts[1:3])
        ):
            raise LocationError(
                f"{uri} is not a dataset version: expected "
                f"s3://{bucket or '<bucket>'}/{DATASETS_PREFIX}<name>/<version>/{DATASET_FILE} "
                "with a name and version of 1-64 letters, digits, '.', '_' or '-'"
            )
        return cls(bucket=bucket, name=parts[1], version=parts[2])

    @classmethod
    def parse(cls, uri: str, *, bucket: str | None = None) -> DatasetLocation:
        """The location of an s3:// URI, which must be in `bucket` when one is given."""
        if not uri.startswith(_S3_SCHEME):
            raise LocationError(f"{uri!r} is not an s3:// URI")
        found, _, key = uri.removeprefix(_S3_SCHEME).partition("/")
        if bucket is not None and found != bucket:
            raise LocationError(f"{uri} is not in the data bucket {bucket}")
        return cls.from_key(found, key)


def error_reason(err: BaseException) -> str:
    """A one-line reason for an AWS error: the service's code and message, or the type."""
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = error.get("Code", "UnknownError")
        message = error.get("Message")
        return f"{code}: {message}" if message else code
    return f"{type(err).__name__}: {err}"


def error_code(err: ClientError) -> str:
    """The service's error code of a ClientError."""
    return str(err.response.get("Error", {}).get("Code", ""))


class SettingsError(ValueError):
    """An environment variable is missing or malformed; the message names it."""


def require_env(environ: Mapping[str, str], name: str) -> str:
    """The value of a required, non-empty environment variable."""
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is not set")
    return value


def env_int(environ: Mapping[str, str], name: str, *, minimum: int = 1) -> int:
    """A required integer environment variable of at least `minimum`."""
    text = require_env(environ, name)
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(
            f"environment variable {name} must be an integer, got {text!r}"
        ) from None
    if value < minimum:
        raise SettingsError(f"environment variable {name} must be at least {minimum}, got {value}")
    return value


def env_fraction(environ: Mapping[str, str], name: str) -> float:
    """A required environment variable holding a number in [0, 1]."""
    text = require_env(environ, name)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise SettingsError(f"environment variable {name} must be a number in [0, 1], got {text!r}")
    return value


def env_list(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A required comma-separated environment variable as a tuple of non-empty items."""
    items = tuple(item.strip() for item in require_env(environ, name).split(","))
    if not all(items):
        raise SettingsError(f"environment variable {name} has an empty item: {environ[name]!r}")
    return items


def env_bool(environ: Mapping[str, str], name: str) -> bool:
    """A required "true"/"false" environment variable."""
    text = require_env(environ, name).lower()
    if text not in ("true", "false"):
        raise SettingsError(f"environment variable {name} must be true or false, got {text!r}")
    return text == "true"


class StackReader(Protocol):
    """The part of a CloudFormation client that reads stack outputs."""

    def describe_stacks(self, *, StackName: str) -> Mapping[str, Any]:  # noqa: N803 (boto3's name)
        """CloudFormation's DescribeStacks."""
        ...


class StackOutputError(LookupError):
    """A stack or one of its outputs is missing."""


def stack_outputs(cloudformation: StackReader, stack_name: str) -> dict[str, str]:
    """The outputs of a deployed stack, by output key."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as err:
        raise StackOutputError(
            f"cannot read stack {stack_name}: {error_reason(err)} (is it deployed in this "
            "account and region?)"
        ) from err
    return {
        str(output["OutputKey"]): str(output["OutputValue"])
        for stack in stacks
        for output in stack.get("Outputs", [])
    }


def stack_output(cloudformation: StackReader, stack_name: str, key: str) -> str:
    """One output of a deployed stack."""
    outputs = stack_outputs(cloudformation, stack_name)
    if key not in outputs:
        raise StackOutputError(f"stack {stack_name} has no output {key}")
    return outputs[key]


class JsonFormatter(logging.Formatter):
    """One JSON object per log record: time, level, logger, message and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as one line of JSON."""
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            document.update(fields)
        request_id = getattr(record, "aws_request_id", None)
        if request_id:
            document["request_id"] = request_id
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(level: str | None = None) -> None:
    """Log JSON lines from the root logger (Lambda's own handler included) at LOG_LEVEL."""
    root = logging.getLogger()
    root.setLevel((level or os.environ.get("LOG_LEVEL") or "INFO").upper())
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())


def log(logger: logging.Logger, message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log `message` with structured `fields` (rendered as JSON keys by JsonFormatter)."""
    logger.log(level, message, extra={"fields": fields})
