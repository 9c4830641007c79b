"""Malformed Lambda events: each gets a 4xx in the API's error shape; none raises or stops it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.model import KnnModel
from tests.serving.support import Handler, event

SERVING = Path(__file__).resolve().parents[2] / "lambda_image"
CONTEXT = None
Mutation = Callable[[dict[str, Any]], Any]
# A header value that must never come back, in the answer or in the logs.
MARKER = "marker-9f1c2e"
# Well within the caps (app/middleware.py): 60 fields, 6 KB.
SIXTY_HEADERS = {f"X-H-{i}": "y" * 100 for i in range(60)}


def rest() -> dict[str, Any]:
    """A well-formed REST (v1) GET /predict/ event."""
    return copy.deepcopy(event("rest_v1_get_predict.json"))


def http_v2() -> dict[str, Any]:
    """A well-formed HTTP API (v2) POST /predict event."""
    return copy.deepcopy(event("http_v2_post_predict.json"))


def without(key: str) -> Mutation:
    """Drop `key` from a REST event."""
    return lambda e: {k: v for k, v in e.items() if k != key}


def setting(key: str, value: Any) -> Mutation:
    """Set `key` of a REST event to `value`."""
    return lambda e: {**e, key: value}


def with_headers(headers: dict[str, Any]) -> Mutation:
    """A REST event carrying `headers` (single- and multi-value, as API Gateway sends them)."""

    def mutate(e: dict[str, Any]) -> dict[str, Any]:
        e["headers"].update(headers)
        e["multiValueHeaders"].update({k: [v] for k, v in headers.items()})
        return e

    return mutate


def v2(mutate: Callable[[dict[str, Any]], None]) -> Mutation:
    """An HTTP API (v2) event changed in place by `mutate`."""

    def build(_: dict[str, Any]) -> dict[str, Any]:
        e = http_v2()
        mutate(e)
        return e

    return build


def base64_body(e: dict[str, Any]) -> dict[str, Any]:
    """A POST whose body claims base64 but is not (wrong padding)."""
    e.update(httpMethod="POST", path="/predict", body="abc", isBase64Encoded=True)
    return e


def identity_null(e: dict[str, Any]) -> dict[str, Any]:
    """requestContext.identity null, which Mangum dereferences."""
    e["requestContext"]["identity"] = None
    return e


def drop_http(e: dict[str, Any]) -> None:
    """A v2 event without requestContext.http."""
    del e["requestContext"]["http"]


def drop_http_method(e: dict[str, Any]) -> None:
    """A v2 event without requestContext.http.method."""
    del e["requestContext"]["http"]["method"]


def null_headers(e: dict[str, Any]) -> None:
    """A v2 event with null headers (Mangum iterates them)."""
    e["headers"] = None


def null_raw_query(e: dict[str, Any]) -> None:
    """A v2 event with a null rawQueryString (Mangum encodes it)."""
    e["rawQueryString"] = None


def huge_v2_headers(e: dict[str, Any]) -> None:
    """A v2 event with 200 headers of 8 KB."""
    e["headers"].update({f"x-pad-{i}": "x" * 8192 for i in range(200)})


# (id, how to break a well-formed REST event, expected status, field at fault, error type)
CASES: list[tuple[str, Mutation, int, str, str]] = [
    ("event-none", lambda _: None, 400, "event", "dict_type"),
    ("event-list", lambda e: [e], 400, "event", "dict_type"),
    ("event-string", json.dumps, 400, "event", "dict_type"),
    (
        "scheduled-event",
        lambda _: {"source": "aws.events", "detail": {}},
        400,
        "requestContext",
        "missing",
    ),
    ("sqs-records", lambda _: {"Records": [{"body": "x"}]}, 400, "requestContext", "missing"),
    ("no-requestContext", without("requestContext"), 400, "requestContext", "missing"),
    (
        "requestContext-string",
        setting("requestContext", "prod"),
        400,
        "requestContext",
        "dict_type",
    ),
    ("no-resource", without("resource"), 400, "resource", "missing"),
    ("no-httpMethod", without("httpMethod"), 400, "httpMethod", "missing"),
    ("httpMethod-number", setting("httpMethod", 7), 400, "httpMethod", "string_type"),
    ("no-path", without("path"), 400, "path", "missing"),
    ("path-list", setting("path", ["/predict/"]), 400, "path", "string_type"),
    ("no-headers", without("headers"), 400, "headers", "missing"),
    ("headers-list", setting("headers", [["Accept", "*/*"]]), 400, "headers", "dict_type"),
    ("header-value-number", with_headers({"X-Count": 3}), 400, "event", "invalid_event"),
    ("header-lone-surrogate", with_headers({"X-Bad": "\ud800"}), 400, "event", "invalid_event"),
    (
        "host-port-not-a-number",
        with_headers({"Host": "example.com:https"}),
        400,
        "event",
        "invalid_event",
    ),
    ("identity-null", identity_null, 400, "event", "invalid_event"),
    (
        "query-not-object",
        setting("multiValueQueryStringParameters", "a=b"),
        400,
        "event",
        "invalid_event",
    ),
    ("version-unknown", setting("version", "3.0"), 400, "version", "unsupported_version"),
    ("version-number", setting("version", 2), 400, "version", "unsupported_version"),
    ("v2-no-http", v2(drop_http), 400, "requestContext.http", "missing"),
    ("v2-no-http-method", v2(drop_http_method), 400, "requestContext.http.method", "missing"),
    ("v2-null-headers", v2(null_headers), 400, "headers", "missing"),
    ("v2-null-rawQueryString", v2(null_raw_query), 400, "event", "invalid_event"),
    (
        "body-object",
        setting("body", {"instances": [[5.1, 3.5, 1.4, 0.2]]}),
        400,
        "body",
        "string_type",
    ),
    ("body-number", setting("body", 42), 400, "body", "string_type"),
    ("base64-invalid", base64_body, 400, "body", "base64_invalid"),
    (
        "base64-flag-string",
        setting("isBase64Encoded", "false"),
        400,
        "isBase64Encoded",
        "bool_type",
    ),
    (
        "200-headers-of-8kb",
        with_headers({f"X-Pad-{i}": "x" * 8192 for i in range(200)}),
        431,
        "headers",
        "headers_too_large",
    ),
    (
        "one-1mb-header",
        with_headers({"X-Big": MARKER + "x" * (1024 * 1024)}),
        431,
        "headers",
        "headers_too_large",
    ),
    (
        "1mb-header-name",
        with_headers({"X-" + "n" * (1024 * 1024): "1"}),
        431,
        "headers",
        "headers_too_large",
    ),
    (
        "150-small-headers",
        with_headers({f"X-H-{i}": "1" for i in range(150)}),
        431,
        "headers",
        "headers_too_large",
    ),
    ("v2-200-headers-of-8kb", v2(huge_v2_headers), 431, "headers", "headers_too_large"),
]


def check_refusal(response: dict[str, Any], model: KnnModel, status: int) -> dict[str, Any]:
    """The response's single error item, after checking the response and error shapes."""
    assert response["statusCode"] == status
    assert set(response) >= {"statusCode", "headers", "body", "isBase64Encoded"}
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["x-model-version"] == model.version
    assert headers["content-type"] == "application/json"
    body = json.loads(response["body"])
    assert set(body) == {"detail"}
    [item] = body["detail"]
    assert set(item) == {"field", "msg", "type", "loc"}
    assert item["msg"]
    assert isinstance(item["loc"], list)
    return dict(item)


