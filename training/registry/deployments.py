"""Deployments in the registry: how a CodeDeploy deployment of a promotion ended."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from training.aws import iso
from training.contract import DEPLOYMENT_SUCCEEDED, PROMOTION_FAILED
from training.registry.items import ConditionFailedError, live_before, rollback_before
from training.registry.records import (
    DEPLOYED,
    FAILED,
    LIVE,
    LIVE_STATUS,
    RETIRED,
    ROLLBACK,
    STOPPED,
    Deployment,
    RegistryConflictError,
)
from training.registry.table import RegistryTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


class DeploymentWrites(RegistryTable):
    """Writes that settle a deployment."""

    def record_deployment_success(
        self, deployment_id: str, *, actor: str, reason: str, detail: Mapping[str, Any]
    ) -> tuple[Deployment, bool]:
        """Settle a deployment as succeeded; (deployment, False) if it was already settled."""
        deployment = self._require_deployment(deployment_id)
        if deployment.settled:
            return deployment, False
        now = iso(self._clock())
        items = [
            self._settle_item(deployment_id, DEPLOYED, reason=reason, actor=actor, now=now),
            self._event(
                DEPLOYMENT_SUCCEEDED,
                model_version=deployment.model_version,
                reason=reason,
                actor=actor,
                detail={"deployment_id": deployment_id, **detail},
            ),
        ]
        try:
            self._transact(items)
        except ConditionFailedError:
            return self._require_deployment(deployment_id), False
        return self._require_deployment(deployment_id), True

    def record_deployment_failure(
        self,
        deployment_id: str,
        *,
        status: str,
        actor: str,
        reason: str,
        detail: Mapping[str, Any],
    ) -> tuple[Deployment, bool]:
        """Settle a failed or stopped deployment and put the registry back as it was before it.

        `live` returns to the model that was live (or to no model after a failed first
        promotion), `rollback` to where it was; the deployed model becomes `failed` with
        `reason` and the model it replaced `live` again. (deployment, False) if it was already
        settled.
        """
        if status not in (FAILED, STOPPED):
            raise ValueError(f"a deployment that did not succeed is {FAILED} or {STOPPED}")
        deployment = self._require_deployment(deployment_id)
        if deployment.settled:
            return deployment, False
        now = iso(self._clock())
        back = f"deployment {deployment_id} of {deployment.model_version} {status}"
        items: list[tuple[str, TransactWriteItemTypeDef]] = [
            (
                f"deployment {deployment_id}",
                self._settle_item(deployment_id, status, reason=reason, actor=actor, now=now),
            ),
            (
                "the live pointer",
                self._put_pointer(
                    LIVE,
                    live_before(deployment),
                    revision=deployment.live_revision + 1,
                    expected_revision=deployment.live_revision,
                    actor=actor,
                    reason=back,
                    deployment_id=deployment_id,
                    now=now,
                ),
            ),
        ]
        if deployment.rollback_revision is not None:
            items.append(
                (
                    "the rollback pointer",
                    self._put_pointer(
                        ROLLBACK,
                        rollback_before(deployment),
                        revision=deployment.rollback_revision + 1,
                        expected_revision=deployment.rollback_revision,
                        actor=actor,
                        reason=back,
                        deployment_id=deployment_id,
                        now=now,
                    ),
                )
            )
        items.append(
            (
                f"model {deployment.model_version}",
                self._set_model_status(
                    deployment.model_version,
                    FAILED,
                    reason,
                    expected_status=LIVE_STATUS,
                    now=now,
                ),
            )
        )
        if deployment.previous_model_version is not None:
            items.append(
                (
                    f"model {deployment.previous_model_version}",
                    self._set_model_status(
                        deployment.previous_model_version,
                        LIVE_STATUS,
                        f"live again: {back}",
                        expected_status=RETIRED,
                        now=now,
                    ),
                )
            )
        items.append(
            (
                "the audit event",
                self._event(
                    PROMOTION_FAILED,
                    model_version=deployment.model_version,
                    reason=reason,
                    actor=actor,
                    detail={
                        "deployment_id": deployment_id,
                        "status": status,
                        "from_version": deployment.model_version,
                        "to_version": deployment.previous_model_version,
                        **detail,
                    },
                ),
            )
        )
        try:
            self._transact([item for _, item in items])
        except ConditionFailedError as failed:
            if failed.index == 0:
                return self._require_deployment(deployment_id), False
            raise RegistryConflictError(
                f"{items[failed.index][0]} changed since deployment {deployment_id} was "
                "recorded, so the registry cannot be put back as it was before it; run make "
                "status and fix it with promote or rollback"
            ) from failed
        return self._require_deployment(deployment_id), True
