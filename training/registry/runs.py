"""Training runs in the registry: started, launched, running, finished."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training.aws import iso
from training.contract import RUN_FINISHED
from training.registry.items import ConditionFailedError, Expression
from training.registry.records import (
    ACTIVE_STATUSES,
    LAUNCHING,
    RUN,
    RUN_DETAILS,
    RUNNING,
    TERMINAL_STATUSES,
    RegistryConflictError,
    RegistryNotFoundError,
    Run,
)
from training.registry.table import RegistryTable


class RunWrites(RegistryTable):
    """Writes of training runs."""

    def start_run(
        self,
        run_id: str,
        *,
        dataset_uri: str,
        dataset_name: str,
        dataset_version: str,
        trigger: str,
        requested_by: str | None = None,
        request_reason: str | None = None,
    ) -> tuple[Run, bool]:
        """Record a run as `launching`; (run, False) when this run id was already recorded.

        A second start of the same run (a duplicate event) is a no-op; a different run under
        the same id is a RegistryConflictError.
        """
        now = iso(self._clock())
        item: dict[str, Any] = {
            "pk": RUN,
            "sk": run_id,
            "run_id": run_id,
            "status": LAUNCHING,
            "trigger": trigger,
            "dataset_uri": dataset_uri,
            "dataset_name": dataset_name,
            "dataset_version": dataset_version,
            "started_at": now,
            "updated_at": now,
        }
        if requested_by is not None:
            item["requested_by"] = requested_by
        try:
            self._transact(
                [
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    self._event(
                        "run-started",
                        run_id=run_id,
                        reason=request_reason,
                        detail={
                            "trigger": trigger,
                            "dataset_uri": dataset_uri,
                            "requested_by": requested_by,
                        },
                    ),
                ]
            )
        except ConditionFailedError as failed:
            existing = self._run(failed.old or {})
            if existing.dataset_uri == dataset_uri and existing.trigger == trigger:
                return existing, False
            raise RegistryConflictError(
                f"run {run_id} already exists for {existing.dataset_uri} "
                f"({existing.trigger}); refusing to record {dataset_uri} ({trigger}) under it"
            ) from failed
        return self._run(item), True

    def record_launch(
        self, run_id: str, *, instance_id: str, instance_type: str, market: str
    ) -> Run:
        """Record the instance a launching run was started on (the launcher's write)."""
        return self._set_instance(
            run_id,
            instance_id=instance_id,
            instance_type=instance_type,
            market=market,
            status=None,
            event="run-launched",
        )

    def mark_running(
        self, run_id: str, *, instance_id: str, instance_type: str, market: str
    ) -> Run:
        """Move a run to `running` on its instance (the trainer's first write)."""
        return self._set_instance(
            run_id,
            instance_id=instance_id,
            instance_type=instance_type,
            market=market,
            status=RUNNING,
            event="run-running",
        )

    def _set_instance(
        self,
        run_id: str,
        *,
        instance_id: str,
        instance_type: str,
        market: str,
        status: str | None,
        event: str,
    ) -> Run:
        """Set where an active run runs; the same instance twice is a no-op."""
        current = self.get_run(run_id)
        if current is None:
            raise RegistryNotFoundError(f"run {run_id} does not exist")
        wanted = {"instance_id": instance_id, "instance_type": instance_type, "market": market}
        if status is not None:
            wanted["status"] = status
        if all(getattr(current, key) == value for key, value in wanted.items()):
            return current
        if current.terminal:
            raise RegistryConflictError(
                f"run {run_id} already ended as {current.status}; not recording {event}"
            )
        if current.instance_id not in (None, instance_id):
            raise RegistryConflictError(
                f"run {run_id} runs on {current.instance_id}, not on {instance_id}"
            )
        expression = Expression()
        update = expression.update({**wanted, "updated_at": iso(self._clock())})
        condition = (
            f"{expression.one_of('status', ACTIVE_STATUSES)} AND "
            f"(attribute_not_exists({expression.name('instance_id')}) OR "
            f"{expression.name('instance_id')} = {expression.value(instance_id)})"
        )
        try:
            self._transact(
                [
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {"pk": RUN, "sk": run_id},
                            "UpdateExpression": update,
                            "ConditionExpression": condition,
                            **expression.arguments(),  # type: ignore[typeddict-item]
                        }
                    },
                    self._event(event, run_id=run_id, detail=dict(wanted)),
                ]
            )
        except ConditionFailedError as failed:
            raise RegistryConflictError(
                f"run {run_id} changed while recording {event}; it is now {self.get_run(run_id)}"
            ) from failed
        return self._require_run(run_id)

    def finish_run(
        self,
        run_id: str,
        status: str,
        reason: str,
        *,
        details: Mapping[str, Any] | None = None,
    ) -> tuple[Run, bool]:
        """End an active run; (run, False) without any change when it had already ended."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(
                f"{status!r} is not a terminal status ({', '.join(TERMINAL_STATUSES)})"
            )
        extra = {key: value for key, value in (details or {}).items() if value is not None}
        unknown = sorted(set(extra) - RUN_DETAILS)
        if unknown:
            raise ValueError(f"finish_run cannot record {unknown}; allowed: {sorted(RUN_DETAILS)}")
        now = iso(self._clock())
        expression = Expression()
        update = expression.update(
            {"status": status, "reason": reason, "finished_at": now, "updated_at": now, **extra}
        )
        condition = expression.one_of("status", ACTIVE_STATUSES)
        try:
            self._transact(
                [
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {"pk": RUN, "sk": run_id},
                            "UpdateExpression": update,
                            "ConditionExpression": condition,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            **expression.arguments(),  # type: ignore[typeddict-item]
                        }
                    },
                    self._event(
                        RUN_FINISHED,
                        run_id=run_id,
                        model_version=extra.get("model_version"),
                        reason=reason,
                        detail={"status": status},
                    ),
                ]
            )
        except ConditionFailedError as failed:
            if failed.old is None:
                raise RegistryNotFoundError(f"run {run_id} does not exist") from failed
            return self._run(failed.old), False
        return self._require_run(run_id), True
