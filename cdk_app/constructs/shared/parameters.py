"""Names of the SSM parameters that link stacks at run time, spelled once for every stack."""

from __future__ import annotations


def live_model_parameter(prefix: str) -> str:
    """The live model version: the pipeline stack seeds it once, promotion moves it.

    The api stack reads it at change-set creation (an SSM parameter type), so it must exist
    before that stack is created or updated: it lives in the pipeline stack, deployed earlier.
    """
    return f"/{prefix}/serving/live-model-version"


def runtime_image_parameter(prefix: str) -> str:
    """The serving runtime image that `cdk deploy` shipped; the trainer builds on top of it."""
    return f"/{prefix}/serving/runtime-image-uri"
