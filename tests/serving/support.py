"""Serving test helpers: models exported as the trainer exports them, recorded events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from training.ml.estimator import make_estimator
from training.ml.export import export_model

EVENTS = Path(__file__).parent / "events"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
# The fuzzing figures test_fuzz.py leaves for the end-of-session summary.
FUZZ_SUMMARY = pytest.StashKey[str]()


def iris_split(seed: int = 42) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The bundled iris data as label strings, split 80/20 stratified."""
    data = load_iris()
    labels = np.array(data.target_names)[data.target]
    parts = train_test_split(data.data, labels, test_size=0.2, random_state=seed, stratify=labels)
    return parts[0], parts[1], parts[2], parts[3]


def fitted(weights: str = "uniform") -> KNeighborsClassifier:
    """A fitted estimator built the way the trainer builds it."""
    x_train, _, y_train, _ = iris_split()
    estimator = make_estimator(len(x_train))
    estimator.set_params(weights=weights)
    return estimator.fit(x_train, y_train)


def export(estimator: KNeighborsClassifier, directory: Path) -> Path:
    """Export `estimator` into `directory` as the trainer does."""
    export_model(
        estimator,
        directory,
        feature_names=FEATURES,
        info={"dataset": {"name": "iris", "version": "test"}},
    )
    return directory


def event(name: str) -> dict[str, Any]:
    """A recorded API Gateway event from tests/serving/events."""
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded
