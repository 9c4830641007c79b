"""`make retrain-local`: the whole pipeline on an in-process moto server, v1 live, then v2."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from training.instance.docker import context_digest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "retrain_local.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("retrain_local", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _keep_the_log_level() -> Iterator[None]:
    """The script configures logging for itself; later tests keep theirs."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


def test_retrain_local_registers_v2_gated_against_a_live_v1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    before = dict(os.environ)

    assert load_script().main(["--out", str(tmp_path)]) == 0

    assert dict(os.environ) == before
    out = capsys.readouterr().out
    live = re.search(r"^live: +([0-9a-f]{12})  (sha256:[0-9a-f]{64})", out, re.MULTILINE)
    assert live is not None
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ")}
    v2 = next(row for row in rows.values() if row[3:4] == ["iris/v2"])
    model_version, status, accuracy, _, tag, digest = v2[:6]
    assert (status, accuracy, tag) == ("candidate", "1.0000", f"v2-{model_version}")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert model_version != live[1]
    v2_run = next(row for row in rows.values() if row[1:3] == ["succeeded", "iris/v2"])
    assert model_version in v2_run
    # The local build: the build context with the exported v2 model, pushed to (moto's) ECR
    # as a one-layer image whose digest ECR computed.
    [image] = tmp_path.glob(f"images/*v2-{model_version}")
    assert digest != context_digest(image)
    assert [p.name for p in sorted((image / "model").iterdir())] == ["metadata.json", "model.npz"]
