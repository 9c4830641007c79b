"""Promotions in the registry: the live and rollback pointers and each move between models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from training.aws import iso
from training.contract import PROMOTED, ROLLED_BACK
from training.registry.items import ConditionFailedError, Expression, from_item, image_of
from training.registry.records import (
    DEPLOYING,
    DEPLOYMENT,
    FAILED,
    LIVE,
    LIVE_STATUS,
    POINTER,
    REJECTED,
    RETIRED,
    ROLLBACK,
    Deployment,
    Pointer,
    PromotionRecord,
    RegistryConflictError,
    RegistryNotFoundError,
)
from training.registry.table import RegistryTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


class PromotionWrites(RegistryTable):
    """Writes of the pointers and of promotions."""

    def set_live(self, model_version: str, *, expected_revision: int, reason: str) -> Pointer:
        """Point `live` at a registered model, if the pointer is still at `expected_revision`.

        Only the pointer moves (0 = no pointer yet); model statuses and the rollback pointer
        belong to promotion.
        """
        model = self.get_model(model_version)
        if model is None:
            raise RegistryNotFoundError(f"model {model_version} does not exist")
        if model.image_digest is None or model.status in (REJECTED, FAILED):
            raise RegistryConflictError(
                f"model {model_version} cannot go live: status {model.status}, "
                f"image {model.image_digest or 'not registered'}"
            )
        now = iso(self._clock())
        pointer: dict[str, Any] = {
            "pk": POINTER,
            "sk": LIVE,
            "model_version": model_version,
            "image_digest": model.image_digest,
            "image_uri": model.image_uri,
            "revision": expected_revision + 1,
            "updated_at": now,
            "updated_by": self.actor,
            "reason": reason,
        }
        expression = Expression()
        if expected_revision == 0:
            condition = "attribute_not_exists(pk)"
        else:
            condition = f"{expression.name('revision')} = {expression.value(expected_revision)}"
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": pointer,
            "ConditionExpression": condition,
        }
        if expression.values:
            put.update(expression.arguments())
        try:
            self._transact(
                [
                    {"Put": put},  # type: ignore[typeddict-item]
                    self._event(
                        PROMOTED,
                        model_version=model_version,
                        reason=reason,
                        detail={"pointer": LIVE, "revision": expected_revision + 1},
                    ),
                ]
            )
        except ConditionFailedError as failed:
            current = self.live()
            raise RegistryConflictError(
                f"the live pointer is at revision {current.revision if current else 0}, "
                f"not {expected_revision}; read it again before moving it"
            ) from failed
        return from_item(Pointer, {"name": LIVE, **pointer})

    def record_promotion(self, record: PromotionRecord) -> Deployment:
        """Record a started deployment: pointers, statuses, deployment and event, atomically.

        `live` moves to the model and `rollback` to the model that was live; the model becomes
        `live` and the one it replaces `retired`. The write holds only if the live pointer is
        still at the revision read before the deployment started (and nothing else it reads
        changed); otherwise RegistryConflictError and nothing is written.
        """
        if record.type not in (PROMOTED, ROLLED_BACK):
            raise ValueError(f"a promotion is {PROMOTED} or {ROLLED_BACK}, not {record.type!r}")
        model = self._require_model(record.model_version)
        if (
            model.image_digest is None
            or model.image_uri is None
            or model.status
            in (
                REJECTED,
                FAILED,
            )
        ):
            raise RegistryConflictError(
                f"model {model.model_version} cannot go live: status {model.status}, "
                f"image {model.image_digest or 'not registered'}"
            )
        previous = record.expected_live
        previous_model = None if previous is None else self.get_model(previous.model_version)
        old_rollback, rollback_revision = self.pointer_and_revision(ROLLBACK)
        now = iso(self._clock())
        live_revision = record.expected_revision + 1
        deployment: dict[str, Any] = {
            "pk": DEPLOYMENT,
            "sk": record.deployment_id,
            "deployment_id": record.deployment_id,
            "type": record.type,
            "status": DEPLOYING,
            "model_version": model.model_version,
            "image_digest": model.image_digest,
            "image_uri": model.image_uri,
            "lambda_version": record.lambda_version,
            "previous_lambda_version": record.previous_lambda_version,
            "live_revision": live_revision,
            "actor": record.actor,
            "reason": record.reason,
            "created_at": now,
            "updated_at": now,
            "deployment_config": record.deployment_config,
            "previous_parameter_value": record.previous_parameter_value,
        }
        items: list[tuple[str, TransactWriteItemTypeDef]] = [
            (
                "the live pointer",
                self._put_pointer(
                    LIVE,
                    image_of(model),
                    revision=live_revision,
                    expected_revision=record.expected_revision,
                    actor=record.actor,
                    reason=record.reason,
                    deployment_id=record.deployment_id,
                    now=now,
                ),
            )
        ]
        if previous is not None:
            deployment.update(
                rollback_revision=rollback_revision + 1,
                previous_model_version=previous.model_version,
                previous_image_digest=previous.image_digest,
                previous_image_uri=previous.image_uri,
            )
            if old_rollback is not None:
                deployment.update(
                    previous_rollback_model_version=old_rollback.model_version,
                    previous_rollback_image_digest=old_rollback.image_digest,
                    previous_rollback_image_uri=old_rollback.image_uri,
                )
            items.append(
                (
                    "the rollback pointer",
                    self._put_pointer(
                        ROLLBACK,
                        image_of(previous),
                        revision=rollback_revision + 1,
                        expected_revision=rollback_revision,
                        actor=record.actor,
                        reason=f"live before {model.model_version}",
                        deployment_id=record.deployment_id,
                        now=now,
                    ),
                )
            )
        verb = "rolled back to" if record.type == ROLLED_BACK else "promoted"
        items.append(
            (
                f"model {model.model_version}",
                self._set_model_status(
                    model.model_version,
                    LIVE_STATUS,
                    f"{verb} by {record.actor} (deployment {record.deployment_id}): "
                    f"{record.reason}",
                    expected_status=model.status,
                    expected_digest=model.image_digest,
                    now=now,
                ),
            )
        )
        if previous_model is not None:
            items.append(
                (
                    f"model {previous_model.model_version}",
                    self._set_model_status(
                        previous_model.model_version,
                        RETIRED,
                        f"replaced by {model.model_version} (deployment {record.deployment_id})",
                        expected_status=previous_model.status,
                        now=now,
                    ),
                )
            )
        stored = {key: value for key, value in deployment.items() if value is not None}
        items.append(
            (
                f"deployment {record.deployment_id}",
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": stored,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            )
        )
        items.append(
            (
                "the audit event",
                self._event(
                    record.type,
                    model_version=model.model_version,
                    reason=record.reason,
                    actor=record.actor,
                    detail={
                        "from_version": None if previous is None else previous.model_version,
                        "to_version": model.model_version,
                        "deployment_id": record.deployment_id,
                        "lambda_version": record.lambda_version,
                        "previous_lambda_version": record.previous_lambda_version,
                        "deployment_config": record.deployment_config,
                        "image_digest": model.image_digest,
                        "revision": live_revision,
                    },
                ),
            )
        )
        try:
            self._transact([item for _, item in items])
        except ConditionFailedError as failed:
            if failed.index == 0:
                _, current = self.pointer_and_revision(LIVE)
                raise RegistryConflictError(
                    f"another promotion changed the live model (revision {current}, read "
                    f"{record.expected_revision}) while {model.model_version} was being "
                    "deployed; run make status and retry"
                ) from failed
            raise RegistryConflictError(
                f"{items[failed.index][0]} changed while promotion of {model.model_version} "
                "was being recorded; run make status and retry"
            ) from failed
        return from_item(Deployment, stored)
