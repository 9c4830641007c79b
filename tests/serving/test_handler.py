"""The API through its real Lambda handler (Mangum) with recorded API Gateway events."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from app.model import KnnModel
from tests.serving.support import Handler, event

INSTANCES = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    """Response headers, lower-cased, from either payload format."""
    merged = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        merged[name] = values[-1]
    return {name.lower(): value for name, value in merged.items()}


def rest_post(body: str, content_type: str = "application/json") -> dict[str, Any]:
    """A REST (v1) POST /predict event derived from the recorded GET event."""
    request = copy.deepcopy(event("rest_v1_get_predict.json"))
    request.update(
        httpMethod="POST",
        path="/predict",
        body=body,
        queryStringParameters=None,
        multiValueQueryStringParameters=None,
    )
    request["headers"]["Content-Type"] = content_type
    request["multiValueHeaders"]["Content-Type"] = [content_type]
    request["requestContext"].update(httpMethod="POST", path="/prod/predict")
    return request


def test_rest_v1_get_predict(handler: Handler, model: KnnModel) -> None:
    response = handler(event("rest_v1_get_predict.json"), None)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["iris_type"] == "Setosa"
    assert body["model_version"] == model.version
    headers = headers_of(response)
    assert headers["x-model-version"] == model.version
    assert headers["content-type"] == "application/json"


def test_http_v2_post_predict_with_base64_body(handler: Handler, model: KnnModel) -> None:
    response = handler(event("http_v2_post_predict.json"), None)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert [p["iris_type"] for p in body["predictions"]] == ["Setosa", "Virginica"]
    assert headers_of(response)["x-model-version"] == model.version


def test_rest_v1_post_predict(handler: Handler) -> None:
    response = handler(rest_post(json.dumps(INSTANCES)), None)
    assert response["statusCode"] == 200
    assert len(json.loads(response["body"])["predictions"]) == 2


def test_rest_v1_base64_body(handler: Handler) -> None:
    request = rest_post(base64.b64encode(json.dumps(INSTANCES).encode()).decode())
    request["isBase64Encoded"] = True
    assert handler(request, None)["statusCode"] == 200


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"sepal_length": "0"}, 400),
        ({"sepal_length": "NaN"}, 422),
        ({"sepal_length": "five"}, 422),
    ],
)
def test_rest_v1_get_errors(handler: Handler, query: dict[str, str], status: int) -> None:
    request = copy.deepcopy(event("rest_v1_get_predict.json"))
    request["queryStringParameters"].update(query)
    request["multiValueQueryStringParameters"].update({k: [v] for k, v in query.items()})
    response = handler(request, None)
    assert response["statusCode"] == status
    assert json.loads(response["body"])["detail"][0]["field"] == "sepal_length"


def test_rest_v1_missing_query_is_422(handler: Handler) -> None:
    request = copy.deepcopy(event("rest_v1_get_predict.json"))
    request["queryStringParameters"] = None
    request["multiValueQueryStringParameters"] = None
    response = handler(request, None)
    assert response["statusCode"] == 422
    fields = {item["field"] for item in json.loads(response["body"])["detail"]}
    assert fields == {"sepal_length", "sepal_width", "petal_length", "petal_width"}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"instances": [[NaN, 1, 1, 1]]}', "application/json", 422),
        ('{"instances": []}', "application/json", 422),
        ("sepal_length=5.1", "application/x-www-form-urlencoded", 415),
        ('{"instances": [' + " " * (1024 * 1024) + "]}", "application/json", 413),
    ],
)
def test_rest_v1_post_errors(handler: Handler, body: str, content_type: str, status: int) -> None:
    response = handler(rest_post(body, content_type), None)
    assert response["statusCode"] == status
    assert json.loads(response["body"])["detail"][0]["msg"]


def test_http_v2_get_predict(handler: Handler) -> None:
    request = copy.deepcopy(event("http_v2_post_predict.json"))
    query = "sepal_length=6.7&sepal_width=3.0&petal_length=5.2&petal_width=2.3"
    request.update(routeKey="GET /predict/", rawPath="/predict/", rawQueryString=query, body=None)
    request["isBase64Encoded"] = False
    request["requestContext"]["http"].update(method="GET", path="/predict/")
    del request["headers"]["content-type"], request["headers"]["content-length"]
    response = handler(request, None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["iris_type"] == "Virginica"


def test_http_v2_unknown_route_is_404_in_the_error_shape(handler: Handler) -> None:
    request = copy.deepcopy(event("http_v2_post_predict.json"))
    request.update(rawPath="/admin", body=None, isBase64Encoded=False)
    request["requestContext"]["http"].update(method="GET", path="/admin")
    response = handler(request, None)
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["detail"][0]["type"] == "not_found"
