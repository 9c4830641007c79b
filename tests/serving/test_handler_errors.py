"""A failure of ours behind the handler is a 5xx an alarm sees, never the caller's 400.

The adapter answers a malformed *event* with a 400 (tests/serving/test_malformed_events.py).
A bug in the app or in turning its answer into Lambda's response is something else: it must
reach Lambda as a function error, which the `Errors` metric counts ("exceptions that your code
throws", https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html) and API
Gateway answers with a 502 (5XXError), or be Mangum's 500.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from app.adapter import build_handler
from app.main import create_app
from app.settings import Settings
from tests.serving.support import event

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]
EVENTS = ["rest_v1_get_predict.json", "http_v2_post_predict.json"]


class TextHeaderBug:
    """Outermost middleware with a response-path bug: one header value as text, not bytes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        async def send_text_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-bug", "text")]}
            await send(message)

        await self.app(scope, receive, send_text_header)


class NoAnswerBug:
    """Outermost middleware that returns without ever sending a response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        return None


def app_with(
    model_dir: Path, middleware: type[TextHeaderBug] | type[NoAnswerBug] | None = None
) -> FastAPI:
    """A fresh app on the exported model, with `middleware` outermost."""
    app = create_app(Settings(model_dir=model_dir))
    if middleware is not None:
        app.add_middleware(middleware)
    return app


@pytest.mark.fault
@pytest.mark.parametrize("name", EVENTS)
def test_a_bug_shaping_the_response_is_a_function_error(model_dir: Path, name: str) -> None:
    handler = build_handler(app_with(model_dir, TextHeaderBug))
    with pytest.raises(AttributeError):
        handler(copy.deepcopy(event(name)), None)


@pytest.mark.fault
def test_an_app_that_never_answers_is_a_function_error(model_dir: Path) -> None:
    handler = build_handler(app_with(model_dir, NoAnswerBug))
    with pytest.raises(AttributeError):
        handler(copy.deepcopy(event(EVENTS[0])), None)


@pytest.mark.fault
def test_an_exception_in_a_route_is_a_500(model_dir: Path) -> None:
    app = app_with(model_dir)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    request = copy.deepcopy(event(EVENTS[0]))
    request.update(
        path="/boom",
        resource="/{proxy+}",
        queryStringParameters=None,
        multiValueQueryStringParameters=None,
    )
    response = build_handler(app)(request, None)
    assert response["statusCode"] == 500


@pytest.mark.parametrize("name", EVENTS)
def test_the_same_app_without_the_bug_serves(model_dir: Path, name: str) -> None:
    response = build_handler(app_with(model_dir))(copy.deepcopy(event(name)), None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["model_version"]
