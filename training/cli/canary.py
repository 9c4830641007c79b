"""Follow a CodeDeploy deployment to its end with botocore's DeploymentSuccessful waiter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from botocore.exceptions import BotoCoreError, WaiterError

from training.aws import error_reason
from training.control.promotion_services import CodeDeployApi

# botocore's own defaults for this waiter (botocore/data/codedeploy/2014-10-06/waiters-2.json):
# GetDeployment every 15 s, at most 120 times. 30 minutes outlast the slowest canary the stack
# offers (Canary10Percent15Minutes), so a timeout means something is wrong, not a slow bake.
DELAY_SECONDS = 15
MAX_ATTEMPTS = 120


SUCCEEDED, FAILED, TIMED_OUT, UNKNOWN = "succeeded", "failed", "timed-out", "unknown"


# The waiter's failure acceptors; CodeDeploy's other statuses (Created, Queued, InProgress,
# Baking, Ready) mean the deployment is still running.
FAILED_STATUSES = ("Failed", "Stopped")


@dataclass(frozen=True)
class CanaryOutcome:
    """How following a deployment ended: CodeDeploy's last status, and why if not success."""

    deployment_id: str
    result: str  # SUCCEEDED, FAILED, TIMED_OUT or UNKNOWN
    status: str | None  # deploymentInfo.status as last read; None when no read answered
    error_code: str | None = None  # deploymentInfo.errorInformation of a failed deployment
    error_message: str | None = None
    rollback_message: str | None = None  # deploymentInfo.rollbackInfo.rollbackMessage
    problem: str | None = None  # why the wait ended before the deployment did

    @property
    def reason(self) -> str:
        """CodeDeploy's reason for a failed or stopped deployment, on one line."""
        parts = [
            ": ".join(part for part in (self.error_code, self.error_message) if part),
            f"rollback: {self.rollback_message}" if self.rollback_message else "",
        ]
        return "; ".join(part for part in parts if part) or "CodeDeploy gave no reason"


def wait_for_deployment(
    codedeploy: CodeDeployApi,
    deployment_id: str,
    *,
    delay_seconds: int = DELAY_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
) -> CanaryOutcome:
    """Poll GetDeployment until CodeDeploy ends the deployment or the attempts run out."""
    waiter = codedeploy.get_waiter("deployment_successful")
    try:
        waiter.wait(
            deploymentId=deployment_id,
            WaiterConfig={"Delay": delay_seconds, "MaxAttempts": max_attempts},
        )
    except WaiterError as err:
        # botocore's stubs type last_response as an error response; it is GetDeployment's
        # answer (or its error) from the last poll.
        response = cast("Mapping[str, Any]", err.last_response)
        return _ended_early(deployment_id, response, max_attempts)
    except BotoCoreError as err:
        # The waiter turns service errors into WaiterError, but a connection or credentials
        # error escapes it: the deployment's state is then unknown.
        return CanaryOutcome(deployment_id, UNKNOWN, None, problem=error_reason(err))
    # The waiter's only success acceptor is deploymentInfo.status == "Succeeded".
    return CanaryOutcome(deployment_id, SUCCEEDED, "Succeeded")


def _ended_early(
    deployment_id: str, response: Mapping[str, Any], max_attempts: int
) -> CanaryOutcome:
    """The outcome of a WaiterError, from the last GetDeployment answer it carries."""
    error = response.get("Error")
    if isinstance(error, Mapping):
        # GetDeployment itself failed (access denied, no such deployment): no acceptor matches
        # an error, so the waiter stops at once.
        code, message = error.get("Code", "UnknownError"), error.get("Message")
        return CanaryOutcome(
            deployment_id, UNKNOWN, None, problem=f"{code}: {message}" if message else code
        )
    info = response.get("deploymentInfo") or {}
    status = info.get("status")
    if status in FAILED_STATUSES:
        failure = info.get("errorInformation") or {}
        return CanaryOutcome(
            deployment_id,
            FAILED,
            status,
            error_code=failure.get("code"),
            error_message=failure.get("message"),
            rollback_message=(info.get("rollbackInfo") or {}).get("rollbackMessage"),
        )
    # Any other status: the waiter gave up after max_attempts polls with CodeDeploy still at it.
    return CanaryOutcome(
        deployment_id,
        TIMED_OUT,
        status,
        problem=f"still {status or 'without a status'} after {max_attempts} checks",
    )
