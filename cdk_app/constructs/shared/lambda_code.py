"""A Lambda code asset holding one handler's module and the `training` modules it imports.

Each function ships only what it runs: no ML code, no CLI, and an edit to a module a handler
does not import leaves that function's asset, and so its deployment, unchanged.
"""

from __future__ import annotations

import ast
import hashlib
import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "training"


def _source(module: str) -> Path | None:
    """The file of a `training` module or package; None for a name that is not one."""
    base = ROOT.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def _imported(path: Path, module: str) -> set[str]:
    """The `training` modules a file imports, at any depth of the file (lazy imports count)."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            origin = ".".join(filter(None, (base, node.module)))
            names.add(origin)
            # `from training.notify import context` names a submodule, not an attribute.
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == PACKAGE and _source(name)}


def closure(module: str) -> dict[str, Path]:
    """Every `training` module `module` needs to import: itself, its imports, their packages."""
    found: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = _source(name)
        if name in found or path is None:
            continue
        found[name] = path
        parts = name.split(".")
        # Importing a module runs every package __init__ above it.
        pending.extend(".".join(parts[:depth]) for depth in range(1, len(parts)))
        pending.extend(_imported(path, name))
    if module not in found:
        raise ValueError(f"handler module {module!r} has no file under {ROOT / PACKAGE}")
    return found


@jsii.implements(cdk.ILocalBundling)
class _StageModules:
    """Copies the closure of one handler module, laid out as `training/...`."""

    def __init__(self, module: str) -> None:
        self.files = sorted(closure(module).values())

    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        """Copy the files into the asset folder; no Docker, no network."""
        for path in self.files:
            target = Path(output_dir) / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return True


def _digest(files: list[Path]) -> str:
    """A hash of the files' paths and bytes: the asset changes exactly when they do."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(ROOT)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def handler_code(handler: str) -> lambda_.Code:
    """The code asset of a handler `training.<...>.<module>.<function>`, hashed by content."""
    stage = _StageModules(handler.rpartition(".")[0])
    return lambda_.Code.from_asset(
        str(ROOT / PACKAGE),
        # A custom hash, not OUTPUT: CDK caches bundling by source folder and options, which
        # every handler shares, so only the hash tells one handler's asset from another's.
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=_digest(stage.files),
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds. CDK requires an image regardless.
            image=cdk.DockerImage.from_registry("public.ecr.aws/docker/library/busybox"),
            local=stage,
        ),
    )
