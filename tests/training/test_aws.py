"""Shared helpers: ids, tags, the S3 layout, JSON logs, and Lambda code free of numpy/sklearn."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.training.fakes import REGISTRY_MODULES, training_modules_imported
from training.aws import (
    DatasetLocation,
    JsonFormatter,
    LocationError,
    new_run_id,
    parse_image_tag,
)
from training.contract import RUN_ID

ROOT = Path(__file__).resolve().parents[2]
MOMENT = datetime(2026, 11, 27, 14, 5, 1, tzinfo=UTC)


def test_run_ids_sort_by_time_and_repeat_for_the_same_key() -> None:
    keyed = new_run_id(MOMENT, "s3://data/datasets/iris/v2/data.csv?versionId=1")
    assert keyed == new_run_id(MOMENT, "s3://data/datasets/iris/v2/data.csv?versionId=1")
    assert keyed != new_run_id(MOMENT, "s3://data/datasets/iris/v2/data.csv?versionId=2")
    assert keyed.startswith("20261127T140501Z-")
    random_ids = {new_run_id(MOMENT) for _ in range(20)}
    assert len(random_ids) == 20
    assert all(RUN_ID.fullmatch(run_id) for run_id in {keyed, *random_ids})


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [
        ("v2-0a1b2c3d4e5f", ("v2", "0a1b2c3d4e5f")),
        ("2026-11-27-0a1b2c3d4e5f", ("2026-11-27", "0a1b2c3d4e5f")),
        ("live", None),
        ("v2-0a1b2c3d4e5", None),
        ("-0a1b2c3d4e5f", None),
    ],
)
def test_image_tags(tag: str, parsed: tuple[str, str] | None) -> None:
    assert parse_image_tag(tag) == parsed


def test_dataset_locations() -> None:
    location = DatasetLocation.parse("s3://data/datasets/iris/v2/data.csv", bucket="data")
    assert (location.bucket, location.name, location.version) == ("data", "iris", "v2")
    assert location.key == "datasets/iris/v2/data.csv"
    for uri in (
        "s3://data/datasets/iris/v2/other.csv",
        "s3://data/models/iris/v2/data.csv",
        "s3://data/datasets/iris/data.csv",
        "s3://data/datasets/../v2/data.csv",
    ):
        with pytest.raises(LocationError):
            DatasetLocation.parse(uri)


def test_json_log_lines_carry_the_fields() -> None:
    record = logging.LogRecord(
        "training.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None
    )
    record.fields = {"run_id": "r-1", "when": MOMENT}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello you"
    assert (line["level"], line["logger"], line["run_id"]) == ("WARNING", "training.x", "r-1")
    assert line["when"] == "2026-11-27 14:05:01+00:00"


def test_the_lambda_handlers_import_without_numpy_sklearn_or_type_stubs() -> None:
    modules = training_modules_imported(
        "training.control.registrar, training.control.launcher, training.control.monitor",
        blocked=(
            "numpy",
            "sklearn",
            "scipy",
            "mypy_boto3_dynamodb",
            "mypy_boto3_ec2",
            "mypy_boto3_ecr",
            "mypy_boto3_s3",
        ),
    )
    assert modules == [
        "training",
        "training.aws",
        "training.contract",
        "training.control",
        "training.control.launcher",
        "training.control.monitor",
        "training.control.registrar",
        *REGISTRY_MODULES,
    ]
