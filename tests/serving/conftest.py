"""Serving fixtures: a model exported by the trainer's code, and apps and handlers around it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sklearn.neighbors import KNeighborsClassifier

from app.adapter import build_handler
from app.main import create_app
from app.model import KnnModel
from app.settings import Settings
from tests.serving.support import FUZZ_SUMMARY, Handler, export, fitted


@pytest.fixture(scope="session")
def estimator() -> KNeighborsClassifier:
    """The scikit-learn estimator behind the served model."""
    return fitted()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, estimator: KNeighborsClassifier) -> Path:
    """model.npz + metadata.json exported from `estimator`."""
    return export(estimator, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def model(model_dir: Path) -> KnnModel:
    """The served model, loaded from the export."""
    return KnnModel.load(model_dir)


@pytest.fixture(scope="session")
def app(model_dir: Path) -> FastAPI:
    """The API serving `model`, with default limits."""
    return create_app(Settings(model_dir=model_dir))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An HTTP client for `app`."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def handler(app: FastAPI) -> Handler:
    """The Lambda handler around `app`, as app/handler.py builds it."""
    return build_handler(app)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print the fuzzing figures when test_fuzz.py ran."""
    summary = config.stash.get(FUZZ_SUMMARY, None)
    if summary is not None:
        terminalreporter.write_sep("-", "OpenAPI contract fuzzing")
        terminalreporter.write_line(summary)
