"""The serving image without Docker: its files laid out as the Dockerfile says, in a bare venv.

Catches "works in tests, ImportError in Lambda": only lambda_image/requirements.txt is
installed, the task root is built from the Dockerfile's COPY lines, and the handler named by
its CMD answers real API Gateway events in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from tests.serving.support import EVENTS

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ROOT / "lambda_image"
WHEELS = ROOT / ".venv" / "wheelhouse"
FORBIDDEN = ("sklearn", "scipy", "joblib")

PROBE = """
import importlib, json, sys
module, _, name = sys.argv[1].rpartition(".")
handler = getattr(importlib.import_module(module), name)
results = {}
for path in sys.argv[2:]:
    with open(path) as f:
        response = handler(json.load(f), None)
    results[path] = {"status": response["statusCode"], "body": json.loads(response["body"])}
heavy = {}
for lib in %r:
    try:
        importlib.import_module(lib)
        heavy[lib] = "importable"
    except ModuleNotFoundError:
        heavy[lib] = "missing"
loaded = sorted(m for m in sys.modules if m.split(".")[0] in %r)
print(json.dumps({"results": results, "heavy": heavy, "loaded_before": loaded}))
"""


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (keyword, arguments), continuation lines joined."""
    text = (CONTEXT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1]) for pair in pairs]


def dockerfile() -> list[list[str]]:
    """Each instruction as shell words, keyword first."""
    return [[keyword, *shlex.split(args)] for keyword, args in instructions()]


def test_dockerfile_uses_the_lambda_python_base_image() -> None:
    [base] = [words[1] for words in dockerfile() if words[0] == "FROM"]
    match = re.fullmatch(r"public\.ecr\.aws/lambda/python:3\.(\d+)", base)
    assert match, base
    assert int(match.group(1)) >= 12


def test_handler_answers_in_a_task_root_built_from_the_dockerfile(tmp_path: Path) -> None:
    assert (CONTEXT / "model" / "model.npz").exists(), "run `make model` (make test does)"
    assert WHEELS.is_dir(), "run `make install`: it fetches the serving wheels for this test"
    task_root = tmp_path / "task"
    task_root.mkdir()
    steps = dockerfile()

    # COPY <src> <dest>: the task root gets exactly what the image gets.
    copies = [words[1:] for words in steps if words[0] == "COPY"]
    assert copies, "the Dockerfile copies nothing"
    for src, dest in copies:
        target = Path(dest.replace("${LAMBDA_TASK_ROOT}", str(task_root)))
        source = CONTEXT / src
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)

    # RUN pip install ... -r requirements.txt --target task root (offline, from the wheelhouse).
    [pip_run] = [words for words in steps if words[0] == "RUN" and "pip" in words]
    assert "--target" in pip_run
    assert "-r" in pip_run
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
         str(WHEELS), "--target", str(task_root), "-r", str(task_root / "requirements.txt")],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip

    bare = tmp_path / "venv"
    venv.create(bare, with_pip=False)
    [cmd] = [args for keyword, args in instructions() if keyword == "CMD"]
    [handler_path] = json.loads(cmd)
    events = [EVENTS / "rest_v1_get_predict.json", EVENTS / "http_v2_post_predict.json"]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(task_root),
        "LAMBDA_TASK_ROOT": str(task_root),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    proc = subprocess.run(
        [str(bare / "bin" / "python"), "-c", PROBE % (FORBIDDEN, FORBIDDEN), handler_path]
        + [str(e) for e in events],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    rest, http = (report["results"][str(e)] for e in events)
    assert rest["status"] == 200
    assert rest["body"]["iris_type"] == "Setosa"
    assert http["status"] == 200
    assert [p["iris_type"] for p in http["body"]["predictions"]] == ["Setosa", "Virginica"]
    # The image carries neither scikit-learn, scipy nor joblib, and serving never imports them.
    assert report["loaded_before"] == []
    assert report["heavy"] == dict.fromkeys(FORBIDDEN, "missing")


def test_dockerignore_admits_only_what_the_dockerfile_copies() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (CONTEXT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {words[1].rstrip("/") for words in dockerfile() if words[0] == "COPY"}
    assert allowed == copied
    assert os.path.exists(CONTEXT / "requirements.txt")
