"""Service routes: health and the served model's metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.dependencies import model_of
from app.schemas import Health

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health)
async def health(request: Request) -> dict[str, str]:
    """Liveness: answers only once the model is loaded, with its version."""
    return {"status": "ok", "model_version": model_of(request).version}


@router.get("/model")
async def model_info(request: Request) -> dict[str, Any]:
    """The served model's metadata: version, dataset, metrics, parameters, provenance."""
    return model_of(request).metadata
