#!/usr/bin/env python3
"""CDK entry point: read config -> build the stacks (five; six with WAF) -> nag packs -> synth."""

import os
import sys

try:
    import aws_cdk as cdk
except ImportError:  # `cdk synth` with a python that is not the project's venv
    sys.exit("aws-cdk-lib is not importable: run `make install`, then `source .venv/bin/activate`")

from cdk_app.config import ConfigError
from stacks.application import ModelArtifactMissingError, build


def main() -> None:
    """Synthesize the app; a bad config or a nag finding stops with a readable message."""
    app = cdk.App()
    try:
        # The CLI sets CDK_DEFAULT_ACCOUNT from the caller's credentials; without it the
        # stacks stay account-agnostic, which is all `cdk synth` needs.
        build(app, account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
    except ConfigError as exc:
        sys.exit(f"config error: {exc}")
    except ModelArtifactMissingError as exc:
        sys.exit(f"error: {exc}")
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        # The report already names each finding and construct; a Python traceback adds noise.
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
