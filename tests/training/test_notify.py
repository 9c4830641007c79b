"""The alert enricher on moto: recorded alarm and CodeDeploy events, registry news, fallbacks."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from tests.training.fakes import TABLE, V1, V2, PromotionWorld, load_event
from training.contract import ALARMS_SECTION, DEFAULT_RUNBOOK
from training.control.notify.handler import NotifySettings, handler, notifications, publish
from training.control.notify.message import REDACTED, Notification
from training.control.promotion import promote
from training.registry import Registry

ALARM = "iris-ml-dev-observability-ServingApi5xxRate4B1C2D3E-1Q2W3E4R5T6Y"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:alarms"
SETTINGS = NotifySettings(
    topic_arn=TOPIC,
    registry_table=TABLE,
    dashboard_name="iris-ml-dev-overview",
    region="eu-west-1",
    runbook=DEFAULT_RUNBOOK,
    anchors={ALARM: "api5xxrate"},
)
D2 = "d-2PROMOTE2"
# What must never leave in a message: the function's own credentials, an access key id.
# Assembled here so the repository's credential scanner does not flag the test itself.
SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"


class Published:
    """Records sns:Publish calls instead of making them."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []

    def publish(self, **request: str) -> dict[str, Any]:
        self.requests.append(request)
        return {"MessageId": "1"}

    def messages(self) -> list[dict[str, str]]:
        return [json.loads(request["Message"]) for request in self.requests]


