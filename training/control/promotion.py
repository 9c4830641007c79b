"""Promotion: a registered model reaches the `live` alias through CodeDeploy, and back out.

`promote` publishes a Lambda version with the model's image, starts a CodeDeploy deployment
that shifts the `live` alias to it (a canary that CodeDeploy rolls back by itself when a guard
alarm fires), records the move in the registry in one conditional transaction, then points the
live-model SSM parameter (which the api stack checks, so a later `cdk deploy` cannot ship
another model) and the ECR tags `live` and `rollback` at the new images. `rollback` does the
same for the rollback model, all at once and with the guard alarms off (they are usually why
one rolls back). `settle_deployment` (settlement.py) records how a deployment ended: success
invalidates CloudFront's cached predictions; failure puts the registry, the parameter and the tags
back where they were, since CodeDeploy has already moved the alias back.

What it acts on is in promotion_services.py, what it moves in serving_image.py. The Lambda
handlers import these modules: standard library and boto3 only.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from training.aws import error_reason, log
from training.control.promotion_services import (
    ALL_AT_ONCE,
    DESCRIPTION_LIMIT,
    DESCRIPTION_PREFIX,
    ENDED_STATES,
    AlreadyLiveError,
    DeploymentInProgressError,
    ModelNotFoundError,
    NothingToRollBackError,
    NotPromotableError,
    Promotion,
    PromotionError,
    PromotionServices,
    PromotionSettings,
    StatusReport,
    reason_of,
)
from training.control.serving_image import live_parameter, move_tags, publish, put_live_parameter
from training.control.settlement import deployment_info, settle
from training.registry import (
    FAILED,
    LIVE,
    PROMOTED,
    REJECTED,
    ROLLED_BACK,
    Deployment,
    Model,
    Pointer,
    PromotionRecord,
    Registry,
    RegistryConflictError,
    RegistryError,
)

_log = logging.getLogger(__name__)


def promote(
    model_version: str,
    *,
    actor: str,
    reason: str,
    services: PromotionServices,
    deployment_config: str | None = None,
) -> Promotion:
    """Deploy a registered model to the live alias through CodeDeploy and record it.

    Refuses (PromotionRefusedError, before any AWS call) a model that is unknown, rejected,
    failed, without an image, or already live. `deployment_config` overrides the deployment
    group's configuration (its canary).
    """
    return _promote(
        model_version,
        type_=PROMOTED,
        actor=actor,
        reason=reason,
        services=services,
        deployment_config=deployment_config,
    )


def rollback(
    *, to: str | None = None, actor: str, reason: str, services: PromotionServices
) -> Promotion:
    """Deploy the rollback model (or the model `to`) to the live alias, all at once."""
    target = to
    if target is None:
        pointer = services.registry.rollback()
        if pointer is None:
            raise NothingToRollBackError(
                "no rollback model is recorded (no model was live before the current one); "
                "name the model to return to with --model-version VERSION"
            )
        target = pointer.model_version
    return _promote(
        target,
        type_=ROLLED_BACK,
        actor=actor,
        reason=reason,
        services=services,
        deployment_config=ALL_AT_ONCE,
    )


def _promote(
    model_version: str,
    *,
    type_: str,
    actor: str,
    reason: str,
    services: PromotionServices,
    deployment_config: str | None,
) -> Promotion:
    """A promotion or a rollback: refusals, publish, deploy, record, then parameter and tags."""
    settings, registry = services.settings, services.registry
    model = _promotable(registry, model_version)
    live, revision = registry.pointer_and_revision(LIVE)
    _refuse_if_live(live, revision, model_version)
    if live is not None and live.deployment_id is not None:
        pending = registry.get_deployment(live.deployment_id)
        if pending is not None and not pending.settled:
            _settle_pending(pending, services, actor=actor)
            live, revision = registry.pointer_and_revision(LIVE)
            _refuse_if_live(live, revision, model_version)
    # Only a failed first promotion needs it: then no model's image was live before.
    previous_parameter = None
    if live is None:
        previous_parameter = live_parameter(services)
    image_uri, digest = str(model.image_uri), str(model.image_digest)

    # From here until the registry records the deployment, a failure leaves the registry as it
    # was and the error propagates. AWS is then safe: a published Lambda version that nothing
    # routes to and $LATEST on the new image, which the API never invokes (API Gateway calls
    # the alias, and only CodeDeploy moves the alias).
    target_version = publish(services, image_uri)
    current_version = services.lambda_client.get_alias(
        FunctionName=settings.function_name, Name=settings.alias_name
    )["FunctionVersion"]
    if current_version == target_version:
        named = live.model_version if live is not None else "no model"
        raise PromotionError(
            f"the {settings.alias_name} alias already routes to Lambda version {target_version} "
            f"with image {image_uri}, yet the registry names {named} as live; nothing was "
            "deployed: run make status and reconcile the registry with the alias"
        )
    # Publishing took a while: give up before starting a deployment if another promotion
    # moved the live pointer meanwhile (the transaction below still guards the last window).
    if registry.pointer_and_revision(LIVE)[1] != revision:
        raise RegistryConflictError(
            f"another promotion changed the live model while Lambda version {target_version} of "
            f"{model_version} was being published; nothing was deployed; run make status and retry"
        )
    request = deployment_request(
        settings,
        current_version=current_version,
        target_version=target_version,
        description=f"{DESCRIPTION_PREFIX}{type_} {model_version} by {actor}: {reason}",
    )
    if deployment_config is not None:
        request["deploymentConfigName"] = deployment_config
    if type_ == ROLLED_BACK:
        # The guard alarms are usually in ALARM when someone rolls back; polling them would stop
        # the rollback and revert it. CodeDeploy documents this override for exactly that case
        # (it needs codedeploy:UpdateDeploymentGroup), and automatic rollback goes off too: it
        # would return to the version being rolled away from.
        request["overrideAlarmConfiguration"] = {"enabled": False, "alarms": []}
        request["autoRollbackConfiguration"] = {"enabled": False}
    deployment_id = str(services.codedeploy.create_deployment(**request)["deploymentId"])
    log(
        _log,
        "deployment started",
        deployment_id=deployment_id,
        model_version=model_version,
        lambda_version=target_version,
        previous_lambda_version=current_version,
        deployment_config=deployment_config,
    )

    try:
        deployment = registry.record_promotion(
            PromotionRecord(
                type=type_,
                model_version=model_version,
                expected_live=live,
                expected_revision=revision,
                deployment_id=deployment_id,
                lambda_version=target_version,
                previous_lambda_version=current_version,
                actor=actor,
                reason=reason,
                deployment_config=deployment_config,
                previous_parameter_value=previous_parameter,
            )
        )
    except (RegistryError, ClientError, BotoCoreError) as err:
        # The deployment is running and the registry does not know it: only a person can
        # decide whether it should finish. The watcher refuses its end event (dead-letter
        # queue) rather than guess.
        message = (
            f"{error_reason(err) if not isinstance(err, RegistryError) else err}. CodeDeploy "
            f"deployment {deployment_id} (Lambda version {current_version} -> {target_version}) "
            f"is running but not recorded: stop it with `aws deploy stop-deployment "
            f"--deployment-id {deployment_id} --auto-rollback-enabled`, then run make status"
        )
        if isinstance(err, RegistryConflictError):
            raise RegistryConflictError(message) from err
        raise PromotionError(message) from err

    try:
        put_live_parameter(services, model_version)
        move_tags(services, live=digest, rollback=None if live is None else live.image_digest)
    except (ClientError, BotoCoreError, PromotionError) as err:
        raise PromotionError(
            f"deployment {deployment_id} of {model_version} started and is recorded, but the "
            f"live model parameter or the ECR tags could not follow: {reason_of(err)}; the "
            "watcher sets them again when the deployment succeeds"
        ) from err
    return Promotion.of(deployment)


def deployment_request(
    settings: PromotionSettings, *, current_version: str, target_version: str, description: str
) -> dict[str, Any]:
    """CreateDeployment's request: shift the alias in the deployment group, by its canary."""
    content = appspec(settings, current_version=current_version, target_version=target_version)
    return {
        "applicationName": settings.codedeploy_application,
        "deploymentGroupName": settings.deployment_group,
        "revision": {
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": json.dumps(content)},
        },
        "description": description[:DESCRIPTION_LIMIT],
    }


