"""The model registry in DynamoDB: runs, models, pointers, deployments and audit events.

The schema is in docs/registry.md.

Every write is conditional and every state change appends an EVENT item in the same
transaction, so a change and its record cannot diverge, retries change nothing and a lost race
surfaces as RegistryConflictError instead of a silently overwritten record. records.py holds
the records and states, items.py the item conversion, table.py the reads and the transaction
machinery, and runs.py, models.py, promotions.py and deployments.py the writes of each kind.
"""

from __future__ import annotations

from training.contract import DEPLOYMENT_SUCCEEDED, PROMOTED, PROMOTION_FAILED, ROLLED_BACK
from training.registry.deployments import DeploymentWrites
from training.registry.items import create_table
from training.registry.models import ModelWrites
from training.registry.promotions import PromotionWrites
from training.registry.records import (
    ACTIVE_STATUSES,
    CANDIDATE,
    DEPLOYED,
    DEPLOYING,
    DEPLOYMENT,
    EVENT,
    FAILED,
    INTERRUPTED,
    LAUNCHING,
    LIVE,
    LIVE_STATUS,
    MODEL,
    MODEL_STATUSES,
    POINTER,
    PROMOTED_STATUSES,
    PROMOTION_EVENTS,
    REJECTED,
    RETIRED,
    ROLLBACK,
    RUN,
    RUN_DETAILS,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    TERMINAL_STATUSES,
    TIMED_OUT,
    TRAINER_MODEL_STATUSES,
    Deployment,
    Event,
    ImageRecord,
    Model,
    ModelRecord,
    Pointer,
    PromotionRecord,
    RegistryConflictError,
    RegistryError,
    RegistryNotFoundError,
    Run,
    event_time,
)
from training.registry.runs import RunWrites


class Registry(RunWrites, ModelWrites, PromotionWrites, DeploymentWrites):
    """Reads and conditional writes of one registry table, each change with its audit event."""


__all__ = [
    "ACTIVE_STATUSES",
    "CANDIDATE",
    "DEPLOYED",
    "DEPLOYING",
    "DEPLOYMENT",
    "DEPLOYMENT_SUCCEEDED",
    "EVENT",
    "FAILED",
    "INTERRUPTED",
    "LAUNCHING",
    "LIVE",
    "LIVE_STATUS",
    "MODEL",
    "MODEL_STATUSES",
    "POINTER",
    "PROMOTED",
    "PROMOTED_STATUSES",
    "PROMOTION_EVENTS",
    "PROMOTION_FAILED",
    "REJECTED",
    "RETIRED",
    "ROLLBACK",
    "ROLLED_BACK",
    "RUN",
    "RUNNING",
    "RUN_DETAILS",
    "STOPPED",
    "SUCCEEDED",
    "TERMINAL_STATUSES",
    "TIMED_OUT",
    "TRAINER_MODEL_STATUSES",
    "Deployment",
    "Event",
    "ImageRecord",
    "Model",
    "ModelRecord",
    "Pointer",
    "PromotionRecord",
    "Registry",
    "RegistryConflictError",
    "RegistryError",
    "RegistryNotFoundError",
    "Run",
    "create_table",
    "event_time",
]
