"""Shared fixtures: the whole CDK app, synthesized once per test session."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from stacks.application import BuiltApp
from tests.support import build_app


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    """The app built from cdk.json and synthesized (nag packs run during synth)."""
    result = build_app(tmp_path_factory.mktemp("cdk.out"))
    result.app.synth()
    return result


@pytest.fixture(scope="session")
def templates(built: BuiltApp) -> dict[str, Template]:
    """Assertion templates of the four regional stacks, keyed data/pipeline/api/observability."""
    return {
        "data": Template.from_stack(built.data),
        "pipeline": Template.from_stack(built.pipeline),
        "api": Template.from_stack(built.api),
        "observability": Template.from_stack(built.observability),
    }
