"""Fit the project's estimator on a seeded stratified split and score it on the held-out rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from training.ml.dataset import Dataset, DatasetError
from training.ml.estimator import make_estimator

DEFAULT_SEED = 42
DEFAULT_TEST_SIZE = 0.2
# train_test_split's random_state must fit numpy's legacy seed range.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainResult:
    """A fitted estimator, its hold-out metrics and how it was trained (all JSON-ready)."""

    estimator: KNeighborsClassifier
    metrics: dict[str, Any]
    training: dict[str, Any]


def train(
    dataset: Dataset, *, seed: int = DEFAULT_SEED, test_size: float = DEFAULT_TEST_SIZE
) -> TrainResult:
    """Fit on a seeded stratified split of `dataset` and evaluate on the held-out part.

    Same data and seed give the same split and the same fitted points, hence the same export.
    """
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, {MAX_SEED}], got {seed}")
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            dataset.x,
            dataset.labels,
            test_size=test_size,
            stratify=dataset.labels,
            random_state=seed,
        )
    except ValueError as err:
        # Too few rows to put every class on both sides of the split.
        raise DatasetError(
            dataset.source,
            [f"cannot hold out {test_size} of {dataset.rows} rows stratified by class: {err}"],
        ) from err
    estimator = make_estimator(len(x_train))
    estimator.fit(np.asarray(x_train, dtype=np.float64), y_train)
    predicted = estimator.predict(np.asarray(x_test, dtype=np.float64))
    return TrainResult(
        estimator=estimator,
        metrics=evaluate(y_test, predicted, [str(label) for label in estimator.classes_]),
        training={
            "seed": seed,
            "test_size": test_size,
            "n_train": len(x_train),
            "n_test": len(x_test),
        },
    )


def evaluate(
    truth: npt.NDArray[np.str_], predicted: npt.NDArray[np.str_], labels: list[str]
) -> dict[str, Any]:
    """Return accuracy, per-class precision/recall/F1/support and the confusion matrix."""
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    matrix = confusion_matrix(truth, predicted, labels=labels)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": list(labels),
            "matrix": [[int(count) for count in row] for row in matrix],
        },
    }
