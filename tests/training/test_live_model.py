"""`fetch-live`: the live model's files read back from its image's last layer, checked."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from tests.training.fakes import REPOSITORY, REPOSITORY_URI
from training.cli.live_model import LiveModelError, fetch_live_model, model_files
from training.registry import ImageRecord, ModelRecord, Registry

MODEL = b"model bytes"
VERSION = hashlib.sha256(MODEL).hexdigest()[:12]
DIGEST = "sha256:" + "ab" * 32
URL = "https://prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com/layer"


def layer(files: dict[str, bytes], root: str = "var/task/model/") -> bytes:
    """A gzip-compressed layer tarball as `COPY model/ ${LAMBDA_TASK_ROOT}/model/` makes it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(root + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def live(registry: Registry, version: str = VERSION) -> None:
    """A registered, live model whose image is DIGEST in the model repository."""
    registry.record_model(
        ModelRecord(
            model_version=version,
            status="candidate",
            status_reason="passed",
            run_id="20261127T140501Z-00000001",
            dataset_name="iris",
            dataset_version="v1",
            dataset_uri="s3://data/datasets/iris/v1/data.csv",
            dataset_sha256="e" * 64,
            metrics={"accuracy": 1.0},
            gate={"passed": True},
        )
    )
    registry.register_image(
        ImageRecord(
            version, "v1", f"v1-{version}", DIGEST, f"{REPOSITORY_URI}@{DIGEST}", REPOSITORY
        )
    )
    registry.set_live(version, expected_revision=0, reason="seed")


def ecr_answering(blob: bytes) -> tuple[object, Stubber]:
    """An ECR client whose BatchGetImage and GetDownloadUrlForLayer answer for `blob`."""
    ecr = boto3.client("ecr", region_name="eu-west-1")
    stub = Stubber(ecr)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "layers": [{"digest": "sha256:" + "00" * 32}, {"digest": digest}],
    }
    stub.add_response(
        "batch_get_image",
        {"images": [{"imageManifest": json.dumps(manifest)}], "failures": []},
        {
            "repositoryName": REPOSITORY,
            "imageIds": [{"imageDigest": DIGEST}],
            "acceptedMediaTypes": [
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.oci.image.manifest.v1+json",
            ],
        },
    )
    stub.add_response(
        "get_download_url_for_layer",
        {"downloadUrl": URL, "layerDigest": digest},
        {"repositoryName": REPOSITORY, "layerDigest": digest},
    )
    stub.activate()
    return ecr, stub


def test_the_live_models_files_are_written_from_the_last_layer(
    registry: Registry, tmp_path: Path
) -> None:
    live(registry)
    blob = layer({"model.npz": MODEL, "metadata.json": b"{}"})
    ecr, stub = ecr_answering(blob)
    fetched = fetch_live_model(registry, ecr, tmp_path / "model", get=lambda url: blob)  # type: ignore[arg-type]
    stub.assert_no_pending_responses()
    assert fetched is not None
    assert (fetched.model_version, fetched.image) == (VERSION, f"{REPOSITORY}@{DIGEST}")
    assert (tmp_path / "model" / "model.npz").read_bytes() == MODEL
    assert (tmp_path / "model" / "metadata.json").read_bytes() == b"{}"


def test_nothing_live_writes_nothing(registry: Registry, tmp_path: Path) -> None:
    ecr = boto3.client("ecr", region_name="eu-west-1")
    assert fetch_live_model(registry, ecr, tmp_path / "model") is None
    assert not (tmp_path / "model").exists()


def test_files_of_another_model_are_refused(registry: Registry, tmp_path: Path) -> None:
    live(registry)
    blob = layer({"model.npz": b"other", "metadata.json": b"{}"})
    ecr, _ = ecr_answering(blob)
    with pytest.raises(LiveModelError, match=f"not the live model {VERSION}"):
        fetch_live_model(registry, ecr, tmp_path / "model", get=lambda url: blob)  # type: ignore[arg-type]
    assert not (tmp_path / "model").exists()


def test_a_corrupted_download_is_refused(registry: Registry, tmp_path: Path) -> None:
    live(registry)
    blob = layer({"model.npz": MODEL, "metadata.json": b"{}"})
    ecr, _ = ecr_answering(blob)
    with pytest.raises(LiveModelError, match="did not download intact"):
        fetch_live_model(registry, ecr, tmp_path / "model", get=lambda url: blob[:-1])  # type: ignore[arg-type]


def test_a_layer_without_the_model_names_what_is_missing() -> None:
    with pytest.raises(LiveModelError, match=r"no var/task/model/metadata\.json"):
        model_files(layer({"model.npz": MODEL}))
    # Files elsewhere in the image are not the model.
    with pytest.raises(LiveModelError, match=r"no var/task/model/model\.npz"):
        model_files(layer({"model.npz": MODEL}, root="var/task/app/"))
