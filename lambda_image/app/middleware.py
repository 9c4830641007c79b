"""ASGI middleware: request limits (413, 415, 431), the X-Model-Version header, telemetry.

Pure ASGI rather than BaseHTTPMiddleware: it adds no task or stream per request, which keeps
the warm path in the low hundreds of microseconds. (FastAPI's own `max_body_size` answers a
declared oversized body in plain text, outside the API's error shape.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from itertools import chain
from typing import Any

from fastapi import HTTPException

from app.errors import error_body
from app.telemetry import UNMATCHED, Outcome, Telemetry, note_errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# API Gateway refuses a request whose headers pass 10 KB (uvicorn's h11 parser, 16 KB): more
# than this came through neither, e.g. a Lambda event made by hand, and the app will not read
# it. Summing the sizes costs ~1 us a request.
MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024
# The original service answered GET /predict/; clients also write /predict. One route per
# method keeps routing (a regex per route, per request) and the OpenAPI document lean.
_PATH_ALIASES = {("GET", "/predict"): "/predict/", ("POST", "/predict/"): "/predict"}


class ServingMiddleware:
    """Answers 431/415/413 before FastAPI reads a request; adds the version; reports requests."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        model_version: str,
        max_body_bytes: int,
        route_paths: frozenset[str],
        body_routes: frozenset[tuple[str, str]],
        telemetry: Telemetry,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.version_header = (b"x-model-version", model_version.encode())
        self.route_paths = route_paths
        # (method, path) of the routes that read a body: only they answer 415 and 413, so a
        # PUT to /health stays a 405 whatever its Content-Type.
        self.body_routes = body_routes
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, run the app with the header added, then log and count it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        alias = _PATH_ALIASES.get((scope["method"], scope["path"]))
        if alias is not None:
            scope["path"] = alias
            scope["raw_path"] = alias.encode()
        status = 0

        async def send_with_version(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), self.version_header]
            await send(message)

        refusal = _oversized_headers(scope["headers"])
        if refusal is None and (scope["method"], scope["path"]) in self.body_routes:
            refusal = self._refusal(scope)
            receive = self._capped(receive)
        try:
            if refusal is not None:
                note_errors(scope, [refusal[1]])
                await _send_error(send_with_version, *refusal)
            else:
                await self.app(scope, receive, send_with_version)
        except Exception as exc:
            # Starlette's outer ServerErrorMiddleware answers 500 once this re-raises.
            self._report(scope, 500, start, exc)
            raise
        self._report(scope, status, start)

    def _report(
        self, scope: Scope, status: int, start: float, exc: BaseException | None = None
    ) -> None:
        """Hand the request's outcome to telemetry: route template, never the raw path."""
        seconds = time.perf_counter() - start
        route = scope.get("route")
        template = getattr(route, "path", None)
        if not isinstance(template, str):
            # Refused before routing (415, 413): our routes have no parameters, so a known
            # path is its own template.
            template = scope["path"] if scope["path"] in self.route_paths else UNMATCHED
        self.telemetry.emit(scope, Outcome(scope["method"], template, status, seconds, exc))

    def _capped(self, receive: Receive) -> Receive:
        """`receive` that raises 413 once an undeclared body grows past the cap."""
        size = 0

        async def capped_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    # FastAPI re-raises an HTTPException from body reading to our 413 handler.
                    raise HTTPException(status_code=413)
            return message

        return capped_receive

    def _refusal(self, scope: Scope) -> tuple[int, dict[str, Any]] | None:
        """(status, error item) for a body the app must not read, else None."""
        headers = {name: value for name, value in scope["headers"] if name in _CHECKED}
        raw_type = headers.get(b"content-type", b"").decode("latin-1")
        media_type = raw_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            msg = (
                f"Content-Type must be application/json, not {media_type}"
                if media_type
                else "Content-Type header is missing; it must be application/json"
            )
            return 415, _item("content-type", msg, "unsupported_media_type", "header")
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            msg = f"request body must be at most {self.max_body_bytes} bytes"
            return 413, _item("body", msg, "payload_too_large", "body")
        return None


_CHECKED = frozenset({b"content-type", b"content-length"})


def _oversized_headers(headers: list[Any]) -> tuple[int, dict[str, Any]] | None:
    """(431, error item) when the headers pass the count or size cap, else None."""
    if len(headers) > MAX_HEADERS or sum(map(len, chain.from_iterable(headers))) > MAX_HEADER_BYTES:
        msg = f"headers must be at most {MAX_HEADERS} fields and {MAX_HEADER_BYTES} bytes in all"
        return 431, _item("headers", msg, "headers_too_large", "headers")
    return None


def _item(field: str, msg: str, type_: str, where: str) -> dict[str, Any]:
    """An error item in the API's shape."""
    return {
        "field": field,
        "msg": msg,
        "type": type_,
        "loc": [where, field] if where != field else [field],
    }


async def _send_error(send: Send, status: int, item: dict[str, Any]) -> None:
    """Answer in the API's error shape without running the app."""
    body = json.dumps(error_body([item])).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
