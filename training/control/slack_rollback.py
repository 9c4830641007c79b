"""Lambda: roll back to the registry's rollback target when someone presses the Slack button.

AWS Chatbot runs the custom action's `lambda invoke` with the channel's role and passes the
payload the action's command text names (cdk_app/constructs/observability/slack_channel.py);
Lambda itself tells a function nothing about who invoked it, so who asked comes from that payload
(`by`, the name the person enters when Chatbot prompts for it). The rollback is
training.control.promotion.rollback, as `make rollback` runs it: all at once, guard alarms
overridden, recorded in the registry's history with the actor and the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from training.aws import configure_logging, log
from training.contract import REQUESTED_BY
from training.control.promotion import rollback
from training.control.promotion_services import (
    NothingToRollBackError,
    PromotionRefusedError,
    PromotionServices,
    PromotionSettings,
)

ACTOR_PREFIX = "slack:"
UNNAMED = "unnamed"
# Slack display names are free text: keep a name the registry and the logs can show safely.
_NAME = re.compile(r"[^A-Za-z0-9._@+-]")
_NAME_LIMIT = 64

_log = logging.getLogger(__name__)


def connect_services(settings: PromotionSettings, *, actor: str) -> PromotionServices:
    """The real AWS clients and registry (a seam for tests)."""
    return PromotionServices.connect(settings, actor=actor)


def requester(event: Any) -> str:
    """Who asked, from the invocation payload; `unnamed` if the payload names nobody.

    A variable Chatbot did not fill in arrives as its literal text (`$by`): that
    names nobody either.
    """
    named = event.get(REQUESTED_BY) if isinstance(event, Mapping) else None
    if not isinstance(named, str) or named.strip().startswith("$"):
        return UNNAMED
    cleaned = _NAME.sub("", named.strip().replace(" ", "."))[:_NAME_LIMIT]
    return cleaned or UNNAMED


def roll_back_from_slack(event: Any, services: PromotionServices) -> dict[str, Any]:
    """Roll back to the rollback target for the person the payload names; say what happened.

    A refusal (no rollback target, a deployment still running, the target already live)
    changes nothing and comes back as a readable message for the channel, not an error.
    """
    who = requester(event)
    actor = f"{ACTOR_PREFIX}{who}"
    reason = f"rollback from Slack by {who}"
    try:
        promotion = rollback(actor=actor, reason=reason, services=services)
    except NothingToRollBackError:
        message = (
            "Nothing was rolled back: the registry records no rollback model (no model was "
            "live before the current one). Name the model to return to from a laptop: "
            "make rollback TO=<model version> (docs/runbook.md)."
        )
        log(_log, "rollback refused", level=logging.WARNING, actor=actor, reason=message)
        return {"status": "refused", "message": message}
    except PromotionRefusedError as err:
        message = f"Nothing was rolled back: {err}."
        log(_log, "rollback refused", level=logging.WARNING, actor=actor, reason=str(err))
        return {"status": "refused", "message": message}
    log(
        _log,
        "rollback started",
        actor=actor,
        model_version=promotion.model_version,
        previous_model_version=promotion.previous_model_version,
        deployment_id=promotion.deployment_id,
    )
    return {
        "status": "rolling-back",
        "message": (
            f"Rolling back to model {promotion.model_version} (from "
            f"{promotion.previous_model_version}), all at once: CodeDeploy deployment "
            f"{promotion.deployment_id}, requested by {who}."
        ),
        "model_version": promotion.model_version,
        "previous_model_version": promotion.previous_model_version,
        "deployment_id": promotion.deployment_id,
        "actor": actor,
    }


def handler(event: Any, context: object) -> dict[str, Any]:
    """Lambda entry point: settings from the environment, then roll back."""
    configure_logging()
    settings = PromotionSettings.from_env()
    actor = f"{ACTOR_PREFIX}{requester(event)}"
    return roll_back_from_slack(event, connect_services(settings, actor=actor))
