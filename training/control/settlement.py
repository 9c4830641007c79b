"""Settling a deployment from CodeDeploy's event: the registry, parameter, tags and cache."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from training.aws import log
from training.contract import DEPLOYMENT_STATE_CHANGE
from training.control.promotion_services import (
    CODEDEPLOY_SOURCE,
    DESCRIPTION_PREFIX,
    FAILURE,
    RELEASE_FAILED,
    RELEASE_PREFIX,
    RELEASE_SUCCEEDED,
    STOP,
    SUCCESS,
    DeploymentNotRecordedError,
    EventError,
    PromotionServices,
    Settlement,
)
from training.control.serving_image import (
    invalidate_cache,
    move_tags,
    put_live_parameter,
    restore_latest,
)
from training.registry import DEPLOYED, FAILED, STOPPED, Deployment

_log = logging.getLogger(__name__)


def settle_deployment(
    event: Mapping[str, Any], services: PromotionServices, *, actor: str = "watcher"
) -> Settlement:
    """Record the end of a deployment from its CodeDeploy state-change event.

    SUCCESS invalidates the cached predictions. FAILURE or STOP (CodeDeploy has moved the
    alias back) puts the registry, the live image parameter and the ECR tags back as they were
    before the deployment, and invalidates too: the canary's answers may be cached. A
    duplicate event changes nothing; another application's deployment is ignored.
    """
    detail = event.get("detail")
    if (
        event.get("source") != CODEDEPLOY_SOURCE
        or event.get("detail-type") != DEPLOYMENT_STATE_CHANGE
        or not isinstance(detail, Mapping)
    ):
        raise EventError(
            f"not a CodeDeploy deployment state change: source {event.get('source')!r}, "
            f"detail-type {event.get('detail-type')!r}"
        )
    deployment_id, state = detail.get("deploymentId"), detail.get("state")
    if not isinstance(deployment_id, str) or not deployment_id:
        raise EventError(f"event {event.get('id')} names no deployment")
    settings = services.settings
    ours = (settings.codedeploy_application, settings.deployment_group)
    theirs = (detail.get("application"), detail.get("deploymentGroup"))
    if theirs != ours:
        return Settlement(
            "ignored",
            deployment_id,
            reason=f"deployment of {theirs[0]}/{theirs[1]}, not of {ours[0]}/{ours[1]}",
        )
    if state not in (SUCCESS, FAILURE, STOP):
        return Settlement("ignored", deployment_id, reason=f"state {state} is not an end")
    deployment = services.registry.get_deployment(deployment_id)
    if deployment is None:
        info = deployment_info(services, deployment_id)
        if str(info.get("description", "")).startswith(RELEASE_PREFIX):
            return _settle_release(deployment_id, state, services, info=info)
        if str(info.get("description", "")).startswith(DESCRIPTION_PREFIX):
            raise DeploymentNotRecordedError(
                f"deployment {deployment_id} was started by promotion but is not in the "
                "registry (the promoter may not have recorded it yet, or failed to): retried, "
                "then left in the dead-letter queue for a person to reconcile with make status"
            )
        return Settlement(
            "ignored",
            deployment_id,
            reason="not a deployment promotion started (CodeDeploy's own, or someone else's)",
        )
    if deployment.settled:
        return Settlement(
            "duplicate",
            deployment_id,
            deployment.model_version,
            f"already settled as {deployment.status}",
        )
    info = {} if state == SUCCESS else deployment_info(services, deployment_id)
    return settle(deployment, state, services, info=info, actor=actor, invalidate=True)


def _settle_release(
    deployment_id: str, state: str, services: PromotionServices, *, info: Mapping[str, Any]
) -> Settlement:
    """A release ended: drop cached answers (the canary's may be cached) and record the outcome.

    The model did not change, so no pointer, parameter or tag moves; on failure CodeDeploy has
    already routed the alias back to the version that served before.
    """
    invalidate_cache(services, deployment_id)
    if state == SUCCESS:
        type_, reason = RELEASE_SUCCEEDED, f"release deployment {deployment_id} succeeded"
    else:
        type_, reason = RELEASE_FAILED, failure_reason(deployment_id, state, info)
    services.registry.append_event(type_, reason=reason, detail={"deployment_id": deployment_id})
    log(_log, "release settled", deployment_id=deployment_id, state=state, reason=reason)
    return Settlement(type_, deployment_id, reason=reason)


def settle(
    deployment: Deployment,
    state: str,
    services: PromotionServices,
    *,
    info: Mapping[str, Any],
    actor: str,
    invalidate: bool,
) -> Settlement:
    """Make AWS and the registry agree with how `deployment` ended.

    AWS first, the registry last: every AWS step is idempotent and the registry write is
    conditional, so a retry after a partial failure finishes the job and a duplicate, which
    finds the deployment settled, does nothing.
    """
    registry, deployment_id = services.registry, deployment.deployment_id
    if state == SUCCESS:
        if invalidate:
            invalidate_cache(services, deployment_id)
        # The promoter sets these right after recording the deployment; setting them again
        # repairs a promoter that failed in between.
        put_live_parameter(services, deployment.model_version)
        move_tags(services, live=deployment.image_digest, rollback=deployment.previous_image_digest)
        reason = (
            f"CodeDeploy deployment {deployment_id} succeeded: Lambda version "
            f"{deployment.lambda_version} serves all traffic"
        )
        recorded, changed = registry.record_deployment_success(
            deployment_id,
            actor=actor,
            reason=reason,
            detail={"lambda_version": deployment.lambda_version, "invalidated": invalidate},
        )
        action = DEPLOYED
    else:
        reason = failure_reason(deployment_id, state, info)
        # CodeDeploy has already routed the alias back to the previous version.
        restore_latest(services)
        previous = deployment.previous_model_version or deployment.previous_parameter_value
        if previous is not None:
            put_live_parameter(services, previous)
        # After a failed first promotion no image of this repository was live before, so
        # `live` stays on the failed image (ECR cannot untag without deleting).
        move_tags(
            services,
            live=deployment.previous_image_digest,
            rollback=deployment.previous_rollback_image_digest,
        )
        if invalidate:
            invalidate_cache(services, deployment_id)
        status = FAILED if state == FAILURE else STOPPED
        recorded, changed = registry.record_deployment_failure(
            deployment_id,
            status=status,
            actor=actor,
            reason=reason,
            detail={
                "lambda_version": deployment.lambda_version,
                "previous_lambda_version": deployment.previous_lambda_version,
                "invalidated": invalidate,
            },
        )
        action = status
    settlement = Settlement(
        action if changed else "duplicate",
        deployment_id,
        recorded.model_version,
        reason if changed else f"already settled as {recorded.status}",
    )
    log(
        _log,
        "deployment settled" if changed else "deployment already settled",
        deployment_id=deployment_id,
        state=state,
        action=settlement.action,
        model_version=recorded.model_version,
        previous_model_version=recorded.previous_model_version,
        reason=settlement.reason,
    )
    return settlement


def failure_reason(deployment_id: str, state: str, info: Mapping[str, Any]) -> str:
    """Why a deployment did not succeed, from GetDeployment's errorInformation and rollbackInfo."""
    verb = "failed" if state == FAILURE else "was stopped"
    parts = [f"CodeDeploy deployment {deployment_id} {verb}"]
    error = info.get("errorInformation") or {}
    if error:
        parts.append(f"{error.get('code', 'error')}: {error.get('message', '')}".rstrip(": "))
    rollback_message = (info.get("rollbackInfo") or {}).get("rollbackMessage")
    if rollback_message:
        parts.append(f"rollback: {rollback_message}")
    return "; ".join(parts)


def deployment_info(services: PromotionServices, deployment_id: str) -> Mapping[str, Any]:
    """GetDeployment's deploymentInfo."""
    info: Mapping[str, Any] = services.codedeploy.get_deployment(deploymentId=deployment_id)[
        "deploymentInfo"
    ]
    return info
