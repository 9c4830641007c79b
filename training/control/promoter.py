"""Lambdas: promote each newly registered model (promoter) and settle ended deployments (watcher).

`handler` takes the registrar's "Model Registered" event and promotes that model through the
CodeDeploy canary; `deployment_handler` takes CodeDeploy's state-change events and settles the
registry, the live image parameter, the ECR tags and the CloudFront cache. The logic is in
training.control.promotion; these only parse, connect and log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from training.aws import configure_logging, log
from training.contract import MODEL_REGISTERED, REGISTRY_EVENT_SOURCE
from training.control.promotion import promote
from training.control.promotion_services import (
    AlreadyLiveError,
    EventError,
    PromotionRefusedError,
    PromotionServices,
    PromotionSettings,
)
from training.control.settlement import settle_deployment

PROMOTER, WATCHER = "promoter", "watcher"

_log = logging.getLogger(__name__)


def connect_services(settings: PromotionSettings, *, actor: str) -> PromotionServices:
    """The real AWS clients and registry (a seam for tests)."""
    return PromotionServices.connect(settings, actor=actor)


def promotion_reason(detail: Mapping[str, Any]) -> str:
    """Why the promoter promotes: the dataset version and the accuracy of the new model."""
    accuracy = detail.get("accuracy")
    shown = (
        f"{accuracy:.4f}"
        if isinstance(accuracy, int | float) and not isinstance(accuracy, bool)
        else "unknown"
    )
    return f"new model registered: {detail.get('dataset_version') or 'unknown'} accuracy {shown}"


def promote_registered(event: Mapping[str, Any], services: PromotionServices) -> dict[str, Any]:
    """Promote the model a "Model Registered" event names; return what was done.

    A model that is already live (a retried or repeated event) is skipped without error, so a
    retry cannot loop; any other refusal raises, so the event lands in the dead-letter queue.
    """
    detail = event.get("detail")
    if (
        event.get("source") != REGISTRY_EVENT_SOURCE
        or event.get("detail-type") != MODEL_REGISTERED
        or not isinstance(detail, Mapping)
    ):
        raise EventError(
            f"not a {MODEL_REGISTERED} event: source {event.get('source')!r}, "
            f"detail-type {event.get('detail-type')!r}"
        )
    model_version = detail.get("model_version")
    if not isinstance(model_version, str) or not model_version:
        raise EventError(f"event {event.get('id')} names no model_version")
    reason = promotion_reason(detail)
    try:
        promotion = promote(model_version, actor=PROMOTER, reason=reason, services=services)
    except AlreadyLiveError as err:
        log(_log, "promotion skipped", model_version=model_version, reason=str(err))
        return {"status": "skipped", "model_version": model_version, "reason": str(err)}
    except PromotionRefusedError as err:
        log(
            _log,
            "promotion refused",
            level=logging.ERROR,
            model_version=model_version,
            reason=str(err),
        )
        raise
    log(
        _log,
        "promotion started",
        event_id=event.get("id"),
        model_version=model_version,
        previous_model_version=promotion.previous_model_version,
        deployment_id=promotion.deployment_id,
        lambda_version=promotion.lambda_version,
        previous_lambda_version=promotion.previous_lambda_version,
        reason=reason,
    )
    return {
        "status": "deploying",
        "model_version": model_version,
        "previous_model_version": promotion.previous_model_version,
        "deployment_id": promotion.deployment_id,
        "lambda_version": promotion.lambda_version,
    }


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point of the promoter: settings from the environment, then promote."""
    configure_logging()
    settings = PromotionSettings.from_env()
    # Clients are built per invocation: promotions are rare, and a fresh client always sees
    # the current environment.
    return promote_registered(event, connect_services(settings, actor=PROMOTER))


def deployment_handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point of the watcher: settle the deployment the event reports on."""
    configure_logging()
    settings = PromotionSettings.from_env()
    services = connect_services(settings, actor=WATCHER)
    detail = event.get("detail")
    state = detail.get("state") if isinstance(detail, Mapping) else None
    settlement = settle_deployment(event, services, actor=WATCHER)
    if settlement.action == "ignored":
        log(
            _log,
            "deployment event ignored",
            event_id=event.get("id"),
            deployment_id=settlement.deployment_id,
            state=state,
            reason=settlement.reason,
        )
    return {
        "status": settlement.action,
        "deployment_id": settlement.deployment_id,
        "model_version": settlement.model_version,
        "reason": settlement.reason,
    }
