"""DynamoDB items: conversion, condition expressions, pointer history, the table's schema."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer

from training.registry.records import EVENT, Deployment, Model, Pointer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

# Concurrent transactions on one item cancel each other (TransactionConflict); they are retried
# this many times before the conflict is reported.
TRANSACTION_ATTEMPTS = 4


OPTIMISTIC_ATTEMPTS = 3


CONDITION_FAILED = "ConditionalCheckFailed"


TRANSACTION_CONFLICT = "TransactionConflict"


deserializer = TypeDeserializer()


_T = TypeVar("_T")


def from_item(cls: type[_T], item: Mapping[str, Any]) -> _T:
    """Build a record dataclass from a deserialized item, ignoring keys it does not hold."""
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: plain(value) for key, value in item.items() if key in names})


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int/float, recursively (metrics are JSON-like)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def stored(value: Any) -> Any:
    """Floats as Decimals, recursively: DynamoDB numbers are decimal."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        # repr is the shortest text that reads back to the same float.
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(key): stored(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [stored(item) for item in value]
    return value


class Expression:
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
        self.values[placeholder] = stored(value)
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


class ConditionFailedError(Exception):
    """A transaction's condition failed: which item, and that item's state before the write."""

    def __init__(self, index: int, old: dict[str, Any] | None) -> None:
        super().__init__(f"condition of transaction item {index} failed")
        self.index = index
        self.old = old


def image_of(source: Model | Pointer) -> tuple[str, str | None, str | None]:
    """(model_version, image_digest, image_uri) of a model or a pointer."""
    return source.model_version, source.image_digest, source.image_uri


def live_before(deployment: Deployment) -> tuple[str, str | None, str | None] | None:
    """What the live pointer named before `deployment`; None: no model."""
    if deployment.previous_model_version is None:
        return None
    return (
        deployment.previous_model_version,
        deployment.previous_image_digest,
        deployment.previous_image_uri,
    )


def rollback_before(deployment: Deployment) -> tuple[str, str | None, str | None] | None:
    """What the rollback pointer named before `deployment`; None: no model."""
    if deployment.previous_rollback_model_version is None:
        return None
    return (
        deployment.previous_rollback_model_version,
        deployment.previous_rollback_image_digest,
        deployment.previous_rollback_image_uri,
    )


def is_event(item: TransactWriteItemTypeDef) -> bool:
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
