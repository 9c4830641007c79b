"""The numpy evaluator equals scikit-learn: same classes, bit-identical probabilities, ties too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from app.model import KnnModel
from tests.serving.support import FEATURES, export, fitted, iris_split
from training.ml.estimator import make_estimator
from training.ml.export import ExportError, export_model


def probe_points() -> np.ndarray:
    """25,000+ points: a 0.1 cm grid around the data (ties galore), random points, the data."""
    x_train, x_test, _, _ = iris_split()
    data = np.vstack([x_train, x_test])
    rng = np.random.default_rng(7)
    low, high = data.min(axis=0) - 0.5, data.max(axis=0) + 0.5
    grid = np.round(rng.uniform(low, high, size=(20_000, 4)), 1)
    scattered = rng.uniform(low, high, size=(5_000, 4))
    return np.vstack([grid, scattered, data])


def boundary_ties(estimator: KNeighborsClassifier, points: np.ndarray) -> int:
    """Points whose k-th and (k+1)-th nearest training rows are exactly equally far."""
    fit_x = estimator._fit_X
    squared = ((points[:, None, :] - fit_x[None, :, :]) ** 2).sum(axis=2)
    ordered = np.sort(squared, axis=1)
    k = estimator.n_neighbors
    return int((ordered[:, k - 1] == ordered[:, k]).sum())


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_batch_predictions_equal_sklearn(tmp_path: Path, weights: str) -> None:
    estimator = fitted(weights)
    model = KnnModel.load(export(estimator, tmp_path))
    points = probe_points()
    assert len(points) >= 10_000
    # The probe must exercise the hard case, not only easy points.
    assert boundary_ties(estimator, points) >= 100

    result = model.predict(points)

    expected_labels = estimator.predict(points)
    assert (np.asarray(model.classes)[result.class_ids] == expected_labels).all()
    assert np.array_equal(result.probabilities, estimator.predict_proba(points))


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_single_sample_path_equals_sklearn(tmp_path: Path, weights: str) -> None:
    estimator = fitted(weights)
    model = KnnModel.load(export(estimator, tmp_path))
    points = probe_points()
    tied = points[:20_000:10]  # grid points, one in ten: 2,000 single-row calls
    for point in tied:
        result = model.predict(point[np.newaxis, :])
        expected = estimator.predict_proba(point[np.newaxis, :])
        assert np.array_equal(result.probabilities, expected), point
        assert model.classes[int(result.class_ids[0])] == estimator.predict(point[None, :])[0]


def test_exact_training_points_with_distance_weights(tmp_path: Path) -> None:
    estimator = fitted("distance")
    model = KnnModel.load(export(estimator, tmp_path))
    x_train = estimator._fit_X
    result = model.predict(x_train)
    assert np.array_equal(result.probabilities, estimator.predict_proba(x_train))


def _fit(estimator: object) -> object:
    x_train, _, y_train, _ = iris_split()
    return estimator.fit(x_train, y_train)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (LogisticRegression(max_iter=500), "no exporter for LogisticRegression"),
        (KNeighborsClassifier(n_neighbors=3), "breaks distance ties differently"),
        (KNeighborsClassifier(n_neighbors=3, algorithm="brute"), "algorithm='brute'"),
        (
            make_estimator(120).set_params(metric="manhattan"),
            "supported: euclidean",
        ),
        (
            make_estimator(120).set_params(weights=lambda d: d),
            "weights=",
        ),
    ],
)
def test_export_refuses_what_serving_cannot_reproduce(
    tmp_path: Path, estimator: object, message: str
) -> None:
    with pytest.raises(ExportError, match=message):
        export_model(_fit(estimator), tmp_path, feature_names=FEATURES, info={})
    assert not (tmp_path / "model.npz").exists()


def test_export_refuses_an_unfitted_estimator(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not fitted"):
        export_model(make_estimator(120), tmp_path, feature_names=FEATURES, info={})


def test_export_refuses_wrong_feature_names(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="3 feature names for 4 features"):
        export_model(fitted(), tmp_path, feature_names=FEATURES[:3], info={})
