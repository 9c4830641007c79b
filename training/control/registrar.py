"""Lambda: record each pushed model image (ECR push event) on its model in the registry.

Target of an EventBridge rule for successful ECR pushes to the model repository. The tag
`<dataset_version>-<model_version>` names the model; the digest and URI go on its MODEL item,
which is created if the trainer has not recorded it yet. Duplicate events change nothing; a
second digest for a registered model raises, so the event lands in the dead-letter queue.

A registered model that passed the gate (`candidate`) is announced once on the default event
bus as "Model Registered" (source `iris-ml.registry`), which the promoter takes from there.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import boto3

from training.aws import configure_logging, log, parse_image_tag, require_env
from training.contract import MODEL_REGISTERED, REGISTRY_EVENT_SOURCE, Env
from training.registry import CANDIDATE, ImageRecord, Model, Registry, RegistryConflictError

_log = logging.getLogger(__name__)


class EventPublisher(Protocol):
    """The part of an EventBridge client that publishes events."""

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:  # noqa: N803 (boto3's name)
        """EventBridge's PutEvents."""
        ...


class PublishError(RuntimeError):
    """EventBridge did not accept an event."""


@dataclass(frozen=True)
class RegistrarSettings:
    """The registrar's settings, from the environment the CDK sets."""

    registry_table: str
    repository_name: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RegistrarSettings:
        """Parse the settings; SettingsError names a missing variable."""
        env = os.environ if environ is None else environ
        return cls(
            registry_table=require_env(env, Env.REGISTRY_TABLE),
            repository_name=require_env(env, Env.REPOSITORY_NAME),
        )


class EventError(ValueError):
    """The event is not an ECR image action this function can read."""


def register(
    event: Mapping[str, Any],
    settings: RegistrarSettings,
    *,
    registry: Registry,
    events: EventPublisher | None = None,
) -> dict[str, Any]:
    """Record the image of a push event; return what was done (registered/duplicate/ignored).

    A candidate is then announced to the promoter (`events`, default: an EventBridge client),
    once: a retry after a failed announcement announces, a duplicate push does not.
    """
    detail = event.get("detail")
    if event.get("source") != "aws.ecr" or not isinstance(detail, Mapping):
        raise EventError(f"not an ECR event: source {event.get('source')!r}")
    repository = detail.get("repository-name")
    tag = detail.get("image-tag")
    digest = detail.get("image-digest")
    summary: dict[str, Any] = {"repository": repository, "image_tag": tag, "image_digest": digest}
    ignored = _ignore_reason(detail, settings)
    parsed = None
    if ignored is None:
        parsed = parse_image_tag(str(tag)) if tag else None
        if parsed is None:
            ignored = f"tag {tag} is not <dataset_version>-<model_version>" if tag else "untagged"
    if ignored is not None or parsed is None:
        log(_log, "event ignored", reason=ignored, event_id=event.get("id"), **summary)
        return {"status": "ignored", "reason": ignored, **summary}
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise EventError(f"event {event.get('id')} has no image digest: {digest!r}")
    dataset_version, model_version = parsed
    account, region = event.get("account"), event.get("region")
    if not account or not region:
        raise EventError(f"event {event.get('id')} names no account or region")
    image = ImageRecord(
        model_version=model_version,
        dataset_version=dataset_version,
        image_tag=str(tag),
        image_digest=digest,
        image_uri=f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}@{digest}",
        repository=str(repository),
    )
    try:
        model, changed = registry.register_image(image)
    except RegistryConflictError as err:
        log(_log, "image refused", level=logging.ERROR, error=str(err), **summary)
        raise
    announced = None
    if model.status == CANDIDATE and model.announced_at is None:
        announced = announce(model, events=events if events is not None else boto3.client("events"))
        registry.mark_announced(model_version, event_id=announced)
    status = "registered" if changed else "duplicate"
    log(
        _log,
        f"image {status}",
        event_id=event.get("id"),
        model_version=model_version,
        model_status=model.status,
        announced_event_id=announced,
        **summary,
    )
    return {
        "status": status,
        "model_version": model_version,
        "image_uri": image.image_uri,
        **summary,
    }


def model_registered_detail(model: Model) -> dict[str, Any]:
    """The detail of a "Model Registered" event: the model and its image."""
    accuracy = (model.metrics or {}).get("accuracy")
    return {
        "model_version": model.model_version,
        "dataset_name": model.dataset_name,
        "dataset_version": model.dataset_version,
        "image_tag": model.image_tag,
        "image_digest": model.image_digest,
        "image_uri": model.image_uri,
        "accuracy": accuracy if isinstance(accuracy, int | float) else None,
    }


def announce(model: Model, *, events: EventPublisher) -> str:
    """Publish "Model Registered" for `model` on the default bus; return the event id.

    PublishError when EventBridge refuses the entry, so the push event is retried and, failing
    that, lands in the dead-letter queue instead of the model never being promoted.
    """
    detail = model_registered_detail(model)
    response = events.put_events(
        Entries=[
            {
                "Source": REGISTRY_EVENT_SOURCE,
                "DetailType": MODEL_REGISTERED,
                "Detail": json.dumps(detail),
            }
        ]
    )
    entries = list(response.get("Entries", []))
    if response.get("FailedEntryCount", 0) or not entries or "EventId" not in entries[0]:
        entry = entries[0] if entries else {}
        raise PublishError(
            f"EventBridge refused the {MODEL_REGISTERED} event of model {model.model_version}: "
            f"{entry.get('ErrorCode', 'no entry returned')}: {entry.get('ErrorMessage', '')}"
        )
    return str(entries[0]["EventId"])


def _ignore_reason(detail: Mapping[str, Any], settings: RegistrarSettings) -> str | None:
    """Why an ECR event is not a successful push to our repository, if it is not."""
    if detail.get("action-type") != "PUSH":
        return f"action {detail.get('action-type')} is not a push"
    if detail.get("result") != "SUCCESS":
        return f"result {detail.get('result')} is not a success"
    if detail.get("repository-name") != settings.repository_name:
        return f"repository {detail.get('repository-name')} is not {settings.repository_name}"
    return None


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: settings and registry from the environment, then `register`."""
    configure_logging()
    settings = RegistrarSettings.from_env()
    # Clients are built per invocation: pushes are rare, and a fresh client always sees the
    # current environment.
    registry = Registry(settings.registry_table, actor="registrar")
    return register(event, settings, registry=registry)