@pytest.mark.fault
@pytest.mark.parametrize(
    ("mutate", "status", "field", "type_"),
    [pytest.param(m, s, f, t, id=i) for i, m, s, f, t in CASES],
)
def test_malformed_event_is_a_4xx_in_the_error_shape(
    handler: Handler,
    model: KnnModel,
    mutate: Mutation,
    status: int,
    field: str,
    type_: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    response = handler(mutate(rest()), CONTEXT)
    item = check_refusal(response, model, status)
    assert (item["field"], item["type"]) == (field, type_)
    out = capsys.readouterr().out
    assert MARKER not in response["body"]
    assert MARKER not in out
    log = json.loads(out.splitlines()[0])
    assert log["status"] == status
    assert log["errors"] == [{"field": field, "type": type_}]


@pytest.mark.fault
def test_the_process_keeps_serving_between_malformed_events(handler: Handler) -> None:
    for _, mutate, status, _, _ in CASES:
        assert handler(mutate(rest()), CONTEXT)["statusCode"] == status
        good = handler(rest(), CONTEXT)
        assert good["statusCode"] == 200
        assert json.loads(good["body"])["iris_type"] == "Setosa"
    assert handler(http_v2(), CONTEXT)["statusCode"] == 200


def test_there_are_at_least_twelve_kinds() -> None:
    assert len({case[0] for case in CASES}) >= 12


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(rest, id="rest-v1"),
        pytest.param(http_v2, id="http-v2"),
        pytest.param(lambda: {**rest(), "version": "1.0"}, id="http-v1.0"),
        pytest.param(
            lambda: {**rest(), "headers": None, "multiValueHeaders": None}, id="null-headers"
        ),
        pytest.param(lambda: with_headers(SIXTY_HEADERS)(rest()), id="60-headers-of-100-bytes"),
    ],
)
def test_well_formed_events_are_served(
    handler: Handler, make: Callable[[], dict[str, Any]]
) -> None:
    response = handler(make(), CONTEXT)
    assert response["statusCode"] == 200, response["body"]


@pytest.mark.fault
def test_the_lambda_entry_point_refuses_a_malformed_event(tmp_path: Path) -> None:
    # app.handler builds the app at import (real model, gc.freeze): a process of its own.
    assert (SERVING / "model" / "model.npz").exists(), "run `make model` (make test does)"
    probe = (
        "import json; from app.handler import handler; "
        "print(json.dumps([handler(e, None) for e in (None, [], {'version': '9'})]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(SERVING)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    responses = json.loads(proc.stdout.splitlines()[-1])
    assert [r["statusCode"] for r in responses] == [400, 400, 400]
    assert all(json.loads(r["body"])["detail"][0]["type"] for r in responses)
