"""The model registry in DynamoDB: runs, models, pointers and audit events (docs/registry.md).

Every write is conditional and every state change appends an EVENT item in the same
transaction, so a change and its record cannot diverge, retries change nothing and a lost race
surfaces as RegistryConflictError instead of a silently overwritten record.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from training.aws import Clock, error_code, iso, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_dynamodb.type_defs import PaginatorConfigTypeDef, TransactWriteItemTypeDef

RUN, MODEL, POINTER, EVENT = "RUN", "MODEL", "POINTER", "EVENT"
LIVE, ROLLBACK = "live", "rollback"

LAUNCHING, RUNNING = "launching", "running"
SUCCEEDED, REJECTED, FAILED, INTERRUPTED, TIMED_OUT = (
    "succeeded",
    "rejected",
    "failed",
    "interrupted",
    "timed_out",
)
ACTIVE_STATUSES = (LAUNCHING, RUNNING)
TERMINAL_STATUSES = (SUCCEEDED, REJECTED, FAILED, INTERRUPTED, TIMED_OUT)

CANDIDATE, LIVE_STATUS, RETIRED = "candidate", "live", "retired"
MODEL_STATUSES = (CANDIDATE, LIVE_STATUS, RETIRED, REJECTED, FAILED)
# Statuses that promotion owns: a trainer re-recording the same model must not demote it.
PROMOTED_STATUSES = (LIVE_STATUS, RETIRED)
TRAINER_MODEL_STATUSES = (CANDIDATE, REJECTED, FAILED)

# What finish_run may record besides status and reason.
RUN_DETAILS = frozenset(
    {
        "dataset_s3_version_id",
        "dataset_sha256",
        "instance_id",
        "instance_type",
        "market",
        "model_version",
        "image_tag",
        "metrics",
    }
)

# Concurrent transactions on one item cancel each other (TransactionConflict); they are retried
# this many times before the conflict is reported.
_TRANSACTION_ATTEMPTS = 4
_OPTIMISTIC_ATTEMPTS = 3
_CONDITION_FAILED = "ConditionalCheckFailed"
_TRANSACTION_CONFLICT = "TransactionConflict"
_deserializer = TypeDeserializer()


class RegistryError(Exception):
    """The registry could not record or read something."""


class RegistryConflictError(RegistryError):
    """A conditional write lost: the item is not in the state the write requires."""


class RegistryNotFoundError(RegistryError):
    """The item a write needs does not exist."""


@dataclass(frozen=True)
class Run:
    """A training run (`pk = "RUN"`)."""

    run_id: str
    status: str
    trigger: str
    dataset_uri: str
    dataset_name: str
    dataset_version: str
    started_at: str
    updated_at: str
    reason: str | None = None
    requested_by: str | None = None
    finished_at: str | None = None
    dataset_s3_version_id: str | None = None
    dataset_sha256: str | None = None
    instance_id: str | None = None
    instance_type: str | None = None
    market: str | None = None
    model_version: str | None = None
    image_tag: str | None = None
    metrics: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        """Whether the run has ended (its status never changes again)."""
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class Model:
    """A trained model (`pk = "MODEL"`), as the trainer and the registrar recorded it."""

    model_version: str
    status: str | None = None
    status_reason: str | None = None
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_version: str | None = None
    dataset_uri: str | None = None
    dataset_s3_version_id: str | None = None
    dataset_sha256: str | None = None
    metrics: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    image_tag: str | None = None
    image_digest: str | None = None
    image_uri: str | None = None
    repository: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    registered_at: str | None = None


@dataclass(frozen=True)
class Pointer:
    """The live or rollback pointer (`pk = "POINTER"`)."""

    name: str
    model_version: str
    revision: int
    image_digest: str | None = None
    image_uri: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Event:
    """An audit event (`pk = "EVENT"`, `sk = <timestamp>#<8 hex>`)."""

    sk: str
    type: str
    actor: str
    run_id: str | None = None
    model_version: str | None = None
    reason: str | None = None
    detail: dict[str, Any] | None = None

    @property
    def time(self) -> str:
        """When it happened (the timestamp part of the sort key)."""
        return self.sk.partition("#")[0]


@dataclass(frozen=True)
class ModelRecord:
    """What the trainer knows about a model it trained (record_model's input)."""

    model_version: str
    status: str
    status_reason: str
    run_id: str
    dataset_name: str
    dataset_version: str
    dataset_uri: str
    dataset_sha256: str
    metrics: Mapping[str, Any]
    gate: Mapping[str, Any]
    dataset_s3_version_id: str | None = None
    image_tag: str | None = None


@dataclass(frozen=True)
class ImageRecord:
    """What the registrar knows about a pushed model image (register_image's input)."""

    model_version: str
    dataset_version: str
    image_tag: str
    image_digest: str
    image_uri: str
    repository: str


_T = TypeVar("_T")


def _from_item(cls: type[_T], item: Mapping[str, Any]) -> _T:
    """Build a record dataclass from a deserialized item, ignoring keys it does not hold."""
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: _plain(value) for key, value in item.items() if key in names})


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int/float, recursively (metrics are JSON-like)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _stored(value: Any) -> Any:
    """Floats as Decimals, recursively: DynamoDB numbers are decimal."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        # repr is the shortest text that reads back to the same float.
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(key): _stored(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_stored(item) for item in value]
    return value


class _Expression:
    """Placeholders for attribute names and values, so reserved words (status) are safe."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        """The placeholder of an attribute name."""
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        """The placeholder of a value."""
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _stored(value)
        return placeholder

    def one_of(self, attribute: str, options: Sequence[str]) -> str:
        """A condition: the attribute holds one of `options`."""
        return f"{self.name(attribute)} IN ({', '.join(self.value(o) for o in options)})"

    def update(
        self, sets: Mapping[str, Any], *, if_not_exists: Mapping[str, Any] | None = None
    ) -> str:
        """A SET expression: `sets` overwrite, `if_not_exists` only fill missing attributes."""
        parts = [f"{self.name(key)} = {self.value(value)}" for key, value in sets.items()]
        for key, value in (if_not_exists or {}).items():
            name = self.name(key)
            parts.append(f"{name} = if_not_exists({name}, {self.value(value)})")
        return "SET " + ", ".join(parts)

    def arguments(self) -> dict[str, Any]:
        """ExpressionAttributeNames/Values for the request."""
        arguments: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            arguments["ExpressionAttributeValues"] = self.values
        return arguments


class _ConditionFailedError(Exception):
    """A transaction's condition failed: which item, and that item's state before the write."""

    def __init__(self, index: int, old: dict[str, Any] | None) -> None:
        super().__init__(f"condition of transaction item {index} failed")
        self.index = index
        self.old = old


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create a registry table with the key schema the CDK declares (local runs and tests)."""
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name)


