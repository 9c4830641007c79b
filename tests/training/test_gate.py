"""The quality gate: minimum accuracy, baseline with tolerance, argument checks, baselines."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from training.ml.gate import check_gate, load_baseline


def test_an_accurate_model_passes() -> None:
    result = check_gate({"accuracy": 0.95})
    assert result.passed
    assert result.reasons == []
    assert result.as_dict() == {
        "verdict": "passed",
        "passed": True,
        "reasons": [],
        "accuracy": 0.95,
        "min_accuracy": 0.9,
        "baseline_accuracy": None,
        "tolerance": 0.02,
    }


def test_below_the_minimum_is_refused() -> None:
    result = check_gate({"accuracy": 25 / 30}, min_accuracy=0.9)
    assert not result.passed
    assert result.reasons == ["accuracy 0.8333 is below the minimum 0.90"]
    assert result.as_dict()["verdict"] == "refused"


def test_exactly_the_minimum_passes() -> None:
    assert check_gate({"accuracy": 27 / 30}, min_accuracy=0.9).passed


def test_worse_than_the_baseline_beyond_tolerance_is_refused() -> None:
    result = check_gate(
        {"accuracy": 0.9}, min_accuracy=0.85, baseline={"accuracy": 0.97}, tolerance=0.02
    )
    assert not result.passed
    assert result.reasons == [
        "accuracy 0.90 is worse than the baseline's 0.97 by more than the tolerance 0.02"
    ]
    gate = result.as_dict()
    assert (gate["baseline_accuracy"], gate["tolerance"], gate["min_accuracy"]) == (
        0.97,
        0.02,
        0.85,
    )


def test_within_tolerance_passes() -> None:
    assert check_gate({"accuracy": 0.96}, baseline={"accuracy": 0.97}, tolerance=0.02).passed


def test_a_drop_of_exactly_the_tolerance_passes() -> None:
    # 0.92 - 0.1 is 0.8200000000000001 in floats; the gate must not refuse 0.82 for that.
    result = check_gate(
        {"accuracy": 0.82}, min_accuracy=0.8, baseline={"accuracy": 0.92}, tolerance=0.1
    )
    assert result.passed


def test_better_than_the_baseline_passes() -> None:
    assert check_gate({"accuracy": 1.0}, baseline={"accuracy": 0.9}, tolerance=0.0).passed


def test_both_reasons_are_given() -> None:
    result = check_gate({"accuracy": 0.5}, baseline={"accuracy": 1.0}, tolerance=0.0)
    assert result.reasons == [
        "accuracy 0.50 is below the minimum 0.90",
        "accuracy 0.50 is worse than the baseline's 1.00 by more than the tolerance 0.00",
    ]


def test_numbers_that_round_alike_are_shown_in_full() -> None:
    result = check_gate({"accuracy": 0.89999}, min_accuracy=0.9)
    assert result.reasons == ["accuracy 0.89999 is below the minimum 0.9"]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"min_accuracy": 1.01}, "min_accuracy"),
        ({"min_accuracy": -0.1}, "min_accuracy"),
        ({"min_accuracy": math.nan}, "min_accuracy"),
        ({"tolerance": -0.01}, "tolerance"),
        ({"tolerance": 2.0}, "tolerance"),
        ({"baseline": {"accuracy": 1.2}}, r"baseline\['accuracy'\]"),
        ({"baseline": {}}, r"baseline\['accuracy'\]"),
        ({"baseline": {"accuracy": True}}, r"baseline\['accuracy'\]"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=f"^{argument} must be a number between 0 and 1"):
        check_gate({"accuracy": 0.95}, **kwargs)


@pytest.mark.parametrize("accuracy", [None, "0.9", 1.5, math.inf])
def test_metrics_need_an_accuracy(accuracy: object) -> None:
    with pytest.raises(ValueError, match=r"^metrics\['accuracy'\] must be a number"):
        check_gate({"accuracy": accuracy})


def test_baseline_from_a_metrics_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"accuracy": 0.97, "per_class": {}}))
    assert load_baseline(path) == {"accuracy": 0.97, "per_class": {}}


def test_baseline_from_a_metadata_file(tmp_path: Path) -> None:
    path = tmp_path / "metadata.json"
    metadata = {"format_version": 1, "model_version": "abc", "metrics": {"accuracy": 0.93}}
    path.write_text(json.dumps(metadata))
    assert load_baseline(path) == {"accuracy": 0.93}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not a JSON document"),
        ("[0.97]", "has no accuracy between 0 and 1"),
        ('{"metrics": {"f1": 0.9}}', "has no accuracy between 0 and 1"),
        ('{"metrics": "0.9"}', "has no accuracy between 0 and 1"),
        ('{"accuracy": 97}', "has no accuracy between 0 and 1"),
        ('{"accuracy": "0.97"}', "has no accuracy between 0 and 1"),
    ],
)
def test_bad_baseline_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=f"^baseline {re.escape(str(path))} {message}"):
        load_baseline(path)


def test_missing_baseline_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(
        ValueError, match=f"^cannot read baseline {re.escape(str(path))}: No such file"
    ):
        load_baseline(path)
