"""Release: a `cdk deploy` that changed serving code or configuration reaches `live` by canary.

CloudFormation updates the function and publishes a version for every change of code or
configuration, but never moves the `live` alias (it names version 1 for ever). The release
custom resource runs after that and shifts `live` from the version it serves now (read from
the alias, not from the template, so promotions in between are respected) to the new one with
a CodeDeploy deployment of the same group, guard alarms and canary as a promotion. The model
does not change: the api stack only deploys when its baked model is the live one.

The watcher settles a release like a promotion's deployment, minus the registry pointers,
which a release never moves. Standard library and boto3 only (a Lambda handler imports it).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from training.aws import configure_logging, error_reason, log
from training.contract import RELEASED
from training.control.promotion import deployment_request
from training.control.promotion_services import (
    RELEASE_PREFIX,
    DeploymentInProgressError,
    PromotionError,
    PromotionServices,
    PromotionSettings,
)
from training.control.serving_image import publish, wait_until_active
from training.registry import RegistryError

ACTOR = "cdk-deploy"
# CodeDeploy statuses of a deployment that has not ended yet.
_ACTIVE = ["Created", "Queued", "InProgress", "Baking", "Ready"]
# CloudFormation shows at most this much of a custom resource's failure reason.
_REASON_LIMIT = 3500

_log = logging.getLogger(__name__)


class ReleaseRefusedError(PromotionError):
    """The release would serve another model than the live one, or collide with a deployment."""


@dataclass(frozen=True)
class Release:
    """What a release did: the versions and, if traffic had to move, the deployment."""

    target_version: str
    previous_version: str
    deployment_id: str | None


def release(
    target_version: str,
    *,
    model_version: str,
    image_uri: str,
    reason: str,
    services: PromotionServices,
) -> Release:
    """Shift `live` to `target_version` through the canary, unless it already serves it.

    CloudFormation publishes whatever $LATEST holds, and a promotion or rollback may have put
    another image there since the last deploy; then the version runs the right configuration
    with the wrong image, so the deploy's image (`image_uri`) is published again and released.
    """
    settings, registry = services.settings, services.registry
    live = registry.live()
    if live is not None and live.model_version != model_version:
        raise ReleaseRefusedError(
            f"this deploy carries model {model_version} but the registry's live model is "
            f"{live.model_version}: run `make deploy`, which fetches the live model first"
        )
    wait_until_active(services, target_version)
    published = services.lambda_client.get_function(
        FunctionName=settings.function_name, Qualifier=target_version
    )
    runs = published.get("Code", {}).get("ImageUri")
    if runs != image_uri:
        log(
            _log,
            "release: the published version runs another image; publishing the deploy's",
            lambda_version=target_version,
            runs=runs,
            image=image_uri,
        )
        target_version = publish(services, image_uri)
    current = str(
        services.lambda_client.get_alias(
            FunctionName=settings.function_name, Name=settings.alias_name
        )["FunctionVersion"]
    )
    if current == target_version:
        log(_log, "release: alias already serves the version", lambda_version=current)
        return Release(target_version, current, None)
    running = services.codedeploy.list_deployments(
        applicationName=settings.codedeploy_application,
        deploymentGroupName=settings.deployment_group,
        includeOnlyStatuses=_ACTIVE,
    ).get("deployments", [])
    if running:
        raise DeploymentInProgressError(
            f"CodeDeploy deployment {running[0]} is still running and CodeDeploy runs one at a "
            "time: wait for it to end (make status), then run the deploy again"
        )
    request = deployment_request(
        settings,
        current_version=current,
        target_version=target_version,
        description=f"{RELEASE_PREFIX}model {model_version}, {reason}",
    )
    deployment_id = str(services.codedeploy.create_deployment(**request)["deploymentId"])
    detail: dict[str, Any] = {
        "deployment_id": deployment_id,
        "lambda_version": target_version,
        "previous_lambda_version": current,
    }
    log(_log, "release started", model_version=model_version, **detail)
    try:
        registry.append_event(RELEASED, model_version=model_version, reason=reason, detail=detail)
    except (RegistryError, ClientError, BotoCoreError) as err:
        # The canary runs and guards itself; only its audit line is missing.
        log(_log, "release not recorded", level=logging.ERROR, error=error_reason(err))
    return Release(target_version, current, deployment_id)


Sender = Callable[[str, bytes], None]


def send_response(url: str, body: bytes) -> None:
    """PUT the custom resource's answer to CloudFormation's presigned S3 URL."""
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's https ResponseURL
        url, data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def answer(
    event: Mapping[str, Any],
    act: Callable[[Mapping[str, Any]], Mapping[str, str]],
    *,
    send: Sender = send_response,
) -> dict[str, Any]:
    """Run `act(event)` for Create and Update, nothing for Delete; always answer CloudFormation.

    An unanswered custom resource holds the stack for an hour, so every error is answered too.
    """
    physical_id = str(event.get("PhysicalResourceId") or event.get("LogicalResourceId") or "x")
    status, reason, data = "SUCCESS", "", {}
    if event.get("RequestType") in ("Create", "Update"):
        try:
            data = dict(act(event))
        except Exception as err:  # noqa: BLE001 - any failure must reach CloudFormation
            status, reason = "FAILED", f"{type(err).__name__}: {err}"[:_REASON_LIMIT]
            log(_log, "release failed", level=logging.ERROR, reason=reason)
    body = {
        "Status": status,
        "Reason": reason or "see the function's log",
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "Data": data,
    }
    send(str(event["ResponseURL"]), json.dumps(body).encode())
    return body


def run_release(
    properties: Mapping[str, Any],
    services: PromotionServices,
    *,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The custom resource's work: its properties name the version and the baked model.

    `previous` is the request's OldResourceProperties. Versions only grow, so an update back to
    a lower version is CloudFormation rolling the stack back: a release it cannot start then
    (a deployment still running, say) is logged and skipped, since failing it would leave the
    stack in UPDATE_ROLLBACK_FAILED, and CodeDeploy's own rollback already guards the alias.
    """
    target, model = properties.get("TargetVersion"), properties.get("ModelVersion")
    image = properties.get("ImageUri")
    if not isinstance(target, str) or not target.isdigit():
        raise ValueError(f"TargetVersion must be a published version number, got {target!r}")
    if not isinstance(model, str) or not model:
        raise ValueError("ModelVersion must name the model the deploy carries")
    if not isinstance(image, str) or not image:
        raise ValueError("ImageUri must name the image the deploy built")
    reason = str(properties.get("Reason") or "serving code or configuration changed")
    before = str((previous or {}).get("TargetVersion", ""))
    rolling_back = before.isdigit() and int(target) < int(before)
    try:
        done = release(
            target, model_version=model, image_uri=image, reason=reason, services=services
        )
    except (DeploymentInProgressError, ReleaseRefusedError) as err:
        if not rolling_back:
            raise
        log(_log, "release skipped: the stack is rolling back", reason=str(err))
        return {"PreviousVersion": "", "DeploymentId": "", "Skipped": str(err)}
    return {"PreviousVersion": done.previous_version, "DeploymentId": done.deployment_id or ""}


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point of the release custom resource."""
    configure_logging()

    def act(request: Mapping[str, Any]) -> Mapping[str, str]:
        settings = PromotionSettings.from_env()
        return run_release(
            request.get("ResourceProperties") or {},
            PromotionServices.connect(settings, actor=ACTOR),
            previous=request.get("OldResourceProperties"),
        )

    return answer(event, act, send=send_response)
