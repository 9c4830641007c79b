"""What the registry says about the live model, as facts for a message; never raises."""

from __future__ import annotations

import logging

from training.aws import error_reason, log
from training.registry import Pointer, Registry

_log = logging.getLogger(__name__)
UNREADABLE = "could not be read"


def _model(registry: Registry, pointer: Pointer | None) -> str:
    """`<version> (dataset <version>)`, or what is known without a pointer."""
    if pointer is None:
        return "none in the registry (the model the first deploy built serves)"
    model = registry.get_model(pointer.model_version)
    dataset = model.dataset_version if model and model.dataset_version else "unknown"
    return f"{pointer.model_version} (dataset {dataset})"


def live_facts(registry: Registry) -> tuple[list[tuple[str, str]], str | None]:
    """Facts about the live and rollback models, and the rollback target's version.

    If the registry cannot be read the facts say so and the message goes out without them:
    an alarm must reach the team even when DynamoDB is the thing that is broken.
    """
    try:
        live, rollback = registry.live(), registry.rollback()
        facts = [("Live model", _model(registry, live))]
        if live is not None:
            promoted = f"{live.updated_at or 'unknown time'} by {live.updated_by or 'unknown'}"
            if live.reason:
                promoted += f": {live.reason}"
            if live.deployment_id:
                promoted += f" (deployment {live.deployment_id})"
            facts.append(("Promoted", promoted))
        facts.append(("Rollback target", _model(registry, rollback) if rollback else "none"))
    # Any failure, not only AWS's: a malformed item must not cost the team its alarm.
    except Exception as err:  # noqa: BLE001
        log(_log, "registry not read", level=logging.WARNING, error=error_reason(err))
        return [("Registry", f"{UNREADABLE} ({type(err).__name__}); run make status")], None
    return facts, None if rollback is None else rollback.model_version
