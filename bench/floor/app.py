"""Benchmark floor: what any FastAPI + Mangum Lambda costs before it does any work of its own.

FastAPI + Mangum (lifespan off, as ours) with numpy imported, and one `async` route that
answers the bench's GET and POST with a constant dict: no validation, no model, no middleware.
Ours over this floor is the price of our own per-request work (checks, telemetry, the model).
"""

from __future__ import annotations

import numpy  # noqa: F401 - imported for its cost: every numpy model server pays it
from fastapi import FastAPI
from mangum import Mangum

# Shaped like ours' answer to one flower, so both serialize a body of the same size.
ANSWER: dict[str, object] = {
    "predictions": [
        {
            "iris_type": "Setosa",
            "class_id": 0,
            "probabilities": {"Setosa": 1.0, "Versicolor": 0.0, "Virginica": 0.0},
        }
    ],
    "model_version": "floor",
}

# OpenTelemetry hooks off, as in ours: a check of the providers on every request (~5 us) that
# no app needs to pay, so the floor leaves it out too.
app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


# response_model=None: FastAPI encodes the dict as it is, with no schema to validate against.
@app.get("/predict/", response_model=None)
@app.post("/predict", response_model=None)
async def predict() -> dict[str, object]:
    """The constant answer, whatever the request holds."""
    return ANSWER


handler = Mangum(app, lifespan="off")
