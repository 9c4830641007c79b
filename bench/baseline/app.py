"""Benchmark baseline: the usual way to serve a scikit-learn model on Lambda.

FastAPI + Mangum, a sync route, and a joblib-pickled KNeighborsClassifier loaded at import.
Same routes and payloads as the project's app, so the two are measured on equal work.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

MODEL = joblib.load(os.environ["BASELINE_MODEL"])
NAMES = [str(c).capitalize() for c in MODEL.classes_]

app = FastAPI()


class Batch(BaseModel):
    """A batch of [sl, sw, pl, pw] rows."""

    instances: list[list[float]]


def _predict(x: np.ndarray) -> list[dict[str, object]]:
    """Predictions shaped like the project's responses."""
    proba = MODEL.predict_proba(x)
    ids = proba.argmax(axis=1)
    return [
        {
            "iris_type": NAMES[i],
            "class_id": int(i),
            "probabilities": dict(zip(NAMES, p.tolist(), strict=True)),
        }
        for i, p in zip(ids, proba, strict=True)
    ]


@app.get("/predict/")
def predict_one(
    sepal_length: float, sepal_width: float, petal_length: float, petal_width: float
) -> dict[str, object]:
    """One flower from query parameters."""
    x = np.array([[sepal_length, sepal_width, petal_length, petal_width]])
    return _predict(x)[0]


@app.post("/predict")
def predict_batch(batch: Batch) -> dict[str, object]:
    """A batch of flowers."""
    return {"predictions": _predict(np.array(batch.instances))}


handler = Mangum(app, lifespan="off")
