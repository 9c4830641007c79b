"""The quality gate: export a model only when it is accurate enough and no worse than before."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MIN_ACCURACY = 0.90
DEFAULT_TOLERANCE = 0.02
# Accuracies are ratios of counts; this slack keeps float rounding (0.97 - 0.02 is not 0.95)
# from refusing a model that sits exactly on a threshold.
_SLACK = 1e-9


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict, the reasons for a refusal and the thresholds it applied."""

    passed: bool
    reasons: list[str]
    accuracy: float
    min_accuracy: float
    tolerance: float
    baseline_accuracy: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return thresholds, verdict and reasons as recorded in the model's metadata."""
        return {
            "verdict": "passed" if self.passed else "refused",
            "passed": self.passed,
            "reasons": list(self.reasons),
            "accuracy": self.accuracy,
            "min_accuracy": self.min_accuracy,
            "baseline_accuracy": self.baseline_accuracy,
            "tolerance": self.tolerance,
        }


def check_gate(
    metrics: Mapping[str, Any],
    *,
    min_accuracy: float = DEFAULT_MIN_ACCURACY,
    baseline: Mapping[str, Any] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> GateResult:
    """Pass `metrics` unless accuracy is below the minimum or the baseline's minus tolerance."""
    accuracy = _fraction(metrics.get("accuracy"), "metrics['accuracy']")
    min_accuracy = _fraction(min_accuracy, "min_accuracy")
    tolerance = _fraction(tolerance, "tolerance")
    baseline_accuracy = (
        None if baseline is None else _fraction(baseline.get("accuracy"), "baseline['accuracy']")
    )
    reasons = []
    if accuracy < min_accuracy - _SLACK:
        shown, minimum = _distinct(accuracy, min_accuracy)
        reasons.append(f"accuracy {shown} is below the minimum {minimum}")
    if baseline_accuracy is not None and accuracy < baseline_accuracy - tolerance - _SLACK:
        shown, previous = _distinct(accuracy, baseline_accuracy)
        reasons.append(
            f"accuracy {shown} is worse than the baseline's {previous} "
            f"by more than the tolerance {_number(tolerance)}"
        )
    return GateResult(
        passed=not reasons,
        reasons=reasons,
        accuracy=accuracy,
        min_accuracy=min_accuracy,
        tolerance=tolerance,
        baseline_accuracy=baseline_accuracy,
    )


def load_baseline(path: Path) -> dict[str, Any]:
    """Return the metrics of a metrics JSON (`{"accuracy": ...}`) or of a model's metadata.json."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"cannot read baseline {path}: {err.strerror or err}") from err
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise ValueError(f"baseline {path} is not a JSON document: {err}") from err
    metrics = document.get("metrics", document) if isinstance(document, dict) else None
    if not isinstance(metrics, dict):
        metrics = {}
    try:
        _fraction(metrics.get("accuracy"), "accuracy")
    except ValueError as err:
        raise ValueError(
            f"baseline {path} has no accuracy between 0 and 1: expected a metrics JSON "
            '({"accuracy": 0.97, ...}) or a metadata.json with "metrics": {"accuracy": ...}'
        ) from err
    return metrics


def _fraction(value: object, name: str) -> float:
    """`value` as a float in [0, 1], or a ValueError naming the argument."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _number(value: float) -> str:
    """At most 4 decimals, at least 2: 0.9 -> '0.90', 0.8333333 -> '0.8333'."""
    text = f"{value:.4f}".rstrip("0")
    return text + "0" * (2 - len(text.partition(".")[2]))


def _distinct(value: float, threshold: float) -> tuple[str, str]:
    """Both numbers as text, with full precision when rounding would make them look equal."""
    shown, limit = _number(value), _number(threshold)
    if shown == limit:
        return repr(value), repr(threshold)
    return shown, limit
