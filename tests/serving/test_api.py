"""The API contract through FastAPI's TestClient: status codes, shapes, headers, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.model import KnnModel
from app.schemas import ModelInfo
from app.settings import Settings

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
VERSICOLOR = {"sepal_length": 5.9, "sepal_width": 2.8, "petal_length": 4.4, "petal_width": 1.3}


def error_fields(response: Any) -> list[tuple[str, str]]:
    """(field, type) of every error item; also checks the error document's shape."""
    body = response.json()
    assert set(body) == {"detail"}
    for item in body["detail"]:
        assert set(item) == {"field", "msg", "type", "loc"}
        assert item["msg"]
    return [(item["field"], item["type"]) for item in body["detail"]]


# --- GET /predict/ : the original service's contract ------------------------------------------


@pytest.mark.parametrize(
    ("flower", "expected"),
    [(SETOSA, "Setosa"), (VERSICOLOR, "Versicolor"), (VIRGINICA, "Virginica")],
)
def test_get_predict_classifies(
    client: TestClient, model: KnnModel, flower: dict[str, float], expected: str
) -> None:
    response = client.get("/predict/", params=flower)
    assert response.status_code == 200
    body = response.json()
    assert body["iris_type"] == expected
    assert body["model_version"] == model.version
    assert set(body["probabilities"]) == {"Setosa", "Versicolor", "Virginica"}
    assert body["probabilities"][expected] == max(body["probabilities"].values())
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)


def test_get_predict_without_trailing_slash(client: TestClient) -> None:
    response = client.get("/predict", params=SETOSA, follow_redirects=False)
    assert response.status_code == 200
    assert response.json()["iris_type"] == "Setosa"


@pytest.mark.parametrize(
    ("field", "value"), [("sepal_length", 0), ("petal_width", -1.5), ("sepal_width", 10.01)]
)
def test_get_predict_out_of_range_is_400(client: TestClient, field: str, value: float) -> None:
    response = client.get("/predict/", params={**SETOSA, field: value})
    assert response.status_code == 400
    assert error_fields(response) == [(field, "out_of_range")]
    assert "greater than 0 and at most 10" in response.json()["detail"][0]["msg"]


def test_get_predict_upper_bound_is_inclusive(client: TestClient) -> None:
    assert client.get("/predict/", params={**SETOSA, "sepal_length": 10}).status_code == 200


def test_get_predict_missing_value_is_422(client: TestClient) -> None:
    params = {k: v for k, v in SETOSA.items() if k != "petal_length"}
    response = client.get("/predict/", params=params)
    assert response.status_code == 422
    assert error_fields(response) == [("petal_length", "missing")]


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-Infinity", ""])
def test_get_predict_not_a_number_is_422(client: TestClient, value: str) -> None:
    response = client.get("/predict/", params={**SETOSA, "sepal_width": value})
    assert response.status_code == 422
    [(field, _)] = error_fields(response)
    assert field == "sepal_width"


# --- POST /predict : batches ------------------------------------------------------------------


def test_post_predict_mixes_lists_and_objects(client: TestClient, model: KnnModel) -> None:
    instances = [list(SETOSA.values()), VIRGINICA, list(VERSICOLOR.values())]
    response = client.post("/predict", json={"instances": instances})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == model.version
    assert [p["iris_type"] for p in body["predictions"]] == ["Setosa", "Virginica", "Versicolor"]
    assert [p["class_id"] for p in body["predictions"]] == [0, 2, 1]
    for prediction in body["predictions"]:
        assert set(prediction) == {"iris_type", "class_id", "probabilities"}


def test_post_predict_with_trailing_slash(client: TestClient) -> None:
    response = client.post("/predict/", json={"instances": [SETOSA]})
    assert response.status_code == 200


