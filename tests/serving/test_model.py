"""The model loader: a damaged, truncated, oversized or foreign file fails at load, clearly."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app import model as model_module
from app.model import KnnModel, ModelLoadError
from tests.serving.support import export, fitted
from training.ml.export import npz_bytes


@pytest.fixture
def copy(model_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the exported model."""
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def rewrite(directory: Path, payload: bytes) -> None:
    """Replace model.npz and make metadata.json's checksum agree, as a careful forger would."""
    (directory / "model.npz").write_bytes(payload)
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata["model_sha256"] = hashlib.sha256(payload).hexdigest()
    (directory / "metadata.json").write_text(json.dumps(metadata))


def arrays_of(directory: Path) -> dict[str, np.ndarray]:
    """The exported arrays, for tampering."""
    with np.load(directory / "model.npz", allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def test_loads_the_export(model_dir: Path) -> None:
    model = KnnModel.load(model_dir)
    assert model.classes == ["setosa", "versicolor", "virginica"]
    assert model.display_names == ["Setosa", "Versicolor", "Virginica"]
    assert model.n_neighbors == 3
    assert model.fit_x.shape == (120, 4)
    assert model.version == json.loads((model_dir / "metadata.json").read_text())["model_version"]


def test_missing_files_say_to_run_make_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="run `make model`"):
        KnnModel.load(tmp_path)


def test_garbage_bytes(copy: Path) -> None:
    rewrite(copy, b"\x00not a zip at all" * 10)
    with pytest.raises(ModelLoadError, match=r"not a readable \.npz archive"):
        KnnModel.load(copy)


def test_truncated_file(copy: Path) -> None:
    payload = (copy / "model.npz").read_bytes()
    rewrite(copy, payload[: len(payload) // 2])
    with pytest.raises(ModelLoadError, match=r"not a readable \.npz archive"):
        KnnModel.load(copy)


def test_checksum_mismatch(copy: Path) -> None:
    payload = bytearray((copy / "model.npz").read_bytes())
    payload[-10] ^= 0xFF
    (copy / "model.npz").write_bytes(bytes(payload))
    with pytest.raises(ModelLoadError, match=r"does not match metadata\.json's model_sha256"):
        KnnModel.load(copy)


def test_oversized_file_is_refused_before_reading(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_module, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(ModelLoadError, match="over the 1000-byte limit"):
        KnnModel.load(copy)


def test_sparse_giant_file_is_refused(copy: Path) -> None:
    # 100 MiB by size, no disk used: the size check must come before any read.
    with (copy / "model.npz").open("r+b") as handle:
        handle.truncate(100 * 1024 * 1024)
    with pytest.raises(ModelLoadError, match="byte limit"):
        KnnModel.load(copy)


class _Payload:
    """Unpickling this would create a file: proof that code from the model file ran."""

    marker: Path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_pickled_object_arrays_are_refused_and_never_run(copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    payload = _Payload()
    payload.marker = marker
    arrays = arrays_of(copy)
    arrays["weights"] = np.array([payload], dtype=object)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w") as entry:
                np.lib.format.write_array(entry, array, allow_pickle=True)
    rewrite(copy, buffer.getvalue())
    with pytest.raises(ModelLoadError, match="refused to load"):
        KnnModel.load(copy)
    assert not marker.exists()


def test_a_plain_pickle_is_not_an_npz(copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    payload = _Payload()
    payload.marker = marker
    rewrite(copy, pickle.dumps(payload))
    with pytest.raises(ModelLoadError):
        KnnModel.load(copy)
    assert not marker.exists()


def test_foreign_npz_with_other_arrays(copy: Path) -> None:
    rewrite(copy, npz_bytes({"weights_layer_1": np.zeros((3, 3))}))
    with pytest.raises(ModelLoadError, match="expected arrays"):
        KnnModel.load(copy)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("fit_X", np.zeros((120, 4), dtype=np.float32), "fit_X must be a non-empty 2-D float64"),
        ("fit_X", np.full((120, 4), np.nan), "NaN or infinite"),
        ("y", np.full(120, 7, dtype=np.int64), "labels outside 0..2"),
        ("y", np.zeros(5, dtype=np.int64), "one label per row"),
        ("classes", np.array([1, 2, 3]), "non-empty 1-D string array"),
        ("feature_names", np.array(["a", "b"]), "name every column"),
        ("n_neighbors", np.array(500), "n_neighbors must be an integer from 1"),
        ("n_neighbors", np.array([3, 3]), "n_neighbors must be an integer from 1"),
        ("weights", np.array("cosine"), "weights must be 'uniform' or 'distance'"),
    ],
)
def test_wrong_array_contents(copy: Path, name: str, value: np.ndarray, message: str) -> None:
    arrays = arrays_of(copy)
    arrays[name] = value
    rewrite(copy, npz_bytes(arrays))
    with pytest.raises(ModelLoadError, match=message):
        KnnModel.load(copy)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"format_version": 2}', "format_version 2 is not supported"),
        (b'{"format_version": 1, "model_sha256": "x"}', "model_version is missing"),
    ],
)
def test_bad_metadata(copy: Path, content: bytes, message: str) -> None:
    (copy / "metadata.json").write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        KnnModel.load(copy)


def test_export_is_deterministic(model_dir: Path, tmp_path: Path) -> None:
    again = export(fitted(), tmp_path / "again")
    assert (again / "model.npz").read_bytes() == (model_dir / "model.npz").read_bytes()
