"""Service routes: health and the served model's metadata."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic_core import to_json

from app.dependencies import model_of
from app.schemas import SERVED_RESPONSES, Health, ModelInfo

router = APIRouter(tags=["service"], responses=SERVED_RESPONSES)


@router.get("/health", response_model=Health)
async def health(request: Request) -> dict[str, str]:
    """Liveness: answers only once the model is loaded, with its version."""
    return {"status": "ok", "model_version": model_of(request).version}


@router.get("/model", response_model=ModelInfo)
async def model_info(request: Request) -> Response:
    """The served model's metadata: version, dataset, metrics, parameters, provenance.

    Sent as exported: `create_app` checked it against ModelInfo when it loaded the model.
    """
    return Response(to_json(model_of(request).metadata), media_type="application/json")
