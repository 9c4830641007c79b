"""Prediction routes: GET /predict/ (the original service's contract) and POST /predict (batch)."""

from typing import Annotated, Any

import numpy as np
import pydantic_core
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.dependencies import model_of
from app.errors import ApiError
from app.model import KnnModel
from app.schemas import (
    FEATURE_MAX,
    FEATURE_MIN,
    SERVED_RESPONSES,
    IrisFeatures,
    PredictRequest,
    PredictResponse,
    SinglePrediction,
    documented_errors,
    predict_request_model,
)
from app.telemetry import note_predictions

FEATURES = tuple(IrisFeatures.model_fields)
# Query values arrive as text; NaN and infinity parse as floats but are not measurements.
# The range is documented but checked by the route: the original service answered 400 for a
# value outside it, where FastAPI's own check would answer 422.
QueryFeature = Annotated[
    float,
    Query(
        allow_inf_nan=False,
        description="centimetres, in (0, 10]",
        examples=[5.1],
        json_schema_extra={"exclusiveMinimum": FEATURE_MIN, "maximum": FEATURE_MAX},
    ),
]
_GET_ERRORS = documented_errors(
    {400: "A measurement is outside (0, 10]", 422: "A measurement is missing or not a number"}
)
_POST_ERRORS = documented_errors(
    {
        400: "Body could not be read (not UTF-8)",
        413: "Body over the size limit",
        415: "Body is not JSON",
        422: "Invalid request",
    }
)


def predictions(request: Request, model: KnnModel, x: np.ndarray) -> list[dict[str, Any]]:
    """Predict, note the classes for the request's metrics, shape each result for the API."""
    result = model.predict(x)
    note_predictions(request.scope, result.class_ids)
    names = model.display_names
    return [
        {"iris_type": names[i], "class_id": i, "probabilities": dict(zip(names, p, strict=True))}
        for i, p in zip(result.class_ids.tolist(), result.probabilities.tolist(), strict=True)
    ]


def _json(content: dict[str, Any]) -> Response:
    """Serialize a response we built to the declared schema ourselves.

    FastAPI would validate it against the response model again and then serialize it:
    twice the work of pydantic-core's serializer alone (about 1 ms for 1,000 predictions).
    The schema tests check these responses against the OpenAPI document.
    """
    return Response(pydantic_core.to_json(content), media_type="application/json")


def build_router(max_instances: int) -> APIRouter:
    """The prediction routes, with the batch size limit in their schema."""
    router = APIRouter(tags=["predict"], responses=SERVED_RESPONSES)
    request_model = predict_request_model(max_instances)

    @router.get("/predict/", response_model=SinglePrediction, responses=_GET_ERRORS)
    async def predict_one(
        request: Request,
        sepal_length: QueryFeature,
        sepal_width: QueryFeature,
        petal_length: QueryFeature,
        petal_width: QueryFeature,
    ) -> Response:
        """Classify one flower from query parameters (400 when a value is outside (0, 10])."""
        values = (sepal_length, sepal_width, petal_length, petal_width)
        for name, value in zip(FEATURES, values, strict=True):
            if not FEATURE_MIN < value <= FEATURE_MAX:
                raise ApiError(
                    400,
                    name,
                    f"must be greater than {FEATURE_MIN:g} and at most {FEATURE_MAX:g}",
                    "out_of_range",
                )
        model = model_of(request)
        [prediction] = predictions(request, model, np.array([values], dtype=np.float64))
        return _json({**prediction, "model_version": model.version})

    @router.post("/predict", response_model=PredictResponse, responses=_POST_ERRORS)
    async def predict_batch(request: Request, body: request_model) -> Response:  # type: ignore[valid-type]
        """Classify a batch: each instance is `[sl, sw, pl, pw]` or an object with the names."""
        model = model_of(request)
        batch: PredictRequest = body
        rows = [
            (i.sepal_length, i.sepal_width, i.petal_length, i.petal_width)
            if isinstance(i, IrisFeatures)
            else i
            for i in batch.instances
        ]
        x = np.array(rows, dtype=np.float64)
        return _json(
            {"predictions": predictions(request, model, x), "model_version": model.version}
        )

    return router
