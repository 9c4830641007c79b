"""The alert enricher: alarm and deployment events and registry news -> one message each.

Triggered by EventBridge (CloudWatch alarm state changes of this app's alarms, CodeDeploy
deployment ends) and by the registry's stream (run outcomes, promotions, rollbacks, releases).
Publishes to the alarm topic. The alarms' own SNS actions stay (CloudWatch's card carries the
Slack rollback button), so the plain alarm arrives even if this function cannot run; if the
registry cannot be read, or enrichment fails in any other way, this still sends the alarm's
facts from the event alone, and an event it cannot handle at all waits in its dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from boto3.dynamodb.types import TypeDeserializer

from training.aws import configure_logging, error_reason, log, require_env
from training.contract import (
    ALARM_STATE_CHANGE,
    ALARMS_SECTION,
    DEFAULT_RUNBOOK,
    DEPLOYMENT_STATE_CHANGE,
    EVENT_PK,
    NEWS_EVENTS,
    Env,
)
from training.control.notify.context import live_facts
from training.control.notify.message import Notification
from training.control.notify.news import DeploymentReader, deployment_news, registry_news
from training.registry import Registry

_log = logging.getLogger(__name__)
_deserialize = TypeDeserializer().deserialize


class Publisher(Protocol):
    """The part of an SNS client the enricher uses."""

    def publish(self, **request: str) -> Mapping[str, Any]:
        """SNS Publish."""
        ...


@dataclass(frozen=True)
class NotifySettings:
    """The enricher's environment, parsed once."""

    topic_arn: str
    registry_table: str
    dashboard_name: str
    region: str
    runbook: str
    anchors: Mapping[str, str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> NotifySettings:
        """Read the settings the construct sets."""
        pairs = json.loads(environ.get(Env.ALARM_RUNBOOK) or "[]")
        return cls(
            topic_arn=require_env(environ, Env.TOPIC_ARN),
            registry_table=require_env(environ, Env.REGISTRY_TABLE),
            dashboard_name=require_env(environ, Env.DASHBOARD_NAME),
            region=require_env(environ, "AWS_REGION"),
            runbook=environ.get(Env.RUNBOOK_URL) or DEFAULT_RUNBOOK,
            anchors={str(name): str(anchor) for name, anchor in pairs},
        )

    def dashboard_url(self) -> str:
        """The CloudWatch console's page of the app's dashboard."""
        return (
            f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#dashboards/dashboard/{self.dashboard_name}"
        )

    def runbook_link(self, alarm_name: str) -> str:
        """The runbook row of the alarm, or the alarm table when the alarm is not mapped."""
        return f"{self.runbook}#{self.anchors.get(alarm_name, ALARMS_SECTION)}"


def _threshold(state: Mapping[str, Any]) -> str:
    """The threshold CloudWatch compared against, from the state's reason data."""
    try:
        data = json.loads(state.get("reasonData") or "{}")
    except ValueError:
        data = {}
    threshold = data.get("threshold") if isinstance(data, dict) else None
    return "see the reason" if threshold is None else f"{threshold:g}"


def alarm_notification(
    event: Mapping[str, Any], settings: NotifySettings, registry: Registry
) -> Notification:
    """An alarm's state change with the live model, its promotion, the rollback target, links."""
    facts, rollback_target = live_facts(registry)
    return plain_alarm(event, settings, facts=facts, rollback_target=rollback_target)


def plain_alarm(
    event: Mapping[str, Any],
    settings: NotifySettings,
    *,
    facts: list[tuple[str, str]],
    rollback_target: str | None = None,
) -> Notification:
    """An alarm's state change from the event alone, with whatever `facts` are known."""
    detail = event["detail"]
    name = str(detail["alarmName"])
    state = detail.get("state", {})
    value = str(state.get("value", "UNKNOWN"))
    previous = str(detail.get("previousState", {}).get("value", "UNKNOWN"))
    description = detail.get("configuration", {}).get("description") or name
    firing = value == "ALARM"
    mark = (
        ":rotating_light:"
        if firing
        else ":white_check_mark:"
        if value == "OK"
        else ":grey_question:"
    )
    steps = [f"Open the runbook row for this alarm: {settings.runbook_link(name)}"]
    if firing:
        steps += ["make status: was a model just promoted or released?"]
        if rollback_target:
            steps += [f"make rollback returns to {rollback_target} at once"]
    return Notification(
        title=f"{mark} {value}: {description}",
        description=str(state.get("reason", "")),
        event_type=f"alarm-{value.lower()}",
        facts=[
            ("Alarm", name),
            ("State", f"{previous} -> {value} at {state.get('timestamp', event.get('time', ''))}"),
            ("Threshold", _threshold(state)),
            *facts,
        ],
        next_steps=steps,
        links=[("Dashboard", settings.dashboard_url()), ("Runbook", settings.runbook_link(name))],
        keywords=[value, "alarm", name],
        related_resources=list(event.get("resources", [])),
        thread_id=name,
        context={"alarmName": name, "state": value},
    )


def notifications(
    event: Mapping[str, Any],
    *,
    settings: NotifySettings,
    registry: Registry,
    codedeploy: DeploymentReader,
) -> list[Notification]:
    """The messages one invocation's event calls for (none for an event that is not news)."""
    if "Records" in event:
        found = []
        for record in event["Records"]:
            image = record.get("dynamodb", {}).get("NewImage")
            if record.get("eventName") != "INSERT" or not image:
                continue
            item = {key: _deserialize(value) for key, value in image.items()}
            if item.get("pk") == EVENT_PK and item.get("type") in NEWS_EVENTS:
                found.append(registry_news(item, registry=registry))
        return found
    kind = event.get("detail-type")
    if kind == ALARM_STATE_CHANGE:
        return [alarm_notification(event, settings, registry)]
    if kind == DEPLOYMENT_STATE_CHANGE:
        news = deployment_news(event, registry=registry, codedeploy=codedeploy, settings=settings)
        return [] if news is None else [news]
    log(_log, "event ignored", level=logging.WARNING, detail_type=kind)
    return []


def publish(sns: Publisher, topic_arn: str, messages: list[Notification]) -> int:
    """Publish each message to the topic; an error propagates, so Lambda retries the event."""
    for message in messages:
        sns.publish(**message.publish_arguments(topic_arn))
        log(_log, "published", title=message.title, event_type=message.event_type)
    return len(messages)


def handler(event: Mapping[str, Any], context: object) -> dict[str, int]:
    """Lambda entry point."""
    configure_logging()
    settings = NotifySettings.from_env(os.environ)
    registry = Registry(settings.registry_table, actor="notify")
    try:
        found = notifications(
            event, settings=settings, registry=registry, codedeploy=boto3.client("codedeploy")
        )
    except Exception as err:  # noqa: BLE001 - a broken event still tells someone
        log(_log, "enrichment failed", level=logging.ERROR, error=error_reason(err))
        found = [fallback(event, settings, err)]
    return {"published": publish(boto3.client("sns"), settings.topic_arn, found)}


def fallback(event: Mapping[str, Any], settings: NotifySettings, err: Exception) -> Notification:
    """What goes out when enrichment failed: the plain alarm if the event is one, else a notice.

    Its name, state, reason, threshold and runbook row come from the event alone, so a bug in
    the enrichment costs the message its model facts, never the alarm.
    """
    unread = [("Registry", f"not read ({type(err).__name__}); run make status")]
    if event.get("detail-type") == ALARM_STATE_CHANGE:
        try:
            return plain_alarm(event, settings, facts=unread)
        except Exception as again:  # noqa: BLE001 - a malformed alarm event: the notice below
            err = again
    return Notification(
        title=":warning: An event could not be enriched",
        description=f"{event.get('detail-type', 'registry news')}: {error_reason(err)}",
        event_type="enrichment-failed",
        facts=unread,
        links=[("Dashboard", settings.dashboard_url())],
    )
