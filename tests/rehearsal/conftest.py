"""The `rehearsal` marker: the deploy rehearsal against MiniStack (`REHEARSAL=1` runs it)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "rehearsal: deploys the app into a local MiniStack (about a minute); REHEARSAL=1 runs it",
    )
