"""Export a fitted estimator to the serving format: arrays in `model.npz` plus `metadata.json`.

The format holds numbers and strings only, so serving loads it with `allow_pickle=False` and
never runs code from the file. `docs/model-artifact.md` specifies it. Both files are a function
of the data, the parameters and the pinned libraries alone: no time, no host, so the same
training gives the same bytes and the same serving image (the registry records when).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from training.ml.dataset import FEATURES, Dataset
from training.ml.gate import GateResult
from training.ml.train import TrainResult

FORMAT_VERSION = 1
MODEL_FILE = "model.npz"
METADATA_FILE = "metadata.json"
# Fixed zip entry time: np.savez stamps the current time, which would make equal models differ.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ExportError(ValueError):
    """The estimator cannot be expressed in the serving format."""


@dataclass(frozen=True)
class ExportedModel:
    """What an export wrote: where, and the content-derived version."""

    directory: Path
    model_version: str
    model_sha256: str
    metadata: dict[str, Any]


def as_knn(estimator: object) -> KNeighborsClassifier:
    """The estimator as a KNeighborsClassifier, or a clear error naming what is supported."""
    if not isinstance(estimator, KNeighborsClassifier):
        raise ExportError(
            f"no exporter for {type(estimator).__name__}; supported: KNeighborsClassifier"
        )
    return estimator


def knn_arrays(estimator: KNeighborsClassifier, feature_names: list[str]) -> dict[str, np.ndarray]:
    """The arrays that define a fitted KNeighborsClassifier, checked for serving parity."""
    if not hasattr(estimator, "classes_"):
        raise ExportError("the KNeighborsClassifier is not fitted; call fit() before export")
    problems = []
    if estimator.weights not in ("uniform", "distance"):
        problems.append(f"weights={estimator.weights!r} (supported: 'uniform', 'distance')")
    if not _is_euclidean(estimator):
        problems.append(
            f"metric={estimator.metric!r}, p={estimator.p!r} "
            "(supported: euclidean, i.e. minkowski with p=2)"
        )
    # Serving keeps the first of equidistant rows; only a single-leaf tree does the same.
    n_fit = int(estimator.n_samples_fit_)
    if estimator._fit_method not in ("kd_tree", "ball_tree") or estimator.leaf_size < n_fit:
        problems.append(
            f"algorithm={estimator._fit_method!r} with leaf_size={estimator.leaf_size} breaks "
            f"distance ties differently from serving; build it with "
            f"training.ml.estimator.make_estimator({n_fit})"
        )
    if estimator.outputs_2d_:
        problems.append("multi-output targets are not supported")
    if len(feature_names) != estimator.n_features_in_:
        problems.append(
            f"{len(feature_names)} feature names for {estimator.n_features_in_} features"
        )
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None and list(fitted_names) != list(feature_names):
        problems.append(f"feature names {feature_names} differ from the fit's {list(fitted_names)}")
    if problems:
        raise ExportError("cannot export KNeighborsClassifier: " + "; ".join(problems))
    return {
        "fit_X": np.ascontiguousarray(estimator._fit_X, dtype=np.float64),
        "y": np.asarray(estimator._y, dtype=np.int64),
        "classes": np.asarray([str(c) for c in estimator.classes_], dtype=np.str_),
        "feature_names": np.asarray(feature_names, dtype=np.str_),
        "n_neighbors": np.asarray(estimator.n_neighbors, dtype=np.int64),
        "weights": np.asarray(estimator.weights, dtype=np.str_),
    }


def _is_euclidean(estimator: KNeighborsClassifier) -> bool:
    """Serving evaluates the euclidean distance only."""
    metric_params = estimator.metric_params or {}
    if metric_params:
        return False
    metric, power = estimator.metric, estimator.p
    return bool(metric == "euclidean" or (metric == "minkowski" and power == 2))


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """A deterministic `.npz` (zip of `.npy`): same arrays, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with archive.open(info, "w") as entry:
                np.lib.format.write_array(entry, np.asarray(arrays[name]), allow_pickle=False)
    return buffer.getvalue()


def library_versions() -> dict[str, str]:
    """Versions of the pinned libraries that produced the artifact, for its provenance.

    Not the Python version: that is the host's (a laptop's, or the trainer AMI's, which moves
    with its rebuilds), and it would make the same training give another serving image.
    """
    return {dist: importlib_metadata.version(dist) for dist in ("numpy", "scikit-learn", "scipy")}


def export_model(
    estimator: object,
    out_dir: Path,
    *,
    feature_names: list[str],
    info: Mapping[str, Any],
) -> ExportedModel:
    """Write `model.npz` and `metadata.json` into `out_dir`; `info` adds dataset and metrics."""
    knn = as_knn(estimator)
    arrays = knn_arrays(knn, feature_names)
    payload = npz_bytes(arrays)
    digest = hashlib.sha256(payload).hexdigest()
    metadata: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_version": digest[:12],
        "model_sha256": digest,
        "estimator": {
            "type": "KNeighborsClassifier",
            "params": {
                "n_neighbors": int(knn.n_neighbors),
                "weights": str(knn.weights),
                "metric": "euclidean",
                "algorithm": str(knn.algorithm),
                "leaf_size": int(knn.leaf_size),
            },
        },
        "classes": arrays["classes"].tolist(),
        "feature_names": arrays["feature_names"].tolist(),
        **info,
        "libraries": library_versions(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(out_dir / MODEL_FILE, payload)
    text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
    _atomic_write(out_dir / METADATA_FILE, text.encode())
    return ExportedModel(out_dir, metadata["model_version"], digest, metadata)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a reader never sees half a model."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def export_info(dataset: Dataset, result: TrainResult, gate: GateResult) -> dict[str, Any]:
    """What metadata.json records beside the model: dataset, metrics, training, gate."""
    return {
        "dataset": dataset.info(),
        "metrics": result.metrics,
        "training": result.training,
        "gate": gate.as_dict(),
    }


def model_version_of(result: TrainResult) -> str:
    """The version an export of the model would carry (without writing it)."""
    payload = npz_bytes(knn_arrays(as_knn(result.estimator), list(FEATURES)))
    return hashlib.sha256(payload).hexdigest()[:12]