def test_post_predict_accepts_integers_and_the_batch_limit(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [[5, 3, 1, 1]] * 1000})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1000


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"instances": [[5.1, 3.5, 1.4]]}, [("instances[0][3]", "missing")]),
        ({"instances": [[5.1, 3.5, 1.4, 0.2, 9.9]]}, [("instances[0]", "too_long")]),
        ({"instances": []}, [("instances", "too_short")]),
        ({"instances": [[5.1, 3.5, 1.4, 0.2]] * 1001}, [("instances", "too_long")]),
        ({"instances": [{**SETOSA, "colour": 1}]}, [("instances[0].colour", "extra_forbidden")]),
        ({"instances": [SETOSA], "debug": True}, [("debug", "extra_forbidden")]),
        (
            {"instances": [{**SETOSA, "petal_width": None}]},
            [("instances[0].petal_width", "float_type")],
        ),
        ({"instances": [[5.1, "3.5", 1.4, 0.2]]}, [("instances[0][1]", "float_type")]),
        ({"instances": [[5.1, True, 1.4, 0.2]]}, [("instances[0][1]", "float_type")]),
        ({"instances": [[5.1, 0, 1.4, 0.2]]}, [("instances[0][1]", "greater_than")]),
        ({"instances": [[5.1, 3.5, 11, 0.2]]}, [("instances[0][2]", "less_than_equal")]),
        ({"instances": "all of them"}, [("instances", "list_type")]),
        ({}, [("instances", "missing")]),
        ([1, 2, 3], [("body", "model_attributes_type")]),
    ],
)
def test_post_predict_invalid_body_is_422(
    client: TestClient, body: Any, expected: list[tuple[str, str]]
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert error_fields(response) == expected


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_post_predict_non_finite_is_422_not_500(client: TestClient, token: str) -> None:
    # Python's JSON parser accepts these tokens; echoing them back would make a 500.
    named = f'{{"sepal_length": {token}, "sepal_width": 3, "petal_length": 1, "petal_width": 1}}'
    raw = f'{{"instances": [[5.1, {token}, 1.4, 0.2], {named}]}}'
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert error_fields(response) == [
        ("instances[0][1]", "finite_number"),
        ("instances[1].sepal_length", "finite_number"),
    ]


def test_post_predict_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'{"instances": [[5.1,', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert error_fields(response) == [("body", "json_invalid")]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_post_predict_non_json_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/predict", content=b'{"instances": [[1, 2, 3, 4]]}', headers=headers)
    assert response.status_code == 415
    assert error_fields(response) == [("content-type", "unsupported_media_type")]


def test_post_predict_json_with_charset_is_accepted(client: TestClient) -> None:
    response = client.post(
        "/predict",
        content=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_post_predict_body_over_one_mib_is_413(client: TestClient) -> None:
    body = b'{"instances": [' + b" " * (1024 * 1024) + b"]}"
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert error_fields(response) == [("body", "payload_too_large")]
    assert "1048576 bytes" in response.json()["detail"][0]["msg"]


def test_streamed_body_over_the_cap_is_413(client: TestClient) -> None:
    # No Content-Length: the cap applies while the body is read.
    def chunks() -> Any:
        yield b'{"instances": ['
        for _ in range(1100):
            yield b" " * 1024
        yield b"]}"

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert error_fields(response) == [("body", "payload_too_large")]


def test_limits_come_from_settings(model_dir: Path) -> None:
    app = create_app(Settings(model_dir=model_dir, max_instances=2, max_body_bytes=2048))
    with TestClient(app) as client:
        three = client.post("/predict", json={"instances": [SETOSA] * 3})
        assert three.status_code == 422
        assert error_fields(three) == [("instances", "too_long")]
        big = client.post("/predict", json={"instances": [SETOSA], "pad": "x" * 4096})
        assert big.status_code == 413
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert schema["PredictRequest"]["properties"]["instances"]["maxItems"] == 2


# --- service routes, headers, unknown routes ---------------------------------------------------


def test_health(client: TestClient, model: KnnModel) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model_version": model.version}


def test_model_metadata(client: TestClient, model: KnnModel) -> None:
    body = client.get("/model").json()
    assert body["model_version"] == model.version
    assert body["estimator"]["params"]["n_neighbors"] == 3
    assert body["classes"] == ["setosa", "versicolor", "virginica"]


def test_model_metadata_is_the_documented_shape(client: TestClient) -> None:
    """GET /model holds ModelInfo's keys (docs/model-artifact.md) and no run facts."""
    body = client.get("/model").json()
    documented = ModelInfo.model_fields
    required = {name for name, field in documented.items() if field.is_required()}
    assert required <= set(body) <= set(documented)
    assert "created_at" not in body
    assert set(body["libraries"]) == {"numpy", "scikit-learn", "scipy"}


def test_an_older_export_with_its_export_time_still_serves(model_dir: Path, tmp_path: Path) -> None:
    older = tmp_path / "model"
    shutil.copytree(model_dir, older)
    metadata = json.loads((older / "metadata.json").read_text())
    metadata["created_at"] = "2026-11-27T15:21:52Z"
    metadata["libraries"]["python"] = "3.11.7"
    (older / "metadata.json").write_text(json.dumps(metadata))
    with TestClient(create_app(Settings(model_dir=older))) as old_client:
        assert old_client.get("/model").json()["created_at"] == "2026-11-27T15:21:52Z"


def test_openapi_and_docs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/predict/", "/predict", "/health", "/model"}
    assert set(schema["paths"]["/predict/"]) == {"get"}
    assert set(schema["paths"]["/predict"]) == {"post"}
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/predict/?sepal_length=1", 422),
        ("POST", "/predict", 415),
        ("GET", "/nowhere", 404),
        ("DELETE", "/predict", 405),
        ("GET", "/openapi.json", 200),
    ],
)
def test_every_response_carries_the_model_version(
    client: TestClient, model: KnnModel, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["x-model-version"] == model.version


def test_unknown_route_and_method_use_the_error_shape(client: TestClient) -> None:
    assert error_fields(client.get("/nowhere")) == [("path", "not_found")]
    assert error_fields(client.put("/health", json={})) == [("method", "method_not_allowed")]
