"""The registry table: reads, audit events, and the conditional writes the changes share."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.exceptions import ClientError

from training.aws import Clock, error_code
from training.registry.items import (
    CONDITION_FAILED,
    TRANSACTION_ATTEMPTS,
    TRANSACTION_CONFLICT,
    ConditionFailedError,
    Expression,
    deserializer,
    from_item,
    is_event,
    stored,
)
from training.registry.records import (
    DEPLOYING,
    DEPLOYMENT,
    EVENT,
    LIVE,
    MODEL,
    POINTER,
    PROMOTION_EVENTS,
    ROLLBACK,
    RUN,
    Deployment,
    Event,
    Model,
    Pointer,
    RegistryConflictError,
    RegistryNotFoundError,
    Run,
    event_time,
    precise_now,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_dynamodb.type_defs import PaginatorConfigTypeDef, TransactWriteItemTypeDef


class RegistryTable:
    """One registry table: its reads, and the conditional writes every change is made of."""

    def __init__(
        self,
        table_name: str,
        *,
        dynamodb: DynamoDBServiceResource | None = None,
        actor: str = "training",
        clock: Clock = precise_now,
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
        return None if item is None else from_item(Run, item)

    def get_model(self, model_version: str) -> Model | None:
        """The model, or None."""
        item = self._get(MODEL, model_version)
        return None if item is None else from_item(Model, item)

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
        return from_item(Pointer, {"name": name, **item}), revision

    def live(self) -> Pointer | None:
        """The model the API serves."""
        return self.pointer(LIVE)

    def rollback(self) -> Pointer | None:
        """The model a rollback returns to."""
        return self.pointer(ROLLBACK)

    def list_runs(self, limit: int = 20) -> list[Run]:
        """The newest `limit` runs, newest first (run ids sort by start time)."""
        return [from_item(Run, item) for item in self._query(RUN, limit=limit, newest=True)]

    def active_runs(self) -> list[Run]:
        """Every run that has not ended (launching or running)."""
        return [run for run in map(self._run, self._query(RUN, newest=False)) if not run.terminal]

    def list_models(self) -> list[Model]:
        """Every model, newest first."""
        models = [from_item(Model, item) for item in self._query(MODEL, newest=False)]
        return sorted(models, key=lambda model: model.created_at or "", reverse=True)

    def events(self, limit: int = 20) -> list[Event]:
        """The newest `limit` audit events, newest first."""
        return [from_item(Event, item) for item in self._query(EVENT, limit=limit, newest=True)]

    def promotion_events(self, limit: int = 10) -> list[Event]:
        """The newest `limit` promotion events (promoted, rolled back, settled), newest first."""
        items = self._query(EVENT, limit=limit, newest=True, types=PROMOTION_EVENTS)
        return [from_item(Event, item) for item in items]

    def get_deployment(self, deployment_id: str) -> Deployment | None:
        """The deployment with CodeDeploy's `deployment_id`; None if promotion never recorded it."""
        item = self._get(DEPLOYMENT, deployment_id)
        return None if item is None else from_item(Deployment, item)

    # Runs.

    # Models.

    # Pointers.

    # Promotion.

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
        expression = Expression()
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
        expression = Expression()
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
            item["detail"] = stored({k: v for k, v in detail.items() if v is not None})
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    # Plumbing.

    def _run(self, item: Mapping[str, Any]) -> Run:
        return from_item(Run, item)

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
            expression = Expression()
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
        """Write `items` atomically; ConditionFailedError names the item whose check failed."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)
                return
            except ClientError as err:
                if error_code(err) != "TransactionCanceledException":
                    raise
                reasons = err.response.get("CancellationReasons", [])
                codes = [reason.get("Code") for reason in reasons]
                if CONDITION_FAILED in codes:
                    index = codes.index(CONDITION_FAILED)
                    if is_event(items[index]):
                        # Audit events are put only where no item is: a taken event key.
                        raise RegistryConflictError(
                            "an audit event with the same time and id exists; nothing was "
                            "written, retry"
                        ) from err
                    old = reasons[index].get("Item")
                    raise ConditionFailedError(
                        index,
                        None
                        if old is None
                        else {
                            key: deserializer.deserialize(cast(Any, v)) for key, v in old.items()
                        },
                    ) from err
                if TRANSACTION_CONFLICT not in codes or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise RegistryConflictError(
                        f"the registry refused the write: {', '.join(map(str, codes))}"
                    ) from err
                time.sleep(0.05 * 2**attempt)

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
        expression = Expression()
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
