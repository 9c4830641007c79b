"""The model registry in DynamoDB: runs, models, pointers, deployments and audit events.

The schema is in docs/registry.md.

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
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from training.aws import Clock, error_code, iso, parse_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_dynamodb.type_defs import PaginatorConfigTypeDef, TransactWriteItemTypeDef

RUN, MODEL, POINTER, EVENT, DEPLOYMENT = "RUN", "MODEL", "POINTER", "EVENT", "DEPLOYMENT"
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

# A deployment that moves the live alias: recorded when CodeDeploy starts it, settled once.
DEPLOYING, DEPLOYED, STOPPED = "in-progress", "succeeded", "stopped"
# Audit events of promotion, the ones `status` lists.
PROMOTED, ROLLED_BACK = "promoted", "rolled-back"
DEPLOYMENT_SUCCEEDED, PROMOTION_FAILED = "deployment-succeeded", "promotion-failed"
PROMOTION_EVENTS = (PROMOTED, ROLLED_BACK, DEPLOYMENT_SUCCEEDED, PROMOTION_FAILED)

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
    announced_at: str | None = None


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
    deployment_id: str | None = None


@dataclass(frozen=True)
class Deployment:
    """A CodeDeploy deployment of a model to the live alias (`pk = "DEPLOYMENT"`).

    It holds what the registry, the SSM parameter and the ECR tags were before it, so a
    failed deployment can put every one of them back.
    """

    deployment_id: str
    type: str
    status: str
    model_version: str
    image_digest: str
    image_uri: str
    lambda_version: str
    previous_lambda_version: str
    live_revision: int
    actor: str
    reason: str
    created_at: str
    updated_at: str
    rollback_revision: int | None = None
    deployment_config: str | None = None
    previous_model_version: str | None = None
    previous_image_digest: str | None = None
    previous_image_uri: str | None = None
    previous_rollback_model_version: str | None = None
    previous_rollback_image_digest: str | None = None
    previous_rollback_image_uri: str | None = None
    previous_parameter_value: str | None = None
    outcome: str | None = None
    settled_at: str | None = None
    settled_by: str | None = None

    @property
    def settled(self) -> bool:
        """Whether its outcome has been recorded (it never changes again)."""
        return self.status != DEPLOYING


def event_time(moment: datetime) -> str:
    """An event key's timestamp: UTC ISO-8601 with six fractional digits, which sorts as text.

    Fixed-width microseconds keep two events of one run in order (seconds, as every other
    registry timestamp has, would leave their order to the random suffix). Keys written before
    hold whole seconds (`2026-11-27T14:05:01Z`); they read the same way (`Event.at`) and sort
    right against these, except against one written in the very same second.
    """
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


def _precise_now() -> datetime:
    """The current UTC time to the microsecond; `iso` still writes whole seconds from it."""
    return datetime.now(tz=UTC)


@dataclass(frozen=True)
class Event:
    """An audit event (`pk = "EVENT"`, `sk = <timestamp>#<8 hex>`, see `event_time`)."""

    sk: str
    type: str
    actor: str
    run_id: str | None = None
    model_version: str | None = None
    reason: str | None = None
    detail: dict[str, Any] | None = None

    @property
    def time(self) -> str:
        """When it happened (the timestamp part of the sort key, as written)."""
        return self.sk.partition("#")[0]

    @property
    def at(self) -> datetime:
        """When it happened, from a key of either resolution (microseconds or, older, seconds)."""
        return parse_iso(self.time)


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


@dataclass(frozen=True)
class PromotionRecord:
    """A started deployment as promotion knows it (record_promotion's input).

    `expected_live` and `expected_revision` are the live pointer as read before Lambda and
    CodeDeploy were called: the write holds only if the pointer is still there.
    """

    type: str
    model_version: str
    expected_live: Pointer | None
    expected_revision: int
    deployment_id: str
    lambda_version: str
    previous_lambda_version: str
    actor: str
    reason: str
    deployment_config: str | None = None
    previous_parameter_value: str | None = None


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


def _image_of(source: Model | Pointer) -> tuple[str, str | None, str | None]:
    """(model_version, image_digest, image_uri) of a model or a pointer."""
    return source.model_version, source.image_digest, source.image_uri


def _live_before(deployment: Deployment) -> tuple[str, str | None, str | None] | None:
    """What the live pointer named before `deployment`; None: no model."""
    if deployment.previous_model_version is None:
        return None
    return (
        deployment.previous_model_version,
        deployment.previous_image_digest,
        deployment.previous_image_uri,
    )


def _rollback_before(deployment: Deployment) -> tuple[str, str | None, str | None] | None:
    """What the rollback pointer named before `deployment`; None: no model."""
    if deployment.previous_rollback_model_version is None:
        return None
    return (
        deployment.previous_rollback_model_version,
        deployment.previous_rollback_image_digest,
        deployment.previous_rollback_image_uri,
    )


def _is_event(item: TransactWriteItemTypeDef) -> bool:
    """Whether a transaction item appends an audit event."""
    put = item.get("Put")
    return put is not None and put["Item"].get("pk") == EVENT


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
        clock: Clock = _precise_now,
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
        """The `live` or `rollback` pointer; None while it names no model.

        That is before the first promotion, and after a first promotion failed: the image
        CloudFormation deployed serves then, and it is no model of the registry.
        """
        return self.pointer_and_revision(name)[0]

    def pointer_and_revision(self, name: str) -> tuple[Pointer | None, int]:
        """A pointer and its revision, read together (0: never written); writers condition on it."""
        item = self._get(POINTER, name)
        if item is None:
            return None, 0
        revision = int(item.get("revision", 0))
        if "model_version" not in item:
            return None, revision
        return _from_item(Pointer, {"name": name, **item}), revision

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

    def promotion_events(self, limit: int = 10) -> list[Event]:
        """The newest `limit` promotion events (promoted, rolled back, settled), newest first."""
        items = self._query(EVENT, limit=limit, newest=True, types=PROMOTION_EVENTS)
        return [_from_item(Event, item) for item in items]

    def get_deployment(self, deployment_id: str) -> Deployment | None:
        """The deployment with CodeDeploy's `deployment_id`; None if promotion never recorded it."""
        item = self._get(DEPLOYMENT, deployment_id)
        return None if item is None else _from_item(Deployment, item)

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

    def mark_announced(self, model_version: str, *, event_id: str) -> bool:
        """Record that the "Model Registered" event went out; False if it already had.

        The registrar announces first and records after, so a failure in between announces
        twice (promotion ignores a model that is already live) rather than never.
        """
        now = iso(self._clock())
        expression = _Expression()
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
        except _ConditionFailedError:
            return False
        return True

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

    # Promotion.

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
                    _image_of(model),
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
                        _image_of(previous),
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
        except _ConditionFailedError as failed:
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
        return _from_item(Deployment, stored)

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
        except _ConditionFailedError:
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
                    _live_before(deployment),
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
                        _rollback_before(deployment),
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
        except _ConditionFailedError as failed:
            if failed.index == 0:
                return self._require_deployment(deployment_id), False
            raise RegistryConflictError(
                f"{items[failed.index][0]} changed since deployment {deployment_id} was "
                "recorded, so the registry cannot be put back as it was before it; run make "
                "status and fix it with promote or rollback"
            ) from failed
        return self._require_deployment(deployment_id), True

    def _put_pointer(
        self,
        name: str,
        image: tuple[str, str | None, str | None] | None,
        *,
        revision: int,
        expected_revision: int,
        actor: str,
        reason: str,
        deployment_id: str,
        now: str,
    ) -> TransactWriteItemTypeDef:
        """The transaction item that moves a pointer from `expected_revision` (0: none yet).

        With no image the pointer names no model (only the revision and who moved it remain).
        """
        expression = _Expression()
        if expected_revision == 0:
            condition = "attribute_not_exists(pk)"
        else:
            condition = f"{expression.name('revision')} = {expression.value(expected_revision)}"
        sets: dict[str, Any] = {
            "revision": revision,
            "updated_at": now,
            "updated_by": actor,
            "reason": reason,
            "deployment_id": deployment_id,
        }
        removes: list[str] = []
        for key, value in zip(
            ("model_version", "image_digest", "image_uri"), image or (None, None, None), strict=True
        ):
            if value is None:
                removes.append(expression.name(key))
            else:
                sets[key] = value
        update = expression.update(sets)
        if removes:
            update += " REMOVE " + ", ".join(removes)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": POINTER, "sk": name},
                "UpdateExpression": update,
                "ConditionExpression": condition,
                **expression.arguments(),  # type: ignore[typeddict-item]
            }
        }

    def _set_model_status(
        self,
        model_version: str,
        status: str,
        reason: str,
        *,
        expected_status: str | None,
        now: str,
        expected_digest: str | None = None,
    ) -> TransactWriteItemTypeDef:
        """The transaction item that sets a model's status, if it is still as read."""
        expression = _Expression()
        update = expression.update({"status": status, "status_reason": reason, "updated_at": now})
        if expected_status is None:
            condition = (
                f"attribute_exists(pk) AND attribute_not_exists({expression.name('status')})"
            )
        else:
            condition = f"{expression.name('status')} = {expression.value(expected_status)}"
        if expected_digest is not None:
            condition += (
                f" AND {expression.name('image_digest')} = {expression.value(expected_digest)}"
            )
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": MODEL, "sk": model_version},
                "UpdateExpression": update,
                "ConditionExpression": condition,
                **expression.arguments(),  # type: ignore[typeddict-item]
            }
        }

    def _settle_item(
        self, deployment_id: str, status: str, *, reason: str, actor: str, now: str
    ) -> TransactWriteItemTypeDef:
        """The transaction item that settles a deployment still in progress."""
        expression = _Expression()
        update = expression.update(
            {
                "status": status,
                "outcome": reason,
                "settled_at": now,
                "settled_by": actor,
                "updated_at": now,
            }
        )
        condition = f"{expression.name('status')} = {expression.value(DEPLOYING)}"
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": DEPLOYMENT, "sk": deployment_id},
                "UpdateExpression": update,
                "ConditionExpression": condition,
                **expression.arguments(),  # type: ignore[typeddict-item]
            }
        }

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
        actor: str | None = None,
    ) -> TransactWriteItemTypeDef:
        """The transaction item that appends an event; events are never overwritten."""
        item: dict[str, Any] = {
            "pk": EVENT,
            "sk": f"{event_time(self._clock())}#{self._token()}",
            "type": type_,
            "actor": actor or self.actor,
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

    def _require_deployment(self, deployment_id: str) -> Deployment:
        deployment = self.get_deployment(deployment_id)
        if deployment is None:
            raise RegistryNotFoundError(f"deployment {deployment_id} was never recorded")
        return deployment

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """An item read with strong consistency (writes condition on what was read)."""
        response = self._client.get_item(
            TableName=self.table_name, Key={"pk": pk, "sk": sk}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else dict(item)

    def _query(
        self,
        pk: str,
        *,
        newest: bool,
        limit: int | None = None,
        types: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The items of one partition in sort-key order (newest first when `newest`).

        With `types`, only items of those types; `limit` counts the items that match.
        """
        paginator = self._client.get_paginator("query")
        config: PaginatorConfigTypeDef = {} if limit is None else {"MaxItems": limit}
        arguments: dict[str, Any] = {}
        if types is not None:
            expression = _Expression()
            arguments["FilterExpression"] = expression.one_of("type", types)
            arguments.update(expression.arguments())
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ScanIndexForward=not newest,
            PaginationConfig=config,
            **{
                **arguments,
                "ExpressionAttributeValues": {
                    ":pk": pk,
                    **arguments.get("ExpressionAttributeValues", {}),
                },
            },
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
                    if _is_event(items[index]):
                        # Audit events are put only where no item is: a taken event key.
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
