"""Pipeline news: training run outcomes, promotions, rollbacks, releases, canary ends."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from training.aws import error_reason, log
from training.contract import DEPLOYMENT_ENDS, RELEASED, RUN_FINISHED
from training.control.notify.message import Notification
from training.registry import ROLLED_BACK, Deployment, Registry

if TYPE_CHECKING:
    from training.control.notify.handler import NotifySettings

_log = logging.getLogger(__name__)


class DeploymentReader(Protocol):
    """The part of a CodeDeploy client the news reads (boto3 has no stubs installed)."""

    def get_deployment(self, *, deploymentId: str) -> Mapping[str, Any]:  # noqa: N803 (boto3's name)
        """GetDeployment."""
        ...


_RUN_TITLES = {
    "succeeded": ":white_check_mark: Training run succeeded",
    "rejected": ":no_entry: Training run rejected by the quality gate",
    "failed": ":x: Training run failed",
    "interrupted": ":warning: Training run interrupted (Spot)",
    "timed_out": ":hourglass: Training run timed out",
}


def _dataset_of_run(registry: Registry, run_id: str | None) -> str:
    """The run's dataset version, or why it is not known (a news message never fails on it)."""
    if not run_id:
        return "unknown"
    try:
        run = registry.get_run(run_id)
    except Exception as err:  # noqa: BLE001 - the outcome matters more than its dataset
        log(_log, "run not read", level=logging.WARNING, error=error_reason(err))
        return "registry could not be read"
    return run.dataset_version if run else "unknown"


def _run_news(item: Mapping[str, Any], registry: Registry) -> Notification:
    status = str((item.get("detail") or {}).get("status", "unknown"))
    run_id = item.get("run_id")
    dataset = _dataset_of_run(registry, run_id)
    steps = {
        "succeeded": ["The promoter takes the model live through the canary: make status"],
        "interrupted": [f"make retrain DATASET={dataset}"],
    }.get(status, ["make registry: the run's status and reason"])
    return Notification(
        title=_RUN_TITLES.get(status, f"Training run ended: {status}"),
        description=str(item.get("reason") or ""),
        event_type=f"run-{status}",
        facts=[
            ("Run", str(run_id)),
            ("Dataset", dataset),
            ("Model", str(item.get("model_version") or "none trained")),
        ],
        next_steps=steps,
        keywords=["training", status],
        thread_id=str(run_id),
        context={"runId": str(run_id), "status": status},
    )


def registry_news(item: Mapping[str, Any], *, registry: Registry) -> Notification:
    """One message for a registry audit event that is news (NEWS_EVENTS)."""
    kind = str(item.get("type"))
    if kind == RUN_FINISHED:
        return _run_news(item, registry)
    detail = item.get("detail") or {}
    actor, reason = str(item.get("actor", "unknown")), str(item.get("reason") or "")
    model = str(item.get("model_version"))
    deployment = str(detail.get("deployment_id", "unknown"))
    previous = detail.get("from_version") or "nothing (first promotion)"
    facts = [("By", actor), ("Reason", reason), ("Deployment", deployment)]
    if kind == RELEASED:
        title = f":package: Release started: serving code or configuration, model {model}"
        steps = ["Same canary and guard alarms as a promotion; the model does not change"]
    elif kind == ROLLED_BACK:
        title = f":rewind: Rollback started: {model} replaces {previous}"
        steps = ["All at once, guard alarms off for this deployment: make status"]
    else:
        title = f":rocket: Promotion started: {model} replaces {previous}"
        facts.append(("Canary", str(detail.get("deployment_config") or "the group's default")))
        facts.append(("Rollback target", str(detail.get("from_version") or "none")))
        steps = ["CodeDeploy rolls back by itself if a guard alarm fires", "make rollback"]
    return Notification(
        title=title,
        description=f"{kind} by {actor}: {reason}",
        event_type=kind,
        facts=facts,
        next_steps=steps,
        keywords=["deployment", kind],
        thread_id=deployment,
        context={"deploymentId": deployment, "modelVersion": model},
    )


def _codedeploy_reason(codedeploy: DeploymentReader, deployment_id: str) -> str:
    """CodeDeploy's own words on why a deployment ended badly, or why they are missing."""
    try:
        info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    except Exception as err:  # noqa: BLE001 - the outcome is news even without its reason
        return f"CodeDeploy's reason could not be read ({error_reason(err)})"
    parts = [
        info.get("errorInformation", {}).get("message"),
        info.get("rollbackInfo", {}).get("rollbackMessage"),
    ]
    return "; ".join(part for part in parts if part) or "CodeDeploy gave no reason"


def _deployment(registry: Registry, deployment_id: str) -> tuple[Deployment | None, str | None]:
    try:
        return registry.get_deployment(deployment_id), None
    except Exception as err:  # noqa: BLE001 - the outcome is news without the registry too
        log(_log, "deployment not read", level=logging.WARNING, error=error_reason(err))
        return None, f"could not be read ({type(err).__name__}); run make status"


def deployment_news(
    event: Mapping[str, Any],
    *,
    registry: Registry,
    codedeploy: DeploymentReader,
    settings: NotifySettings,
) -> Notification | None:
    """One message for a deployment that ended (SUCCESS, FAILURE, STOP); None for others."""
    detail = event["detail"]
    state, deployment_id = str(detail.get("state")), str(detail.get("deploymentId"))
    if state not in DEPLOYMENT_ENDS:
        return None
    deployment, unreadable = _deployment(registry, deployment_id)
    ok = state == "SUCCESS"
    facts = [("Deployment", deployment_id), ("State", state)]
    if deployment is None:
        what = "Deployment" if unreadable else "Release"
        facts.append(("Registry", unreadable or "no promotion recorded: a release (same model)"))
        title = f":white_check_mark: {what} complete" if ok else f":rewind: {what} rolled back"
    else:
        new, old = deployment.model_version, deployment.previous_model_version or "none"
        verb = "Rollback" if deployment.type == ROLLED_BACK else "Canary"
        title = (
            f":white_check_mark: {verb} complete: {new} is live"
            if ok
            else f":rewind: {verb} rolled back: {new} failed, {old} serves again"
        )
        facts += [
            ("Model", new),
            ("Replaced", old),
            ("By", deployment.actor),
            ("Reason", deployment.reason),
        ]
    description = (
        "Traffic is on the new version." if ok else _codedeploy_reason(codedeploy, deployment_id)
    )
    return Notification(
        title=title,
        description=description,
        event_type=f"deployment-{state.lower()}",
        facts=facts,
        next_steps=[] if ok else ["make status: the watcher has put the registry back"],
        links=[("Dashboard", settings.dashboard_url())],
        keywords=["deployment", state],
        related_resources=list(event.get("resources", [])),
        thread_id=deployment_id,
        context={"deploymentId": deployment_id, "state": state},
    )