class Registry:
    """Reads and conditional writes of one registry table, each change with its audit event."""

    def __init__(
        self,
        table_name: str,
        *,
        dynamodb: DynamoDBServiceResource | None = None,
        actor: str = "training",
        clock: Clock = utc_now,
        token: Callable[[], str] = lambda: secrets.token_hex(4),
    ) -> None:
        # The resource's client converts Python values to attribute values in every call,
        # transactions and paginators included.
        resource = dynamodb if dynamodb is not None else boto3.resource("dynamodb")
        self._client: DynamoDBClient = resource.meta.client
        self.table_name = table_name
        self.actor = actor
        self._clock = clock
        self._token = token

    # Reads.

    def get_run(self, run_id: str) -> Run | None:
        """The run, or None."""
        item = self._get(RUN, run_id)
        return None if item is None else _from_item(Run, item)

    def get_model(self, model_version: str) -> Model | None:
        """The model, or None."""
        item = self._get(MODEL, model_version)
        return None if item is None else _from_item(Model, item)

    def pointer(self, name: str) -> Pointer | None:
        """The `live` or `rollback` pointer, or None before the first promotion."""
        item = self._get(POINTER, name)
        return None if item is None else _from_item(Pointer, {"name": name, **item})

    def live(self) -> Pointer | None:
        """The model the API serves."""
        return self.pointer(LIVE)

    def rollback(self) -> Pointer | None:
        """The model a rollback returns to."""
        return self.pointer(ROLLBACK)

    def list_runs(self, limit: int = 20) -> list[Run]:
        """The newest `limit` runs, newest first (run ids sort by start time)."""
        return [_from_item(Run, item) for item in self._query(RUN, limit=limit, newest=True)]

    def active_runs(self) -> list[Run]:
        """Every run that has not ended (launching or running)."""
        return [run for run in map(self._run, self._query(RUN, newest=False)) if not run.terminal]

    def list_models(self) -> list[Model]:
        """Every model, newest first."""
        models = [_from_item(Model, item) for item in self._query(MODEL, newest=False)]
        return sorted(models, key=lambda model: model.created_at or "", reverse=True)

    def events(self, limit: int = 20) -> list[Event]:
        """The newest `limit` audit events, newest first."""
        return [_from_item(Event, item) for item in self._query(EVENT, limit=limit, newest=True)]

    # Runs.

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
        except _ConditionFailedError as failed:
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
        expression = _Expression()
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
        except _ConditionFailedError as failed:
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
        expression = _Expression()
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
                        "run-finished",
                        run_id=run_id,
                        model_version=extra.get("model_version"),
                        reason=reason,
                        detail={"status": status},
                    ),
                ]
            )
        except _ConditionFailedError as failed:
            if failed.old is None:
                raise RegistryNotFoundError(f"run {run_id} does not exist") from failed
            return self._run(failed.old), False
        return self._require_run(run_id), True

    # Models.

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
        for _ in range(_OPTIMISTIC_ATTEMPTS):
            current = self._get(MODEL, record.model_version)
            status = None if current is None else current.get("status")
            protected = status in PROMOTED_STATUSES
            wanted = dict(facts)
            if not protected:
                wanted.update(status=record.status, status_reason=record.status_reason)
            if current is not None and all(
                _plain(current.get(key)) == _plain(_stored(value)) for key, value in wanted.items()
            ):
                return _from_item(Model, current), False
            now = iso(self._clock())
            expression = _Expression()
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
            except _ConditionFailedError:
                continue
            return self._require_model(record.model_version), True
        raise RegistryConflictError(
            f"model {record.model_version} kept changing while the trainer recorded it "
            f"({_OPTIMISTIC_ATTEMPTS} attempts)"
        )

    def register_image(self, image: ImageRecord) -> tuple[Model, bool]:
        """Record a pushed image on its model, creating the model if the trainer has not yet.

        The same digest again is a no-op; another digest for a registered model is a
        RegistryConflictError (tags are immutable, so it means tampering).
        """
        now = iso(self._clock())
        expression = _Expression()
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
        except _ConditionFailedError as failed:
            existing = _from_item(Model, failed.old or {"model_version": image.model_version})
            if existing.image_digest == image.image_digest:
                return existing, False
            raise RegistryConflictError(
                f"model {image.model_version} is registered with image {existing.image_digest}; "
                f"refusing {image.image_digest} for tag {image.image_tag} (tags are immutable, "
                "so a second digest means the repository was tampered with)"
            ) from failed
        return self._require_model(image.model_version), True

    # Pointers.

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
        expression = _Expression()
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
                        "promoted",
                        model_version=model_version,
                        reason=reason,
                        detail={"pointer": LIVE, "revision": expected_revision + 1},
                    ),
                ]
            )
        except _ConditionFailedError as failed:
            current = self.live()
            raise RegistryConflictError(
                f"the live pointer is at revision {current.revision if current else 0}, "
                f"not {expected_revision}; read it again before moving it"
            ) from failed
        return _from_item(Pointer, {"name": LIVE, **pointer})

    # Events.

    def append_event(
        self,
        type_: str,
        *,
        run_id: str | None = None,
        model_version: str | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an audit event on its own (for facts that change no other item)."""
        self._transact(
            [
                self._event(
                    type_, run_id=run_id, model_version=model_version, reason=reason, detail=detail
                )
            ]
        )

    def _event(
        self,
        type_: str,
        *,
        run_id: str | None = None,
        model_version: str | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> TransactWriteItemTypeDef:
        """The transaction item that appends an event; events are never overwritten."""
        item: dict[str, Any] = {
            "pk": EVENT,
            "sk": f"{iso(self._clock())}#{self._token()}",
            "type": type_,
            "actor": self.actor,
        }
        optional = {"run_id": run_id, "model_version": model_version, "reason": reason}
        item.update({key: value for key, value in optional.items() if value is not None})
        if detail:
            item["detail"] = _stored({k: v for k, v in detail.items() if v is not None})
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    # Plumbing.

    def _run(self, item: Mapping[str, Any]) -> Run:
        return _from_item(Run, item)

    def _require_run(self, run_id: str) -> Run:
        run = self.get_run(run_id)
        if run is None:
            raise RegistryNotFoundError(f"run {run_id} does not exist")
        return run

    def _require_model(self, model_version: str) -> Model:
        model = self.get_model(model_version)
        if model is None:
            raise RegistryNotFoundError(f"model {model_version} does not exist")
        return model

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """An item read with strong consistency (writes condition on what was read)."""
        response = self._client.get_item(
            TableName=self.table_name, Key={"pk": pk, "sk": sk}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else dict(item)

    def _query(
        self, pk: str, *, newest: bool, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The items of one partition in sort-key order (newest first when `newest`)."""
        paginator = self._client.get_paginator("query")
        config: PaginatorConfigTypeDef = {} if limit is None else {"MaxItems": limit}
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": pk},
            ScanIndexForward=not newest,
            PaginationConfig=config,
        )
        for page in pages:
            for item in page.get("Items", []):
                yield dict(item)

    def _transact(self, items: list[TransactWriteItemTypeDef]) -> None:
        """Write `items` atomically; _ConditionFailedError names the item whose check failed."""
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)
                return
            except ClientError as err:
                if error_code(err) != "TransactionCanceledException":
                    raise
                reasons = err.response.get("CancellationReasons", [])
                codes = [reason.get("Code") for reason in reasons]
                if _CONDITION_FAILED in codes:
                    index = codes.index(_CONDITION_FAILED)
                    if index > 0:
                        # Items after the first are audit events: a taken event key.
                        raise RegistryConflictError(
                            "an audit event with the same time and id exists; nothing was "
                            "written, retry"
                        ) from err
                    old = reasons[index].get("Item")
                    raise _ConditionFailedError(
                        index,
                        None
                        if old is None
                        else {
                            key: _deserializer.deserialize(cast(Any, v)) for key, v in old.items()
                        },
                    ) from err
                if _TRANSACTION_CONFLICT not in codes or attempt == _TRANSACTION_ATTEMPTS - 1:
                    raise RegistryConflictError(
                        f"the registry refused the write: {', '.join(map(str, codes))}"
                    ) from err
                time.sleep(0.05 * 2**attempt)
