"""Argument types and options the commands share; a bad value is a usage error (exit 2)."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

from training.aws import DatasetLocation, LocationError
from training.cli.settings import FROM_SETTINGS
from training.contract import IDENTIFIER, MODEL_VERSION, RUN_ID

DEFAULT_MIN_ROWS_PER_CLASS = 10

# Argument types: argparse turns their ArgumentTypeError into a usage error (exit 2).


def unit_interval(text: str) -> float:
    """Parse a number in [0, 1]."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def open_unit_interval(text: str) -> float:
    """Parse a number strictly between 0 and 1."""
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def finite_float(text: str) -> float:
    """Parse a finite float."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """Parse an integer of at least 1."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def integer(text: str) -> int:
    """Parse an integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def s3_dataset_uri(text: str) -> str:
    """Check an s3:// URI follows the data lake's layout."""
    try:
        return DatasetLocation.parse(text).uri
    except LocationError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _shaped(pattern: re.Pattern[str], expected: str) -> Callable[[str], str]:
    """An argument type that takes a value matching `pattern` whole, and names the shape."""

    def check(text: str) -> str:
        if not pattern.fullmatch(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
        return text

    return check


# A dataset name or version becomes part of an S3 key and an ECR tag.
identifier = _shaped(
    IDENTIFIER, "valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
)
run_id_type = _shaped(
    RUN_ID, "a run id: expected <UTC yyyymmddThhmmssZ>-<8 hex>, e.g. 20261127T140501Z-1a2b3c4d"
)
model_version_type = _shaped(
    MODEL_VERSION,
    "a model version: expected 12 lower-case hex digits, e.g. 0a1b2c3d4e5f "
    "(`python -m training status` lists them)",
)


def add_stack_prefix(parser: argparse.ArgumentParser) -> None:
    """--stack-prefix and --region: which deployed app a command reads and changes."""
    parser.add_argument(
        "--stack-prefix",
        default=FROM_SETTINGS,
        metavar="PREFIX",
        help="<project>-<environment> of the deployed stacks, whose outputs name the bucket, "
        "table and functions (default: $STACK_PREFIX, else project_name-environment in cdk.json)",
    )
    parser.add_argument(
        "--region",
        default=FROM_SETTINGS,
        metavar="REGION",
        help="region of the stacks (default: $AWS_REGION, $AWS_DEFAULT_REGION, else cdk.json's)",
    )


def add_dataset_name(parser: argparse.ArgumentParser) -> None:
    """--dataset-name of the commands that address the data lake."""
    parser.add_argument(
        "--dataset-name",
        type=identifier,
        default=FROM_SETTINGS,
        metavar="NAME",
        help="dataset name, the key's <name> part (default: $DATASET_NAME, else cdk.json's "
        "dataset_name)",
    )


def add_min_rows_per_class(parser: argparse.ArgumentParser) -> None:
    """The --min-rows-per-class option of every command that validates a dataset."""
    parser.add_argument(
        "--min-rows-per-class",
        type=positive_int,
        default=DEFAULT_MIN_ROWS_PER_CLASS,
        metavar="N",
        help="refuse a dataset with fewer rows in any class (default: %(default)s)",
    )
