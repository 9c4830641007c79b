"""The registry's records and states: runs, models, pointers, deployments, audit events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from training.aws import parse_iso
from training.contract import (
    DEPLOYMENT_SUCCEEDED,
    EVENT_PK,
    PROMOTED,
    PROMOTION_FAILED,
    ROLLED_BACK,
)

RUN, MODEL, POINTER, EVENT, DEPLOYMENT = "RUN", "MODEL", "POINTER", EVENT_PK, "DEPLOYMENT"
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


def precise_now() -> datetime:
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