def appspec(
    settings: PromotionSettings, *, current_version: str, target_version: str
) -> dict[str, Any]:
    """The AppSpec that shifts the live alias from one Lambda version to another."""
    return {
        "version": 0.0,
        "Resources": [
            {
                settings.function_name: {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": settings.function_name,
                        "Alias": settings.alias_name,
                        "CurrentVersion": current_version,
                        "TargetVersion": target_version,
                    },
                }
            }
        ],
    }


def _promotable(registry: Registry, model_version: str) -> Model:
    """The model, if it may go live; PromotionRefusedError saying why not otherwise."""
    model = registry.get_model(model_version)
    if model is None:
        raise ModelNotFoundError(
            f"model {model_version} is not in the registry; `python -m training status` lists "
            "the models"
        )
    if model.status in (REJECTED, FAILED):
        raise NotPromotableError(
            f"model {model_version} is {model.status} and cannot go live: "
            f"{model.status_reason or 'no reason recorded'}"
        )
    if model.image_digest is None or model.image_uri is None:
        raise NotPromotableError(
            f"model {model_version} has no registered image yet (the registrar records it when "
            "ECR reports the push); nothing to deploy"
        )
    return model


def _refuse_if_live(live: Pointer | None, revision: int, model_version: str) -> None:
    if live is not None and live.model_version == model_version:
        raise AlreadyLiveError(
            f"model {model_version} is already live (live pointer revision {revision}, "
            f"deployment {live.deployment_id or 'none'}); nothing to do"
        )


def _settle_pending(pending: Deployment, services: PromotionServices, *, actor: str) -> None:
    """Settle the last deployment if CodeDeploy has ended it; refuse while it runs.

    CodeDeploy delivers its state-change events best effort, so a lost one must not block every
    later promotion. The cache is left to the new deployment's settlement, which invalidates it.
    """
    info = deployment_info(services, pending.deployment_id)
    state = ENDED_STATES.get(str(info.get("status")))
    if state is None:
        raise DeploymentInProgressError(
            f"deployment {pending.deployment_id} of model {pending.model_version} is "
            f"{info.get('status')}; CodeDeploy runs one deployment at a time: wait for it to end "
            "(make status) and retry"
        )
    log(
        _log,
        "settling an ended deployment whose event was not processed",
        deployment_id=pending.deployment_id,
        state=state,
    )
    settle(pending, state, services, info=info, actor=actor, invalidate=False)


def status(registry: Registry, *, events: int = 10) -> StatusReport:
    """The live and rollback pointers, every model newest first, the newest promotion events."""
    live = registry.live()
    deployment = (
        registry.get_deployment(live.deployment_id)
        if live is not None and live.deployment_id is not None
        else None
    )
    return StatusReport(
        live=live,
        rollback=registry.rollback(),
        deployment=deployment,
        models=tuple(registry.list_models()),
        promotions=tuple(registry.promotion_events(events)),
    )
