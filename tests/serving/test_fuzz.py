"""Property-based fuzzing of the OpenAPI contract, in process: schemathesis drives the ASGI app.

Schemathesis reads the app's own /openapi.json and runs its examples, coverage and fuzzing
phases with valid and invalid data (its "all" generation modes) against every operation,
through its in-process ASGI transport. Every response is checked against the document:
no 5xx, status code, content type, headers and body as documented, 405 for an undeclared
method, invalid data refused and valid data accepted. Seeded and derandomized, so every run
sends the same ~1,200 requests; the figures print at the end of the session.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import Case, GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.specs.openapi.checks import unsupported_method
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.main import create_app
from app.settings import Settings
from tests.serving.support import FUZZ_SUMMARY, export, fitted

SEED = 20261127
# Fuzzing-phase examples per operation; the examples and coverage phases add their own.
EXAMPLES_PER_OPERATION = 500
MIN_REQUESTS = 1000
# Undocumented aliases the app serves on purpose (app/middleware.py); the document keeps one
# route per path, so an alias answers like its target instead of with a 405.
ALIASES = frozenset({("GET", "/predict"), ("POST", "/predict/")})


class Tally:
    """Responses the app started while fuzzing: by operation under test and by status."""

    def __init__(self) -> None:
        self.operation = ""
        self.by_operation: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()

    def reset(self) -> None:
        """Forget everything counted so far (the schema's own download)."""
        self.by_operation.clear()
        self.by_status.clear()


TALLY = Tally()


class CountingApp:
    """The app, counting each response it starts into TALLY."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, noting every response's status."""

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                TALLY.by_operation[TALLY.operation] += 1
                TALLY.by_status[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counted)


def contract_app() -> FastAPI:
    """The app around a model exported as the trainer exports it (loaded, then the files go)."""
    with tempfile.TemporaryDirectory() as tmp:
        return create_app(Settings(model_dir=export(fitted(), Path(tmp))))


def load_schema() -> schemathesis.BaseSchema:
    """The app's OpenAPI document, fetched through ASGI, with the generation settings."""
    config = schemathesis.Config(seed=SEED)
    project = config.projects.default
    project.generation.update(
        modes=list(GenerationMode),  # positive and negative data
        max_examples=EXAMPLES_PER_OPERATION,
        deterministic=True,
        # No example database: a derandomized run has nothing to replay.
        database="none",
    )
    # Literals mined from whatever modules the session imported would make the cases depend
    # on which tests ran alongside; the document and the seed alone decide them.
    project.analysis.constants.enabled = False
    # Built at import because the parametrization needs the document; schemathesis's
    # fixture-based loader does not run on this pytest.
    loaded = schemathesis.openapi.from_asgi(
        "/openapi.json", CountingApp(contract_app()), config=config
    )
    TALLY.reset()
    return loaded


schema = load_schema()


@schema.parametrize()
def test_contract(case: Case[Any]) -> None:
    TALLY.operation = case.operation.label
    excluded = [unsupported_method] if (case.method.upper(), case.path) in ALIASES else []
    case.call_and_validate(excluded_checks=excluded)


def test_fuzzing_totals(pytestconfig: pytest.Config) -> None:
    # Runs after the parametrized test above (pytest keeps definition order).
    total = sum(TALLY.by_operation.values())
    server_errors = sum(n for status, n in TALLY.by_status.items() if status >= 500)
    enabled = schema.config.checks
    checks = sorted(
        check.__name__
        for check in CHECKS.get_all()
        if enabled.get_by_name(name=check.__name__).enabled
    )
    lines = [
        f"schemathesis {schemathesis.__version__}, seed {SEED}, derandomized, "
        f"modes positive+negative, {EXAMPLES_PER_OPERATION} fuzzing examples per operation",
        *(f"  {operation}: {n} requests" for operation, n in sorted(TALLY.by_operation.items())),
        f"  total: {total} requests; 5xx: {server_errors}; by status: "
        + ", ".join(f"{status}: {n}" for status, n in sorted(TALLY.by_status.items())),
        f"  checks: {', '.join(checks)}",
    ]
    summary = "\n".join(lines)
    pytestconfig.stash[FUZZ_SUMMARY] = summary
    assert total >= MIN_REQUESTS, f"run the whole module: the contract test made too few\n{summary}"
    assert server_errors == 0, summary
    assert set(TALLY.by_operation) == {
        "GET /predict/",
        "POST /predict",
        "GET /health",
        "GET /model",
    }, summary
