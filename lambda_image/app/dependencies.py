"""How routes reach the model loaded at start.

Routes read it from `app.state` rather than through `Depends`: FastAPI's dependency solving
costs about a tenth of the warm request budget. Tests serve another model by building the app
with `create_app(model=...)`.
"""

from __future__ import annotations

from fastapi import Request

from app.model import KnnModel


def model_of(request: Request) -> KnnModel:
    """The model the app was built with."""
    model: KnnModel = request.app.state.model
    return model
