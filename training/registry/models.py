"""Models in the registry: a trained model's record, its pushed image, its announcement."""

from __future__ import annotations

from typing import Any

from training.aws import iso
from training.registry.items import (
    OPTIMISTIC_ATTEMPTS,
    ConditionFailedError,
    Expression,
    from_item,
    plain,
    stored,
)
from training.registry.records import (
    CANDIDATE,
    MODEL,
    PROMOTED_STATUSES,
    TRAINER_MODEL_STATUSES,
    ImageRecord,
    Model,
    ModelRecord,
    RegistryConflictError,
)
from training.registry.table import RegistryTable


class ModelWrites(RegistryTable):
    """Writes of models and their images."""

    def record_model(self, record: ModelRecord) -> tuple[Model, bool]:
        """Create or update a model with what the trainer knows; registrar fields survive.

        Recording the same facts again is a no-op (no event). A model that promotion has made
        live or retired keeps that status.
        """
        if record.status not in TRAINER_MODEL_STATUSES:
            raise ValueError(f"the trainer records models as {TRAINER_MODEL_STATUSES}")
        facts: dict[str, Any] = {
            "model_version": record.model_version,
            "dataset_name": record.dataset_name,
            "dataset_version": record.dataset_version,
            "dataset_uri": record.dataset_uri,
            "dataset_s3_version_id": record.dataset_s3_version_id,
            "dataset_sha256": record.dataset_sha256,
            "metrics": dict(record.metrics),
            "gate": dict(record.gate),
            "image_tag": record.image_tag,
        }
        facts = {key: value for key, value in facts.items() if value is not None}
        for _ in range(OPTIMISTIC_ATTEMPTS):
            current = self._get(MODEL, record.model_version)
            status = None if current is None else current.get("status")
            protected = status in PROMOTED_STATUSES
            wanted = dict(facts)
            if not protected:
                wanted.update(status=record.status, status_reason=record.status_reason)
            if current is not None and all(
                plain(current.get(key)) == plain(stored(value)) for key, value in wanted.items()
            ):
                return from_item(Model, current), False
            now = iso(self._clock())
            expression = Expression()
            update = expression.update(
                {**wanted, "updated_at": now},
                if_not_exists={"run_id": record.run_id, "created_at": now},
            )
            # The write holds only if the status is still what was read: the registrar may
            # have created the item (status candidate) in between.
            if status is None:
                condition = f"attribute_not_exists({expression.name('status')})"
            else:
                condition = f"{expression.name('status')} = {expression.value(status)}"
            try:
                self._transact(
                    [
                        {
                            "Update": {
                                "TableName": self.table_name,
                                "Key": {"pk": MODEL, "sk": record.model_version},
                                "UpdateExpression": update,
                                "ConditionExpression": condition,
                                **expression.arguments(),  # type: ignore[typeddict-item]
                            }
                        },
                        self._event(
                            "model-recorded",
                            run_id=record.run_id,
                            model_version=record.model_version,
                            reason=record.status_reason,
                            detail={
                                "status": wanted.get("status", status),
                                "accuracy": record.metrics.get("accuracy"),
                                "image_tag": record.image_tag,
                            },
                        ),
                    ]
                )
            except ConditionFailedError:
                continue
            return self._require_model(record.model_version), True
        raise RegistryConflictError(
            f"model {record.model_version} kept changing while the trainer recorded it "
            f"({OPTIMISTIC_ATTEMPTS} attempts)"
        )

    def register_image(self, image: ImageRecord) -> tuple[Model, bool]:
        """Record a pushed image on its model, creating the model if the trainer has not yet.

        The same digest again is a no-op; another digest for a registered model is a
        RegistryConflictError (tags are immutable, so it means tampering).
        """
        now = iso(self._clock())
        expression = Expression()
        update = expression.update(
            {
                "model_version": image.model_version,
                "image_tag": image.image_tag,
                "image_digest": image.image_digest,
                "image_uri": image.image_uri,
                "repository": image.repository,
                "registered_at": now,
                "updated_at": now,
            },
            if_not_exists={
                # Only an image that passed the gate is ever pushed.
                "status": CANDIDATE,
                "status_reason": "image registered before the trainer recorded the model",
                "dataset_version": image.dataset_version,
                "created_at": now,
            },
        )
        condition = f"attribute_not_exists({expression.name('image_digest')})"
        try:
            self._transact(
                [
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {"pk": MODEL, "sk": image.model_version},
                            "UpdateExpression": update,
                            "ConditionExpression": condition,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            **expression.arguments(),  # type: ignore[typeddict-item]
                        }
                    },
                    self._event(
                        "image-registered",
                        model_version=image.model_version,
                        detail={
                            "image_tag": image.image_tag,
                            "image_digest": image.image_digest,
                            "image_uri": image.image_uri,
                            "repository": image.repository,
                        },
                    ),
                ]
            )
        except ConditionFailedError as failed:
            existing = from_item(Model, failed.old or {"model_version": image.model_version})
            if existing.image_digest == image.image_digest:
                return existing, False
            raise RegistryConflictError(
                f"model {image.model_version} is registered with image {existing.image_digest}; "
                f"refusing {image.image_digest} for tag {image.image_tag} (tags are immutable, "
                "so a second digest means the repository was tampered with)"
            ) from failed
        return self._require_model(image.model_version), True

    def mark_announced(self, model_version: str, *, event_id: str) -> bool:
        """Record that the "Model Registered" event went out; False if it already had.

        The registrar announces first and records after, so a failure in between announces
        twice (promotion ignores a model that is already live) rather than never.
        """
        now = iso(self._clock())
        expression = Expression()
        update = expression.update({"announced_at": now, "updated_at": now})
        condition = (
            f"attribute_exists(pk) AND attribute_not_exists({expression.name('announced_at')})"
        )
        try:
            self._transact(
                [
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {"pk": MODEL, "sk": model_version},
                            "UpdateExpression": update,
                            "ConditionExpression": condition,
                            **expression.arguments(),  # type: ignore[typeddict-item]
                        }
                    },
                    self._event(
                        "model-announced",
                        model_version=model_version,
                        detail={"event_id": event_id},
                    ),
                ]
            )
        except ConditionFailedError:
            return False
        return True
