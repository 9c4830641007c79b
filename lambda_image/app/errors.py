"""One JSON error shape for every failure: which field broke which rule, never the input echoed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.telemetry import note_errors

# Where a value came from is implied by the field name; tagged-union tags are schema noise.
_LOC_NOISE = frozenset({"body", "query", "path", "header", "object", "list"})
_STATUS_FIELD = {
    404: ("path", "not_found"),
    405: ("method", "method_not_allowed"),
    413: ("body", "payload_too_large"),
}


class ApiError(Exception):
    """A request the API refuses: status code, the field at fault and the rule it broke."""

    def __init__(self, status_code: int, field: str, msg: str, type_: str) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.item = {"field": field, "msg": msg, "type": type_, "loc": [field]}


def field_name(loc: Sequence[str | int]) -> str:
    """Render a pydantic location as a path a client recognises: `instances[0].sepal_length`."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part not in _LOC_NOISE:
            name += f".{part}" if name else part
    return name or "body"


def error_body(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The error document: `{"detail": [{"field", "msg", "type", "loc"}, ...]}`."""
    return {"detail": items}


def _refuse(
    request: Request,
    items: list[dict[str, Any]],
    status: int,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error response; the items also go to the request's log line (field and type only)."""
    note_errors(request.scope, items)
    return JSONResponse(error_body(items), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 listing every broken rule. The input is not echoed: NaN in it could not be encoded."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type
    items = [_validation_item(err) for err in exc.errors()]
    return _refuse(request, items, 422)


def _validation_item(err: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error as an error item; a JSON syntax error names the body, not a position."""
    if err["type"] == "json_invalid":
        position = err["loc"][-1]
        reason = err.get("ctx", {}).get("error", "invalid JSON")
        msg = f"body is not valid JSON: {reason} at character {position}"
        return {"field": "body", "msg": msg, "type": "json_invalid", "loc": ["body"]}
    return {
        "field": field_name(err["loc"]),
        "msg": err["msg"],
        "type": err["type"],
        "loc": [p if isinstance(p, int) else str(p) for p in err["loc"]],
    }


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    """An ApiError raised by a route."""
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for this type
    return _refuse(request, [exc.item], exc.status_code)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's 404/405, FastAPI's 413 body cap and any other HTTPException, in one shape."""
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type
    field, type_ = _STATUS_FIELD.get(exc.status_code, ("request", "http_error"))
    msg = str(exc.detail)
    if exc.status_code == 413:
        msg = f"request body must be at most {request.app.state.settings.max_body_bytes} bytes"
    item = {"field": field, "msg": msg, "type": type_, "loc": [field]}
    return _refuse(request, [item], exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
