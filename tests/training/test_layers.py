"""training/ is layered by runtime: each module imports only its own layer and those below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[2] / "training"

# Lowest first, as docs/architecture.md#code-layout lists them: a control-plane Lambda must not
# pull in the ML code or the CLI, the instance run must not pull in the CLI.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("training.contract", "training.exit_codes"),
    ("training.aws",),
    ("training.registry",),
    ("training.control",),
    ("training.ml",),
    ("training.instance",),
    ("training.cli", "training.__main__"),
)


def layer(module: str) -> int:
    """The index in LAYERS of the layer that holds `module`."""
    for index, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def module_name(path: Path) -> str:
    """The dotted name of a file under training/."""
    parts = path.relative_to(TRAINING.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def training_imports(path: Path) -> set[str]:
    """Every training.* module the file imports, at the top, in functions or for type checking."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] == "training"}


# The package's own __init__ holds no code; every other module has a layer.
MODULES = sorted(path for path in TRAINING.rglob("*.py") if path != TRAINING / "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(TRAINING)))
def test_imports_point_down(path: Path) -> None:
    own = layer(module_name(path))
    upward = sorted(name for name in training_imports(path) if layer(name) > own)
    assert not upward, f"{module_name(path)} imports a higher layer: {upward}"


def test_the_package_itself_imports_nothing() -> None:
    assert training_imports(TRAINING / "__init__.py") == set()


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    source = tmp_path / "handler.py"
    source.write_text("def f():\n    from training.ml.train import train\n")
    assert layer(next(iter(training_imports(source)))) > layer("training.control.launcher")
