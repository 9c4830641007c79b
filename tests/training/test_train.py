"""Training: hold-out metrics, determinism of the exported model, argument checks."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import pytest

from training.ml.dataset import (
    CLASSES,
    FEATURES,
    Dataset,
    DatasetError,
    load_dataset,
    parse_dataset,
)
from training.ml.export import METADATA_FILE, MODEL_FILE, ExportedModel, export_model
from training.ml.train import TrainResult, evaluate, train


@pytest.fixture(scope="module")
def iris() -> Dataset:
    return load_dataset(None)


def export(result: TrainResult, out: Path) -> ExportedModel:
    return export_model(
        result.estimator,
        out,
        feature_names=list(FEATURES),
        info={"metrics": result.metrics, "training": result.training},
    )


def test_metrics_shape_and_ranges(iris: Dataset) -> None:
    result = train(iris)
    metrics = result.metrics
    assert set(metrics) == {"accuracy", "per_class", "confusion_matrix"}
    assert 0.9 <= metrics["accuracy"] <= 1.0
    assert list(metrics["per_class"]) == list(CLASSES)
    for scores in metrics["per_class"].values():
        assert set(scores) == {"precision", "recall", "f1", "support"}
        assert all(0.0 <= scores[key] <= 1.0 for key in ("precision", "recall", "f1"))
        # Stratified: 30 held-out rows, 10 of each class.
        assert scores["support"] == 10
    matrix = metrics["confusion_matrix"]
    assert matrix["labels"] == list(CLASSES)
    cells = np.array(matrix["matrix"])
    assert cells.shape == (3, 3)
    assert cells.sum() == 30
    assert np.trace(cells) / 30 == metrics["accuracy"]
    assert json.loads(json.dumps(metrics)) == metrics


def test_training_record_and_fitted_estimator(iris: Dataset) -> None:
    result = train(iris, seed=7, test_size=0.3)
    assert result.training == {"seed": 7, "test_size": 0.3, "n_train": 105, "n_test": 45}
    assert result.estimator.classes_.tolist() == list(CLASSES)
    assert result.estimator.n_samples_fit_ == 105
    assert result.estimator.n_features_in_ == 4
    assert not hasattr(result.estimator, "feature_names_in_")


def test_evaluate_values() -> None:
    truth = np.array(["a", "a", "b", "b"])
    predicted = np.array(["a", "b", "b", "b"])
    metrics = evaluate(truth, predicted, ["a", "b", "c"])
    assert metrics["accuracy"] == 0.75
    assert metrics["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert metrics["per_class"]["b"] == {
        "precision": 2 / 3,
        "recall": 1.0,
        "f1": 0.8,
        "support": 2,
    }
    # A class never seen nor predicted scores 0 instead of warning (zero_division=0).
    assert metrics["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["confusion_matrix"] == {
        "labels": ["a", "b", "c"],
        "matrix": [[1, 1, 0], [0, 2, 0], [0, 0, 0]],
    }


def test_same_data_and_seed_give_byte_identical_artifacts(iris: Dataset, tmp_path: Path) -> None:
    first = export(train(iris, seed=3), tmp_path / "a")
    second = export(train(load_dataset(None), seed=3), tmp_path / "b")
    assert first.model_version == second.model_version
    for name in (MODEL_FILE, METADATA_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_image_files_hold_no_time_or_host(
    iris: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exports at other times on another Python give the same model/ bytes (one image asset)."""
    result = train(iris)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    export(result, tmp_path / "a")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    monkeypatch.setattr(platform, "python_version", lambda: "3.99.1")
    export(result, tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [METADATA_FILE, MODEL_FILE]
    for name in (MODEL_FILE, METADATA_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    metadata = json.loads((tmp_path / "a" / METADATA_FILE).read_text())
    assert "created_at" not in metadata
    assert set(metadata["libraries"]) == {"numpy", "scikit-learn", "scipy"}


def test_model_bytes_do_not_depend_on_the_export_time(iris: Dataset, tmp_path: Path) -> None:
    first = export(train(iris), tmp_path / "a")
    second = export(train(iris), tmp_path / "b")
    assert first.model_sha256 == second.model_sha256
    assert (tmp_path / "a" / MODEL_FILE).read_bytes() == (tmp_path / "b" / MODEL_FILE).read_bytes()


def test_a_different_seed_gives_a_different_split_and_model(iris: Dataset, tmp_path: Path) -> None:
    first = train(iris, seed=1)
    second = train(iris, seed=2)
    assert not np.array_equal(first.estimator._fit_X, second.estimator._fit_X)
    assert (
        export(first, tmp_path / "a").model_version != export(second, tmp_path / "b").model_version
    )


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1, 1.5])
def test_test_size_must_be_a_fraction(iris: Dataset, test_size: float) -> None:
    with pytest.raises(ValueError, match="test_size must be between 0 and 1"):
        train(iris, test_size=test_size)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_must_fit_numpy(iris: Dataset, seed: int) -> None:
    with pytest.raises(ValueError, match="seed must be in"):
        train(iris, seed=seed)


def test_too_few_rows_to_split_is_a_dataset_problem() -> None:
    data = b"sepal_length,sepal_width,petal_length,petal_width,species\n" + (
        b"5.1,3.5,1.4,0.2,setosa\n7.0,3.2,4.7,1.4,versicolor\n6.3,3.3,6.0,2.5,virginica\n"
    )
    tiny = parse_dataset(data, name="tiny", version="v1", source="tiny.csv", min_rows_per_class=1)
    with pytest.raises(DatasetError) as caught:
        train(tiny)
    (problem,) = caught.value.problems
    assert problem.startswith("cannot hold out 0.2 of 3 rows stratified by class: ")
