"""The Lambda adapter: Mangum behind a check of the API Gateway event, so no event crashes it.

Mangum raises on an event it cannot read (not an object, a key missing, a value of the wrong
type, bad base64), which Lambda reports as a function error and API Gateway as a 502. Here a
few type checks run first and name what is wrong, the decoding errors Mangum can still raise
while it reads the event are caught, and either way the caller gets a 400 in the API's error
shape. On a well-formed event the checks cost under a microsecond. (Oversized headers are the
app's to refuse, with its other request limits: see app/middleware.py.)

Only reading the event is the caller's fault. An exception from running the app or turning its
answer into Lambda's response is ours: it propagates, so Lambda counts a function error (the
Errors alarm and the canary's guard see it) and API Gateway answers 502. Caught as a 400, it
would count as a client error that no alarm watches. (An exception inside the app is already
Mangum's 500.)
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from fastapi import FastAPI
from mangum import Mangum
from mangum.protocols import HTTPCycle
from mangum.types import LambdaHandler as EventHandler
from mangum.types import Scope
from pydantic_core import to_json

from app.errors import error_body
from app.telemetry import UNMATCHED, Outcome, Telemetry, note_errors

LambdaHandler = Callable[[Any, Any], dict[str, Any]]

# What Mangum raises while turning a malformed event into an ASGI request: a missing key, a
# value of the wrong type, undecodable base64 or text (binascii.Error and UnicodeError are
# ValueErrors). Caught only around that step (`_read`), never around the app's run.
_DECODING_ERRORS = (KeyError, TypeError, AttributeError, ValueError)
_KINDS: dict[type, tuple[str, str]] = {
    str: ("a string", "string_type"),
    dict: ("an object", "dict_type"),
    bool: ("true or false", "bool_type"),
}
# Mangum tells a REST API event (no `version`) from an HTTP API one by its `resource`.
_REST_FIELDS = ("resource", "httpMethod", "path")
_HTTP_V1_FIELDS = ("httpMethod", "path")
_HTTP_V2_FIELDS = ("method", "path")


class Refusal(NamedTuple):
    """Why an event is answered without running the app: status and the field at fault."""

    status: int
    field: str
    msg: str
    type: str


def event_problem(event: Any) -> Refusal | None:
    """What keeps Mangum from reading `event` as an API Gateway proxy event, or None."""
    if not isinstance(event, dict):
        return Refusal(400, "event", "must be an API Gateway proxy event (an object)", "dict_type")
    context = event.get("requestContext")
    if not isinstance(context, dict):
        return _wrong("requestContext", context, dict)
    version = event.get("version")
    return _request_line_problem(event, context, version) or _payload_problem(event, version)


def _request_line_problem(
    event: dict[str, Any], context: dict[str, Any], version: object
) -> Refusal | None:
    """Method and path, where the event's payload format keeps them."""
    if version == "2.0":
        http = context.get("http")
        if not isinstance(http, dict):
            return _wrong("requestContext.http", http, dict)
        return _strings(http, _HTTP_V2_FIELDS, "requestContext.http.")
    if version is None:
        return _strings(event, _REST_FIELDS)
    if version == "1.0":
        return _strings(event, _HTTP_V1_FIELDS)
    return Refusal(400, "version", "must be 1.0 or 2.0, or absent", "unsupported_version")


def _strings(mapping: dict[str, Any], keys: tuple[str, ...], prefix: str = "") -> Refusal | None:
    """The refusal of the first of `keys` whose value is not a string, if any."""
    for key in keys:
        value = mapping.get(key)
        if not isinstance(value, str):
            return _wrong(prefix + key, value, str)
    return None


def _payload_problem(event: dict[str, Any], version: object) -> Refusal | None:
    """Headers, body and the body's encoding flag, of the types Mangum reads them as."""
    if "headers" not in event:
        return _wrong("headers", None, dict)
    headers = event["headers"]
    # REST APIs send null headers for a request without any (the console's test call).
    if not isinstance(headers, dict) and (headers is not None or version == "2.0"):
        return _wrong("headers", headers, dict)
    body = event.get("body")
    if body is not None and not isinstance(body, str):
        return _wrong("body", body, str)
    encoded = event.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        return _wrong("isBase64Encoded", encoded, bool)
    return None


def _wrong(field: str, value: object, kind: type) -> Refusal:
    """The refusal of a field that is missing or not of `kind`."""
    if value is None:
        return Refusal(400, field, "is missing", "missing")
    what, code = _KINDS[kind]
    return Refusal(400, field, f"must be {what}", code)


def _undecodable(exc: Exception) -> Refusal:
    """The refusal of an event Mangum failed to decode; never the value itself, which is input."""
    if isinstance(exc, binascii.Error):
        msg = "is not valid base64, though isBase64Encoded is true"
        return Refusal(400, "body", msg, "base64_invalid")
    msg = f"is not an API Gateway proxy event Mangum can read ({type(exc).__name__})"
    return Refusal(400, "event", msg, "invalid_event")


def _read(
    adapter: Mangum, event: dict[str, Any], context: Any
) -> tuple[EventHandler, Scope, bytes]:
    """Mangum's reading of `event`: its handler for the event type, the ASGI scope, the body.

    The first half of `Mangum.__call__` (with lifespan off), apart so that only its errors are
    the event's; the scope and body are properties, computed here once.
    """
    request = adapter.infer(event, context)
    return request, request.scope, request.body


def build_handler(app: FastAPI) -> LambdaHandler:
    """The Lambda handler for `app`: Mangum for sound events, a 4xx for anything else."""
    adapter = Mangum(app, lifespan="off")
    telemetry: Telemetry = app.state.telemetry
    headers = {"content-type": "application/json", "x-model-version": app.state.model.version}

    def refuse(refusal: Refusal, context: Any) -> dict[str, Any]:
        """Answer in the API Gateway (v1) response shape, which HTTP APIs read too; log it."""
        # Timed from here: the checks that led here take a microsecond, and timing every
        # request from its start would put a clock read on the warm path.
        start = time.perf_counter()
        item: dict[str, Any] = {
            "field": refusal.field,
            "msg": refusal.msg,
            "type": refusal.type,
            "loc": refusal.field.split("."),
        }
        scope: dict[str, Any] = {"aws.context": context}
        note_errors(scope, [item])
        outcome = Outcome("-", UNMATCHED, refusal.status, time.perf_counter() - start)
        telemetry.emit(scope, outcome)
        return {
            "statusCode": refusal.status,
            "headers": dict(headers),
            "body": to_json(error_body([item])).decode(),
            "isBase64Encoded": False,
        }

    def handler(event: Any, context: Any) -> dict[str, Any]:
        """Lambda entry point: serve an API Gateway event, refuse anything else with a 4xx."""
        problem = event_problem(event)
        if problem is not None:
            return refuse(problem, context)
        try:
            request, scope, body = _read(adapter, event, context)
        except _DECODING_ERRORS as exc:
            return refuse(_undecodable(exc), context)
        # The second half of Mangum.__call__: run the app, shape its answer. Not caught.
        return request(HTTPCycle(scope, body)(app))

    return handler
