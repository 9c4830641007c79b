"""The move to an HTTP API changes no answer: every route, status and body, v1 event and v2 alike.

The REST API delivered payload 1.0 events; the HTTP API delivers payload 2.0 (AWS docs:
http-api-develop-integrations-lambda, "payload format version"). Each case below is built from
the recorded events of both (tests/serving/events) with CloudFront's origin header, served by
the real Lambda handler, and the two answers must be the same.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.serving.support import Handler, event

FLOWER = {"sepal_length": "5.1", "sepal_width": "3.5", "petal_length": "1.4", "petal_width": "0.2"}
ORIGIN = {"x-origin-key": "origin-key-from-cloudfront"}


def rest_v1(
    method: str, path: str, query: dict[str, str], body: str | None, ctype: str | None
) -> dict[str, Any]:
    """What the REST API sent the function for this request."""
    request = copy.deepcopy(event("rest_v1_get_predict.json"))
    headers = {**request["headers"], **ORIGIN}
    if ctype:
        headers["Content-Type"] = ctype
    request.update(
        httpMethod=method,
        path=path,
        headers=headers,
        multiValueHeaders={k: [v] for k, v in headers.items()},
        queryStringParameters=query or None,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} or None,
        body=body,
        isBase64Encoded=False,
    )
    request["requestContext"].update(httpMethod=method, path=f"/api{path}")
    return request


def http_v2(
    method: str, path: str, query: dict[str, str], body: str | None, ctype: str | None
) -> dict[str, Any]:
    """What the HTTP API sends the function for this request ($default route and stage)."""
    request = copy.deepcopy(event("http_v2_post_predict.json"))
    headers = {
        k: v for k, v in request["headers"].items() if k not in ("content-type", "content-length")
    }
    headers.update(ORIGIN)
    if ctype:
        headers["content-type"] = ctype
    if body is not None:
        headers["content-length"] = str(len(body.encode()))
    request.update(
        routeKey="$default",
        rawPath=path,
        rawQueryString=urlencode(query),
        headers=headers,
        body=base64.b64encode(body.encode()).decode() if body is not None else None,
        isBase64Encoded=body is not None,
    )
    if query:
        request["queryStringParameters"] = dict(query)
    request["requestContext"].update(routeKey="$default")
    request["requestContext"]["http"].update(method=method, path=path)
    return request


BATCH = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
CASES = {
    "GET /predict/ one flower": ("GET", "/predict/", FLOWER, None, None),
    "GET /predict/ a value missing": (
        "GET",
        "/predict/",
        {**FLOWER, "petal_width": ""},
        None,
        None,
    ),
    "GET /predict/ no values": ("GET", "/predict/", {}, None, None),
    "GET /predict/ out of range": (
        "GET",
        "/predict/",
        {**FLOWER, "sepal_length": "11"},
        None,
        None,
    ),
    "GET /predict/ not a number": (
        "GET",
        "/predict/",
        {**FLOWER, "sepal_width": "wide"},
        None,
        None,
    ),
    "POST /predict batch": ("POST", "/predict", {}, BATCH, "application/json"),
    "POST /predict empty": ("POST", "/predict", {}, '{"instances": []}', "application/json"),
    "POST /predict NaN": (
        "POST",
        "/predict",
        {},
        '{"instances": [[NaN, 1, 1, 1]]}',
        "application/json",
    ),
    "POST /predict not JSON": ("POST", "/predict", {}, "{", "application/json"),
    "POST /predict a form": ("POST", "/predict", {}, "a=1", "application/x-www-form-urlencoded"),
    "GET / the try-it page": ("GET", "/", {}, None, None),
    "GET /health": ("GET", "/health", {}, None, None),
    "GET /model": ("GET", "/model", {}, None, None),
    "GET /docs": ("GET", "/docs", {}, None, None),
    "GET /openapi.json": ("GET", "/openapi.json", {}, None, None),
    "GET an unknown path": ("GET", "/admin", {}, None, None),
    "DELETE /predict": ("DELETE", "/predict", {}, None, None),
}


def answer(response: dict[str, Any]) -> tuple[int, str, Any]:
    """Status, content type and body, as a caller sees them."""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for k, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(k.lower(), values[0])
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    ctype = headers.get("content-type", "")
    return response["statusCode"], ctype, json.loads(body) if "json" in ctype else body


@pytest.mark.parametrize("case", list(CASES))
def test_the_http_api_event_gets_the_answer_the_rest_api_event_got(
    handler: Handler, case: str
) -> None:
    method, path, query, body, ctype = CASES[case]
    before = answer(handler(rest_v1(method, path, query, body, ctype), None))
    after = answer(handler(http_v2(method, path, query, body, ctype), None))
    assert after == before
    status, _, content = after
    if status >= 400:
        # The app's one error shape: {"detail": [{"field", "msg", "type", "loc"}, ...]}.
        assert set(content["detail"][0]) >= {"field", "msg", "type", "loc"}


def test_the_cases_cover_every_status_the_app_answers(handler: Handler) -> None:
    statuses = {answer(handler(http_v2(*CASES[c]), None))[0] for c in CASES}
    assert statuses >= {200, 400, 404, 405, 415, 422}