def chatbot(message: dict[str, str]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(message["default"])
    return parsed


@pytest.fixture
def promoted(world: PromotionWorld) -> PromotionWorld:
    """v1 was live; alice promoted v2 (deployment D2), whose canary is running."""
    world.add_model(V1, "v1", accuracy=0.9667)
    world.add_model(V2, "v2", accuracy=0.98)
    world.seed_live(V1)
    world.expect_deployment(
        D2, current="2", target="3", description=f"model promotion: promoted {V2} by alice: better"
    )
    promote(V2, actor="alice", reason="better", services=world.services)
    world.clock.advance(seconds=1)
    return world


def enrich(event: dict[str, Any], registry: Registry, world: PromotionWorld) -> Published:
    found = notifications(
        event, settings=SETTINGS, registry=registry, codedeploy=world.services.codedeploy
    )
    published = Published()
    publish(published, TOPIC, found)
    return published


def test_an_alarm_says_what_fired_the_live_model_its_promotion_and_the_way_back(
    promoted: PromotionWorld,
) -> None:
    published = enrich(load_event("cloudwatch_alarm_state_change"), promoted.registry, promoted)

    [request] = published.requests
    assert request["TopicArn"] == TOPIC
    assert request["MessageStructure"] == "json"
    [message] = published.messages()
    custom = chatbot(message)
    assert custom["version"] == "1.0"
    assert custom["source"] == "custom"
    content = custom["content"]
    assert content["textType"] == "client-markdown"
    assert content["title"] == ":rotating_light: ALARM: More than 1.0% of API answers are 5xx"
    body = content["description"]
    for expected in (
        "was greater than the threshold (1.0)",
        "*Threshold:* 1",
        f"*Live model:* {V2} (dataset v2)",
        "by alice: better (deployment d-2PROMOTE2)",
        f"*Rollback target:* {V1} (dataset v1)",
        "#dashboards/dashboard/iris-ml-dev-overview",
        "docs/runbook.md#api5xxrate",
    ):
        assert expected in body, expected
    assert f"make rollback returns to {V1} at once" in content["nextSteps"]
    assert custom["metadata"]["threadId"] == ALARM
    # E-mail gets the same facts as plain text, and a subject without Slack emoji codes.
    assert f"Live model: {V2} (dataset v2)" in message["email"]
    assert "Runbook: docs/runbook.md#api5xxrate" in message["email"]
    assert request["Subject"] == "ALARM: More than 1.0% of API answers are 5xx"
    assert message["https"] == message["default"]


def test_an_unmapped_alarm_links_the_runbook_table(promoted: PromotionWorld) -> None:
    event = load_event("cloudwatch_alarm_state_change", alarmName="someone-elses-alarm")
    [message] = enrich(event, promoted.registry, promoted).messages()
    assert f"docs/runbook.md#{ALARMS_SECTION}" in chatbot(message)["content"]["description"]


def test_the_alarm_still_arrives_when_the_registry_cannot_be_read(
    promoted: PromotionWorld,
) -> None:
    unreadable = Registry("no-such-table", dynamodb=boto3.resource("dynamodb"))

    [message] = enrich(load_event("cloudwatch_alarm_state_change"), unreadable, promoted).messages()

    body = chatbot(message)["content"]["description"]
    assert "*Registry:* could not be read (" in body
    assert "run make status" in body
    assert "was greater than the threshold (1.0)" in body
    assert "Live model" not in body
    assert "Rollback target" not in body
    assert "Registry: could not be read" in message["email"]


def test_the_handler_publishes_the_plain_alarm_to_the_topic_without_a_registry(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end on moto: no registry table at all, the alarm reaches a topic subscriber."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    for name, value in {
        "TOPIC_ARN": topic,
        "REGISTRY_TABLE": "no-such-table",
        "DASHBOARD_NAME": "iris-ml-dev-overview",
        "AWS_REGION": "eu-west-1",
        "ALARM_RUNBOOK": json.dumps([[ALARM, "api5xxrate"]]),
    }.items():
        monkeypatch.setenv(name, value)

    assert handler(load_event("cloudwatch_alarm_state_change"), None) == {"published": 1}

    [received] = sqs.receive_message(QueueUrl=queue)["Messages"]
    custom = json.loads(json.loads(received["Body"])["Message"])
    assert custom["source"] == "custom"
    assert "could not be read" in custom["content"]["description"]


def test_the_plain_alarm_survives_any_failure_of_the_enrichment(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the enrichment costs the message its model facts, never the alarm's facts."""
    published = Published()
    monkeypatch.setattr("training.control.notify.handler.boto3.client", lambda service: published)
    for name, value in {
        "TOPIC_ARN": TOPIC,
        "REGISTRY_TABLE": TABLE,
        "DASHBOARD_NAME": "iris-ml-dev-overview",
        "AWS_REGION": "eu-west-1",
        "ALARM_RUNBOOK": json.dumps([[ALARM, "api5xxrate"]]),
    }.items():
        monkeypatch.setenv(name, value)

    def broken(registry: Registry) -> None:
        raise RuntimeError("a bug in the enrichment")

    monkeypatch.setattr("training.control.notify.handler.live_facts", broken)

    assert handler(load_event("cloudwatch_alarm_state_change"), None) == {"published": 1}

    [message] = published.messages()
    custom = chatbot(message)
    assert (
        custom["content"]["title"]
        == ":rotating_light: ALARM: More than 1.0% of API answers are 5xx"
    )
    body = custom["content"]["description"]
    assert f"*Alarm:* {ALARM}" in body
    assert "*Threshold:* 1" in body
    assert "was greater than the threshold (1.0)" in body
    assert "*Registry:* not read (RuntimeError); run make status" in body
    assert "docs/runbook.md#api5xxrate" in body


def test_a_cloudfront_alarm_forwarded_from_us_east_1_is_enriched_like_the_others(
    promoted: PromotionWorld,
) -> None:
    """The CDN's alarm lives in us-east-1; its event keeps that region after forwarding."""
    cdn = "iris-ml-dev-cdn-monitoring-CdnCdn5xxRate1A2B3C4D-9Z8Y7X6W5V4U"
    event = load_event("cloudwatch_alarm_state_change", alarmName=cdn)
    event["region"] = "us-east-1"
    settings = NotifySettings(**{**SETTINGS.__dict__, "anchors": {cdn: "cdn5xxrate"}})

    found = notifications(
        event,
        settings=settings,
        registry=promoted.registry,
        codedeploy=promoted.services.codedeploy,
    )

    [message] = found
    text = message.chatbot()["content"]["description"]
    assert f"*Alarm:* {cdn}" in text
    assert "docs/runbook.md#cdn5xxrate" in text
    assert f"*Rollback target:* {V1}" in text
    # The dashboard is the app region's, wherever the alarm fired.
    assert "https://eu-west-1.console.aws.amazon.com/cloudwatch/" in text


def test_a_message_never_carries_credentials_or_key_ids(
    promoted: PromotionWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    # A reason someone else wrote, quoting a credential by mistake.
    promoted.services.registry._client.update_item(
        TableName=TABLE,
        Key={"pk": "POINTER", "sk": "live"},
        UpdateExpression="SET #reason = :reason",
        ExpressionAttributeNames={"#reason": "reason"},
        ExpressionAttributeValues={":reason": f"pasted {KEY_ID} and {SECRET}"},
    )

    published = enrich(load_event("cloudwatch_alarm_state_change"), promoted.registry, promoted)

    [request] = published.requests
    everything = json.dumps(request)
    assert SECRET not in everything
    assert KEY_ID not in everything
    assert REDACTED in chatbot(published.messages()[0])["content"]["description"]
    assert "x-api-key" not in everything.lower()


def test_a_canary_rolled_back_by_codedeploy_names_the_versions_and_the_reason(
    promoted: PromotionWorld,
) -> None:
    promoted.codedeploy.add_response(
        "get_deployment",
        {
            "deploymentInfo": {
                "deploymentId": D2,
                "status": "Failed",
                "errorInformation": {"code": "ALARM_ACTIVE", "message": "FunctionErrors fired"},
            }
        },
        {"deploymentId": D2},
    )
    event = load_event("codedeploy_deployment_failure", deploymentId=D2)

    [message] = enrich(event, promoted.registry, promoted).messages()

    content = chatbot(message)["content"]
    assert content["title"] == f":rewind: Canary rolled back: {V2} failed, {V1} serves again"
    assert content["description"].startswith("FunctionErrors fired")
    assert "*By:* alice" in content["description"]
    promoted.verify()


def test_a_completed_canary_says_which_model_is_live(promoted: PromotionWorld) -> None:
    event = load_event("codedeploy_deployment_success", deploymentId=D2)
    [message] = enrich(event, promoted.registry, promoted).messages()
    assert (
        chatbot(message)["content"]["title"] == f":white_check_mark: Canary complete: {V2} is live"
    )


def test_a_deployment_promotion_never_recorded_is_a_release(promoted: PromotionWorld) -> None:
    event = load_event("codedeploy_deployment_success", deploymentId="d-RELEASE01")
    [message] = enrich(event, promoted.registry, promoted).messages()
    content = chatbot(message)["content"]
    assert content["title"] == ":white_check_mark: Release complete"
    assert "a release (same model)" in content["description"]


def stream_record(item: dict[str, Any]) -> dict[str, Any]:
    serialize = TypeSerializer().serialize
    return {
        "eventName": "INSERT",
        "dynamodb": {"NewImage": {key: serialize(value) for key, value in item.items()}},
    }


def test_a_promotion_from_the_registry_stream_is_one_message(promoted: PromotionWorld) -> None:
    items = promoted.services.registry._client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": "EVENT"},
    )["Items"]
    records = [stream_record(item) for item in items]  # every event of the set-up, as written

    messages = enrich({"Records": records}, promoted.registry, promoted).messages()

    # News: the seed's first promotion and alice's; models recorded or registered are not.
    assert len(messages) == 2
    first, message = messages
    assert chatbot(first)["content"]["title"] == (
        f":rocket: Promotion started: {V1} replaces nothing (first promotion)"
    )
    content = chatbot(message)["content"]
    assert content["title"] == f":rocket: Promotion started: {V2} replaces {V1}"
    assert "*By:* alice" in content["description"]
    assert f"*Rollback target:* {V1}" in content["description"]


@pytest.mark.parametrize(
    ("status", "title"),
    [
        ("succeeded", ":white_check_mark: Training run succeeded"),
        ("rejected", ":no_entry: Training run rejected by the quality gate"),
        ("failed", ":x: Training run failed"),
        ("interrupted", ":warning: Training run interrupted (Spot)"),
    ],
)
def test_a_run_outcome_is_one_message_with_its_reason(
    promoted: PromotionWorld, status: str, title: str
) -> None:
    item = {
        "pk": "EVENT",
        "sk": "2026-11-27T14:40:00.000000Z#1a2b3c4d",
        "type": "run-finished",
        "actor": "training",
        "run_id": "20261127T140501Z-1a2b3c4d",
        "reason": "accuracy 0.80 below the minimum 0.90",
        "detail": {"status": status},
    }
    [message] = enrich({"Records": [stream_record(item)]}, promoted.registry, promoted).messages()
    content = chatbot(message)["content"]
    assert content["title"] == title
    assert content["description"].startswith("accuracy 0.80 below the minimum 0.90")


def test_subjects_fit_sns_and_texts_list_next_steps() -> None:
    note = Notification(
        title=":rocket: " + "x" * 200, description="d", event_type="t", next_steps=["one"]
    )
    assert len(note.subject()) == 100
    assert note.subject().startswith("x")
    assert "Next steps:\n1. one" in note.text()
