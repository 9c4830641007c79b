"""Helpers shared by the tests: build the app the way `cdk synth` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk

from cdk_app import config
from stacks.application import BuiltApp, build

ROOT = Path(__file__).resolve().parent.parent
TEST_ACCOUNT = "123456789012"


def cdk_json_context() -> dict[str, Any]:
    """The context the CDK CLI would pass from cdk.json."""
    return config.cdk_json_context()


# What the CDK CLI adds to the context of every synth (cdk.json's settings aside).
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
}


def build_app(
    outdir: Path, *, serving_dir: Path | None = None, checks: bool = True, **overrides: Any
) -> BuiltApp:
    """Build the app as `cdk synth` does, with context overrides like `-c key=value`."""
    context = {**CLI_CONTEXT, **cdk_json_context(), **overrides}
    app = cdk.App(context=context, outdir=str(outdir))
    if serving_dir is None:
        return build(app, account=TEST_ACCOUNT, checks=checks)
    return build(app, account=TEST_ACCOUNT, serving_dir=serving_dir, checks=checks)
