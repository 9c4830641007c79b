"""The origin lock's authorizer on moto: CloudFront's key admitted, anything else refused."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest

from training.control import origin_authorizer
from training.control.origin_authorizer import REFRESH_SECONDS, Keys, authorized, handler

# The request authorizer event API Gateway sends for an HTTP API (payload 2.0), as in
# tests/serving/events/http_v2_post_predict.json, with the origin header CloudFront adds.
EVENT: dict[str, Any] = {
    "version": "2.0",
    "type": "REQUEST",
    "routeArn": "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/$default/$default",
    "identitySource": ["KEY"],
    "routeKey": "$default",
    "rawPath": "/predict",
    "rawQueryString": "",
    "headers": {"x-origin-key": "KEY", "content-type": "application/json"},
    "requestContext": {"apiId": "abcdef123", "stage": "$default", "http": {"method": "POST"}},
}


def event_with(key: str | None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(EVENT))
    if key is None:
        del event["headers"]["x-origin-key"]
        event["identitySource"] = []
    else:
        event["headers"]["x-origin-key"] = key
        event["identitySource"] = [key]
    return event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secret(aws: None) -> str:
    """The origin secret as the stack makes it: JSON with a generated `key`."""
    client = boto3.client("secretsmanager")
    arn: str = client.create_secret(Name="origin", SecretString=json.dumps({"key": "first"}))["ARN"]
    return arn


def rotate(arn: str, key: str) -> None:
    """What the runbook's rotation does: a new AWSCURRENT, the old one becomes AWSPREVIOUS."""
    boto3.client("secretsmanager").put_secret_value(
        SecretId=arn, SecretString=json.dumps({"key": key})
    )


def test_only_the_current_key_is_admitted_before_any_rotation(secret: str) -> None:
    keys = Keys(secret).values()
    assert keys == ("first",)
    assert authorized({"x-origin-key": "first"}, keys)
    assert not authorized({"x-origin-key": "second"}, keys)
    assert not authorized({"x-origin-key": ""}, keys)
    assert not authorized({}, keys)
    assert not authorized(None, keys)


def test_a_rotation_admits_the_new_key_and_the_one_edges_still_send(secret: str) -> None:
    clock = Clock()
    keys = Keys(secret, clock=clock)
    assert keys.values() == ("first",)
    rotate(secret, "second")
    # Within the refresh period the earlier read stands: no Secrets Manager call per request.
    clock.now += REFRESH_SECONDS - 1
    assert keys.values() == ("first",)
    clock.now += 1
    assert keys.values() == ("second", "first")
    rotate(secret, "third")
    clock.now += REFRESH_SECONDS
    assert keys.values() == ("third", "second")


def test_the_handler_answers_with_the_simple_response(
    secret: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ORIGIN_SECRET_ARN", secret)
    monkeypatch.setattr(origin_authorizer, "_keys", None)

    assert handler(event_with("first"), None) == {"isAuthorized": True}
    with caplog.at_level(logging.WARNING):
        assert handler(event_with("guessed-key"), None) == {"isAuthorized": False}
    # A refused key is never logged: a near miss in the logs would give the key away.
    assert "guessed-key" not in caplog.text
    assert "origin key refused" in caplog.text
    assert handler(event_with(None), None) == {"isAuthorized": False}
