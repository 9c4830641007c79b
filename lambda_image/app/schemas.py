"""Request and response models of the API; their JSON schemas are the OpenAPI contract."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

FEATURE_MIN = 0.0  # exclusive: a measurement of zero centimetres is not a flower
FEATURE_MAX = 10.0  # inclusive: the largest iris petal or sepal is well under 10 cm

# strict: a JSON string or boolean is not a measurement; ints are accepted as floats.
Feature = Annotated[
    float,
    Field(gt=FEATURE_MIN, le=FEATURE_MAX, allow_inf_nan=False, strict=True),
]


class IrisFeatures(BaseModel):
    """One flower's four measurements in centimetres, by name."""

    model_config = ConfigDict(extra="forbid")

    sepal_length: Feature
    sepal_width: Feature
    petal_length: Feature
    petal_width: Feature


FeatureList = Annotated[
    tuple[Feature, Feature, Feature, Feature],
    Field(description="[sepal_length, sepal_width, petal_length, petal_width] in centimetres"),
]


def _instance_kind(value: Any) -> str:
    """Route an instance to one schema so an error speaks of that form only."""
    return "object" if isinstance(value, dict | IrisFeatures) else "list"


Instance = Annotated[
    Annotated[IrisFeatures, Tag("object")] | Annotated[FeatureList, Tag("list")],
    Discriminator(_instance_kind),
]


class PredictRequest(BaseModel):
    """A batch of flowers to classify."""

    model_config = ConfigDict(extra="forbid")

    instances: list[Instance] = Field(min_length=1)


def predict_request_model(max_instances: int) -> type[PredictRequest]:
    """PredictRequest whose batch size limit is the configured one (and shows in OpenAPI)."""
    return create_model(
        "PredictRequest",
        __base__=PredictRequest,
        instances=(list[Instance], Field(min_length=1, max_length=max_instances)),
    )


class Prediction(BaseModel):
    """The class of one flower and the probability of each class."""

    iris_type: str = Field(examples=["Setosa"])
    class_id: int = Field(ge=0, examples=[0])
    probabilities: dict[str, float] = Field(
        examples=[{"Setosa": 1.0, "Versicolor": 0.0, "Virginica": 0.0}]
    )


class PredictResponse(BaseModel):
    """Predictions in request order, and the model version that made them."""

    predictions: list[Prediction]
    model_version: str


class SinglePrediction(Prediction):
    """GET /predict/ answer: one prediction and the model version (original service shape)."""

    model_version: str


class Health(BaseModel):
    """Liveness and the version being served."""

    status: str = Field(examples=["ok"])
    model_version: str


class ErrorItem(BaseModel):
    """One broken rule: which field, what rule."""

    field: str = Field(examples=["instances[0].sepal_length"])
    msg: str = Field(examples=["Input should be greater than 0"])
    type: str = Field(examples=["greater_than"])
    loc: list[str | int] = Field(examples=[["body", "instances", 0, "sepal_length"]])


class ErrorResponse(BaseModel):
    """Every error the API returns has this shape."""

    detail: list[ErrorItem]


class Estimator(BaseModel):
    """The scikit-learn estimator the model was exported from."""

    type: str = Field(examples=["KNeighborsClassifier"])
    params: dict[str, Any] = Field(examples=[{"n_neighbors": 3, "weights": "uniform"}])


class ModelInfo(BaseModel):
    """The served model's metadata.json (docs/model-artifact.md); exports may add keys."""

    model_config = ConfigDict(extra="allow")

    format_version: int = Field(examples=[1])
    model_version: str = Field(examples=["d0b97dd6ede2"])
    model_sha256: str
    estimator: Estimator
    classes: list[str] = Field(examples=[["setosa", "versicolor", "virginica"]])
    feature_names: list[str]
    libraries: dict[str, str] = Field(
        examples=[{"numpy": "2.4.6", "scikit-learn": "1.9.1", "scipy": "1.17.1"}]
    )
    dataset: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None


# Every response carries the serving model's version (app/middleware.py).
VERSION_HEADER: dict[str, Any] = {
    "X-Model-Version": {
        "description": "Version of the model that served the request",
        "required": True,
        "schema": {"type": "string"},
    }
}


def documented_errors(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error statuses: the error shape and the version header."""
    return {
        status: {"model": ErrorResponse, "description": text, "headers": VERSION_HEADER}
        for status, text in descriptions.items()
    }


# What every route can answer: app/middleware.py adds the header and refuses headers over its
# caps before routing. Declared by each router, as the app adds their routes as its own.
SERVED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": VERSION_HEADER},
    **documented_errors({431: "Headers over the size limit"}),
}
