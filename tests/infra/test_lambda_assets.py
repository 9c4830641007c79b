"""Each Lambda asset in the cloud assembly holds only what its handler imports."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from stacks.application import BuiltApp

# The Lambda Python runtime has the standard library and boto3; numpy and scikit-learn are the
# trainer's, and the CLI and ML code are not the handlers' business.
FORBIDDEN = ("numpy", "sklearn", "scipy", "training.cli", "training.ml", "training.instance")


def imports(root: Path) -> dict[str, set[tuple[str, str]]]:
    """Each .py file's imports as (module, name) pairs, at any depth (lazy imports count).

    `import a.b` is ("a.b", ""); `from a import b` is ("a", "b"), where b may be a submodule.
    """
    found: dict[str, set[tuple[str, str]]] = {}
    for path in sorted(root.rglob("*.py")):
        pairs: set[tuple[str, str]] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                pairs.update((alias.name, "") for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                pairs.update((node.module, alias.name) for alias in node.names)
        found[str(path.relative_to(root))] = pairs
    return found


def _is(name: str, bad: str) -> bool:
    """Whether module `name` is `bad` or inside it."""
    return name == bad or name.startswith(f"{bad}.")


def forbidden(root: Path) -> list[str]:
    """`file: module` for each import of a forbidden module (or submodule) under `root`."""
    return sorted(
        {
            f"{file}: {module}"
            for file, pairs in imports(root).items()
            for module, name in pairs
            if any(_is(module, bad) or _is(f"{module}.{name}", bad) for bad in FORBIDDEN)
        }
    )


def _ships(root: Path, module: str) -> bool:
    """Whether the module is a file or a package in the asset."""
    base = root.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def missing(root: Path) -> list[str]:
    """`file: module` for each `training` module imported under `root` but not shipped in it."""
    return sorted(
        {
            f"{file}: {module}"
            for file, pairs in imports(root).items()
            for module, _ in pairs
            if module.split(".")[0] == "training" and not _ships(root, module)
        }
    )


def python_assets(built: BuiltApp) -> dict[str, tuple[str, Path]]:
    """Each zip-packaged Python function: logical id -> (handler, its asset folder)."""
    outdir = Path(built.app.outdir)
    assets: dict[str, tuple[str, Path]] = {}
    for template in outdir.glob("*.template.json"):
        for logical_id, resource in json.loads(template.read_text())["Resources"].items():
            props = resource.get("Properties", {})
            if resource["Type"] != "AWS::Lambda::Function" or "Handler" not in props:
                continue
            if not str(props.get("Runtime", "")).startswith("python"):
                continue
            folder = outdir / resource["Metadata"]["aws:asset:path"]
            assets[f"{template.stem}/{logical_id}"] = (props["Handler"], folder)
    return assets


@pytest.fixture(scope="module")
def assets(built: BuiltApp) -> dict[str, tuple[str, Path]]:
    """Our Python functions' assets; there are many, so an empty scan cannot pass."""
    found = {
        name: (handler, folder)
        for name, (handler, folder) in python_assets(built).items()
        if handler.startswith("training.")
    }
    assert len(found) >= 8, sorted(found)
    return found


def test_no_lambda_asset_imports_numpy_sklearn_the_cli_or_the_ml_code(
    assets: dict[str, tuple[str, Path]],
) -> None:
    """The Python runtime has no numpy or scikit-learn (lambda-python runtimes: stdlib + SDK)."""
    found = {name: forbidden(folder) for name, (_, folder) in assets.items()}
    assert {name: bad for name, bad in found.items() if bad} == {}


def test_each_asset_holds_its_handler_and_every_module_it_imports(
    assets: dict[str, tuple[str, Path]],
) -> None:
    """A handler's imports all resolve inside its own asset, and its module is there."""
    for name, (handler, folder) in assets.items():
        module = handler.rpartition(".")[0]
        assert folder.joinpath(*module.split(".")).with_suffix(".py").is_file(), (name, handler)
        assert missing(folder) == [], name


def test_an_asset_holds_no_module_its_handler_does_not_import(
    assets: dict[str, tuple[str, Path]],
) -> None:
    """The authorizer needs none of the registry, so editing it redeploys only itself."""
    (folder,) = {f for handler, f in assets.values() if "origin_authorizer" in handler}
    shipped = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.py"))
    assert shipped == [
        "training/__init__.py",
        "training/aws.py",
        "training/contract.py",
        "training/control/__init__.py",
        "training/control/origin_authorizer.py",
    ]


def test_the_scan_finds_a_forbidden_import(tmp_path: Path) -> None:
    """The checker itself: an asset that imports scikit-learn lazily is caught."""
    module = tmp_path / "training" / "control" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text("def handler():\n    from sklearn.neighbors import KNeighborsClassifier\n")
    assert forbidden(tmp_path) == ["training/control/bad.py: sklearn.neighbors"]
    assert missing(tmp_path) == []
    module.write_text("from training.registry import Registry\n")
    assert missing(tmp_path) == ["training/control/bad.py: training.registry"]
    module.write_text("from training import ml\n")
    assert forbidden(tmp_path) == ["training/control/bad.py: training"]
