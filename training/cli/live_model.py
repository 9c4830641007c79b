"""Fetch the live model's files from its image in ECR, so a deploy bakes the live model.

A model image's last layer is `COPY model/` (lambda_image/Dockerfile and model.Dockerfile), so
the files are read from that one small layer with the ECR API: no Docker, no image pull. The
model version is the sha256 of `model.npz`, so the files are checked against the registry.
Standard library and boto3 only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.instance.docker import SINGLE_IMAGE_MANIFESTS
from training.registry import Registry

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

MODEL_FILES = ("model.npz", "metadata.json")
# Where the Dockerfiles copy model/: ${LAMBDA_TASK_ROOT}/model/, LAMBDA_TASK_ROOT=/var/task.
LAYER_MODEL_DIR = "var/task/model/"
# A model layer is a few kilobytes; anything near this is not one.
_MAX_LAYER_BYTES = 64 * 1024 * 1024


class LiveModelError(RuntimeError):
    """The live model's files could not be fetched or do not match the registry."""


@dataclass(frozen=True)
class FetchedModel:
    """Which model was written where, from which image."""

    model_version: str
    image: str
    out_dir: Path


Download = Callable[[str], bytes]


def download(url: str) -> bytes:
    """GET a presigned layer URL (ECR's GetDownloadUrlForLayer answer)."""
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - ECR's https URL
        return bytes(response.read(_MAX_LAYER_BYTES + 1))


def fetch_live_model(
    registry: Registry, ecr: ECRClient, out_dir: Path, *, get: Download = download
) -> FetchedModel | None:
    """Write the live model's files into `out_dir`; None (nothing written) when none is live."""
    live = registry.live()
    if live is None:
        return None
    model = registry.get_model(live.model_version)
    repository = model.repository if model is not None else None
    digest = live.image_digest
    if not repository or not digest:
        raise LiveModelError(
            f"the live model {live.model_version} has no registered image (repository "
            f"{repository!r}, digest {digest!r}); nothing to fetch"
        )
    images = ecr.batch_get_image(
        repositoryName=repository,
        imageIds=[{"imageDigest": digest}],
        acceptedMediaTypes=list(SINGLE_IMAGE_MANIFESTS),
    )["images"]
    if not images:
        raise LiveModelError(f"image {repository}@{digest} of the live model is not in ECR")
    layers = json.loads(images[0]["imageManifest"]).get("layers") or []
    if not layers:
        raise LiveModelError(f"image {repository}@{digest} has no layers")
    layer = str(layers[-1]["digest"])
    url = ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=layer)
    blob = get(url["downloadUrl"])
    if len(blob) > _MAX_LAYER_BYTES or f"sha256:{hashlib.sha256(blob).hexdigest()}" != layer:
        raise LiveModelError(f"layer {layer} of {repository}@{digest} did not download intact")
    files = model_files(blob)
    found = hashlib.sha256(files["model.npz"]).hexdigest()[:12]
    if found != live.model_version:
        raise LiveModelError(
            f"the last layer of {repository}@{digest} holds model {found}, not the live model "
            f"{live.model_version}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp = out_dir / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(out_dir / name)
    return FetchedModel(live.model_version, f"{repository}@{digest}", out_dir)


def model_files(layer: bytes) -> dict[str, bytes]:
    """`model.npz` and `metadata.json` from a (gzip-compressed or plain) layer tarball."""
    data = gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./")
            if member.isfile() and name.startswith(LAYER_MODEL_DIR):
                base = name[len(LAYER_MODEL_DIR) :]
                extracted = tar.extractfile(member)
                if base in MODEL_FILES and extracted is not None:
                    found[base] = extracted.read()
    missing = [name for name in MODEL_FILES if name not in found]
    if missing:
        raise LiveModelError(f"the image's last layer has no {LAYER_MODEL_DIR}{missing[0]}")
    return found
