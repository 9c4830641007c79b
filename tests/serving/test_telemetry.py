"""Request telemetry through the real Lambda adapter: the JSON log line and the EMF metrics.

Each test serves recorded API Gateway events with Mangum around a fresh app (so the first
request is its cold start), captures stdout, and reads it back as CloudWatch would: a log
event per line, and metrics from every line with an `_aws` block.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mangum import Mangum

from app.main import create_app
from app.model import KnnModel
from app.settings import Settings, SettingsError
from app.telemetry import Outcome, Telemetry
from tests.serving.support import Handler, event

LAMBDA_REQUEST_ID = "8f5e0a52-5a8f-4c69-9d0a-3c1b2f7e9a11"
CONTEXT = SimpleNamespace(aws_request_id=LAMBDA_REQUEST_ID, function_name="iris-api")
SECRET = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"  # noqa: S105 - a fake that must never be logged
OUT_OF_RANGE = "10.987654321"
LOG_KEYS = {
    "level",
    "message",
    "timestamp",
    "service",
    "request_id",
    "apigw_request_id",
    "method",
    "route",
    "status",
    "latency_ms",
    "model_version",
    "cold_start",
}
SETOSA, VERSICOLOR, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [5.9, 2.8, 4.4, 1.3], [6.7, 3.0, 5.2, 2.3]
Series = tuple[str, str, tuple[tuple[str, str], ...]]
Record = dict[str, Any]


def strict_json(line: str) -> dict[str, Any]:
    """A JSON object, refusing NaN and Infinity (not JSON; CloudWatch would drop the line)."""

    def refuse(token: str) -> None:
        raise ValueError(f"{token} in {line}")

    loaded: dict[str, Any] = json.loads(line, parse_constant=refuse)
    return loaded


def captured(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[Record], list[Record]]:
    """stdout since the last call: the raw text, its log lines and its EMF documents."""
    out = capsys.readouterr().out
    records = [strict_json(line) for line in out.splitlines()]
    return out, [r for r in records if "_aws" not in r], [r for r in records if "_aws" in r]


def one_request(capsys: pytest.CaptureFixture[str]) -> tuple[str, Record, list[Record]]:
    """The single log line and the EMF documents one request wrote."""
    out, logs, docs = captured(capsys)
    assert len(logs) == 1, out
    assert docs, out
    return out, logs[0], docs


def series(docs: list[dict[str, Any]], namespace: str = "IrisML") -> dict[Series, float]:
    """Sum of each (metric, unit, dimensions) series, checking every document against the spec.

    EMF: `_aws` holds an integer millisecond Timestamp and CloudWatchMetrics directives; each
    directive names a Namespace, dimension sets whose keys are string members of the document,
    and metrics whose names are numeric members of it.
    """
    sums: dict[Series, float] = defaultdict(float)
    for doc in docs:
        # No "level": Lambda's log-level filter must never drop a metric.
        assert "level" not in doc
        meta = doc["_aws"]
        assert set(meta) == {"Timestamp", "CloudWatchMetrics"}
        assert isinstance(meta["Timestamp"], int)
        assert abs(meta["Timestamp"] - time.time() * 1000) < 60_000
        assert meta["CloudWatchMetrics"]
        for directive in meta["CloudWatchMetrics"]:
            assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
            assert directive["Namespace"] == namespace
            for metric in directive["Metrics"]:
                assert set(metric) == {"Name", "Unit"}
                value = doc[metric["Name"]]
                assert isinstance(value, int | float)
                assert not isinstance(value, bool)
                for dimension_set in directive["Dimensions"]:
                    assert all(isinstance(doc[key], str) and doc[key] for key in dimension_set)
                    dims = tuple(sorted((key, doc[key]) for key in dimension_set))
                    sums[(metric["Name"], metric["Unit"], dims)] += value
    return dict(sums)


def directives_of(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Every directive declaring metric `name`."""
    return [
        d
        for doc in docs
        for d in doc["_aws"]["CloudWatchMetrics"]
        if name in [m["Name"] for m in d["Metrics"]]
    ]


def names_of(docs: list[dict[str, Any]]) -> set[str]:
    """Metric names declared anywhere in `docs`."""
    return {
        m["Name"] for doc in docs for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }


@pytest.fixture
def fresh(model_dir: Path, model: KnnModel) -> Handler:
    """The Lambda handler around a new app, as app/handler.py builds it: no request served yet."""
    adapter: Handler = Mangum(
        create_app(Settings(model_dir=model_dir), model=model), lifespan="off"
    )
    return adapter


def rest(method: str, path: str, **changes: Any) -> dict[str, Any]:
    """A REST (v1) event derived from the recorded GET /predict/ event."""
    request = copy.deepcopy(event("rest_v1_get_predict.json"))
    request.update(httpMethod=method, path=path, **changes)
    request["requestContext"].update(httpMethod=method, path=f"/prod{path}")
    return request


def rest_post(body: str, content_type: str = "application/json") -> dict[str, Any]:
    """A REST (v1) POST /predict event with `body`."""
    request = rest(
        "POST",
        "/predict",
        body=body,
        queryStringParameters=None,
        multiValueQueryStringParameters=None,
    )
    request["headers"]["Content-Type"] = content_type
    request["multiValueHeaders"]["Content-Type"] = [content_type]
    return request


def rest_get(query: dict[str, str], path: str = "/predict/") -> dict[str, Any]:
    """A REST (v1) GET event with `query` as its query string."""
    return rest(
        "GET",
        path,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()},
    )


# --- the log line and metrics of a prediction -------------------------------------------------


def test_prediction_writes_one_log_line_and_emf_per_class(
    fresh: Handler, model: KnnModel, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = event("http_v2_post_predict.json")
    assert json.loads(base64.b64decode(recorded["body"]))["instances"][1]["sepal_length"] == 6.7
    response = fresh(recorded, CONTEXT)
    assert response["statusCode"] == 200
    _, log, docs = one_request(capsys)

    assert set(log) == LOG_KEYS | {"instances"}
    assert log["level"] == "INFO"
    assert log["message"] == "POST /predict 200"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", log["timestamp"])
    assert log["service"] == "iris-api"
    assert log["request_id"] == LAMBDA_REQUEST_ID
    assert log["apigw_request_id"] == recorded["requestContext"]["requestId"]
    assert log["method"] == "POST"
    assert log["route"] == "/predict"
    assert log["status"] == 200
    assert isinstance(log["latency_ms"], float)
    assert log["latency_ms"] > 0
    assert log["model_version"] == model.version
    assert log["instances"] == 2
    assert log["cold_start"] is True

    # Two classes, two documents: a dimension holds one value per document.
    assert len(docs) == 2
    [latency] = directives_of(docs, "Latency")
    assert latency["Dimensions"] == [["service", "route"]]
    for predictions in directives_of(docs, "Predictions"):
        assert predictions["Dimensions"] == [["service", "iris_type"], ["service", "model_version"]]
        assert predictions["Metrics"] == [{"Name": "Predictions", "Unit": "Count"}]
    svc = ("service", "iris-api")
    assert series(docs) == {
        ("Predictions", "Count", (("iris_type", "Setosa"), svc)): 1,
        ("Predictions", "Count", (("iris_type", "Virginica"), svc)): 1,
        ("Predictions", "Count", (("model_version", model.version), svc)): 2,
        ("Latency", "Milliseconds", (("route", "/predict"), svc)): log["latency_ms"],
        ("ColdStart", "Count", (svc,)): 1,
    }


def test_only_the_first_request_is_a_cold_start(
    fresh: Handler, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh(event("http_v2_post_predict.json"), CONTEXT)
    assert one_request(capsys)[1]["cold_start"] is True
    fresh(event("http_v2_post_predict.json"), CONTEXT)
    _, log, docs = one_request(capsys)
    assert log["cold_start"] is False
    assert "ColdStart" not in names_of(docs)


def test_batch_counts_every_instance_by_class_and_by_version(
    fresh: Handler, model: KnnModel, capsys: pytest.CaptureFixture[str]
) -> None:
    instances = [SETOSA] * 500 + [VERSICOLOR] * 300 + [VIRGINICA] * 200
    response = fresh(rest_post(json.dumps({"instances": instances})), CONTEXT)
    assert response["statusCode"] == 200
    _, log, docs = one_request(capsys)
    assert log["instances"] == 1000
    sums = series(docs)
    svc = ("service", "iris-api")
    by_class = {
        name: sums[("Predictions", "Count", (("iris_type", name), svc))]
        for name in model.display_names
    }
    assert by_class == {"Setosa": 500, "Versicolor": 300, "Virginica": 200}
    assert sums[("Predictions", "Count", (("model_version", model.version), svc))] == 1000
    assert len(docs) == 3


@pytest.mark.parametrize("path", ["/predict/", "/predict"])
def test_get_logs_the_route_template_and_ids_outside_lambda(
    fresh: Handler, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    query = {
        "sepal_length": "5.1",
        "sepal_width": "3.5",
        "petal_length": "1.4",
        "petal_width": "0.2",
    }
    ids = []
    for _ in range(2):
        # No Lambda context: a generated request id; API Gateway's id still comes from the event.
        assert fresh(rest_get(query, path), None)["statusCode"] == 200
        out, log, docs = one_request(capsys)
        assert log["route"] == "/predict/"
        assert log["method"] == "GET"
        assert log["instances"] == 1
        assert log["apigw_request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
        assert "/prod/predict" not in out
        ids.append(log["request_id"])
        latency = ("Latency", "Milliseconds", (("route", "/predict/"), ("service", "iris-api")))
        assert series(docs)[latency] > 0
    assert ids[0].startswith("local-")
    assert ids[0] != ids[1]


def test_requests_without_api_gateway_log_too(
    model_dir: Path, model: KnnModel, capsys: pytest.CaptureFixture[str]
) -> None:
    # Under uvicorn (`make run`) or the TestClient there is no Lambda context and no event.
    with TestClient(create_app(Settings(model_dir=model_dir), model=model)) as client:
        assert client.get("/health").status_code == 200
    _, log, docs = one_request(capsys)
    assert set(log) == LOG_KEYS - {"apigw_request_id"}
    assert log["route"] == "/health"
    assert log["request_id"].startswith("local-")
    assert names_of(docs) == {"Latency", "ColdStart"}


# --- refusals: counted, logged by field and type, never echoed ---------------------------------


@pytest.mark.parametrize(
    ("request_event", "status", "route", "errors"),
    [
        (
            rest_post(f'{{"instances": [[NaN, 1, 1, 1], [5.1, "{SECRET}", 1.4, 0.2]]}}'),
            422,
            "/predict",
            [
                {"field": "instances[0][0]", "type": "finite_number"},
                {"field": "instances[1][1]", "type": "float_type"},
            ],
        ),
        (
            rest_post(f'{{"instances": [[5.1, 3.5, 1.4, 0.2]], "token": "{SECRET}"}}'),
            422,
            "/predict",
            [{"field": "token", "type": "extra_forbidden"}],
        ),
        (
            rest_post(f'{{"instances": [[5.1, {SECRET}'),
            422,
            "/predict",
            [{"field": "body", "type": "json_invalid"}],
        ),
        (
            rest_post(f"sepal_length={SECRET}", "application/x-www-form-urlencoded"),
            415,
            "/predict",
            [{"field": "content-type", "type": "unsupported_media_type"}],
        ),
        (
            rest_post(f'{{"pad": "{SECRET}{" " * 1024 * 1024}"}}'),
            413,
            "/predict",
            [{"field": "body", "type": "payload_too_large"}],
        ),
        (
            rest_get({"sepal_length": "NaN", "sepal_width": SECRET, "petal_length": "1.4"}),
            422,
            "/predict/",
            [
                {"field": "sepal_length", "type": "finite_number"},
                {"field": "sepal_width", "type": "float_parsing"},
                {"field": "petal_width", "type": "missing"},
            ],
        ),
        (
            rest_get(
                {
                    "sepal_length": OUT_OF_RANGE,
                    "sepal_width": "3.5",
                    "petal_length": "1.4",
                    "petal_width": "0.2",
                }
            ),
            400,
            "/predict/",
            [{"field": "sepal_length", "type": "out_of_range"}],
        ),
    ],
    ids=[
        "nan-and-string",
        "extra-key",
        "bad-json",
        "form-415",
        "body-413",
        "query-422",
        "range-400",
    ],
)
def test_refusal_counts_a_validation_error_and_echoes_no_input(
    fresh: Handler,
    model: KnnModel,
    capsys: pytest.CaptureFixture[str],
    request_event: dict[str, Any],
    status: int,
    route: str,
    errors: list[dict[str, str]],
) -> None:
    response = fresh(request_event, CONTEXT)
    assert response["statusCode"] == status
    out, log, docs = one_request(capsys)
    assert log["level"] == "WARNING"
    assert log["status"] == status
    assert log["route"] == route
    assert log["errors"] == errors
    assert log["error_count"] == len(errors)
    assert "instances" not in log
    # Neither body nor query values reach the logs: not the secret, not NaN, no measurement.
    assert SECRET not in out
    assert "NaN" not in out
    assert OUT_OF_RANGE not in out
    svc = ("service", "iris-api")
    sums = series(docs)
    assert sums[("ValidationErrors", "Count", (("route", route), svc))] == 1
    assert sums[("ValidationErrors", "Count", (("model_version", model.version), svc))] == 1
    [validation] = directives_of(docs, "ValidationErrors")
    assert validation["Dimensions"] == [["service", "route"], ["service", "model_version"]]
    assert "Predictions" not in names_of(docs)


@pytest.mark.parametrize(("method", "status"), [("GET", 404), ("DELETE", 405)])
def test_wrong_address_is_not_a_validation_error_and_the_path_stays_out(
    fresh: Handler, capsys: pytest.CaptureFixture[str], method: str, status: int
) -> None:
    path = f"/predict/{SECRET}" if status == 404 else "/predict"
    request = rest(method, path, queryStringParameters=None, multiValueQueryStringParameters=None)
    assert fresh(request, CONTEXT)["statusCode"] == status
    out, log, docs = one_request(capsys)
    assert log["status"] == status
    assert log["route"] == ("unmatched" if status == 404 else "/predict")
    assert SECRET not in out
    assert names_of(docs) == {"Latency", "ColdStart"}


def test_server_error_logs_the_exception(
    model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = KnnModel.load(model_dir)

    def fail(_: np.ndarray) -> None:
        raise RuntimeError("distance table is corrupt")

    monkeypatch.setattr(broken, "predict", fail)
    handler = Mangum(create_app(Settings(model_dir=model_dir), model=broken), lifespan="off")
    response = handler(event("http_v2_post_predict.json"), CONTEXT)
    assert response["statusCode"] == 500
    out, log, docs = one_request(capsys)
    assert log["level"] == "ERROR"
    assert log["status"] == 500
    assert log["route"] == "/predict"
    assert log["exception"]["type"] == "builtins.RuntimeError"
    assert log["exception"]["message"] == "distance table is corrupt"
    assert "in fail" in log["exception"]["traceback"]
    # The request's values are never logged; measured figures (a latency of 16.73 ms, a
    # timestamp) may contain the same digits, so they are left out of the search.
    measured = re.sub(r'"(latency_ms|Latency|timestamp|_aws)":(\{.*?\}|"[^"]*"|[0-9.]+)', "", out)
    assert "6.7" not in measured
    assert names_of(docs) == {"Latency", "ColdStart"}


def test_a_request_is_written_in_one_call(fresh: Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    monkeypatch.setattr("sys.stdout", SimpleNamespace(write=writes.append))
    fresh(event("http_v2_post_predict.json"), CONTEXT)
    assert len(writes) == 1
    assert writes[0].endswith("\n")
    assert len(writes[0].splitlines()) == 3


# --- configuration ------------------------------------------------------------------------------


def test_namespace_and_service_come_from_the_environment(
    model_dir: Path, model: KnnModel, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env(
        {
            "MODEL_DIR": str(model_dir),
            "POWERTOOLS_METRICS_NAMESPACE": "Iris ML/prod",
            "POWERTOOLS_SERVICE_NAME": "iris-api-prod",
        }
    )
    handler = Mangum(create_app(settings, model=model), lifespan="off")
    handler(event("http_v2_post_predict.json"), CONTEXT)
    _, log, docs = one_request(capsys)
    assert log["service"] == "iris-api-prod"
    sums = series(docs, namespace="Iris ML/prod")
    assert sums[("ColdStart", "Count", (("service", "iris-api-prod"),))] == 1


def test_namespace_and_service_defaults() -> None:
    settings = Settings.from_env(
        {"POWERTOOLS_METRICS_NAMESPACE": "", "POWERTOOLS_SERVICE_NAME": ""}
    )
    assert (settings.metrics_namespace, settings.service_name) == ("IrisML", "iris-api")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POWERTOOLS_METRICS_NAMESPACE", "AWS/Lambda"),
        ("POWERTOOLS_METRICS_NAMESPACE", "iris;ml"),
        ("POWERTOOLS_METRICS_NAMESPACE", "   "),
        ("POWERTOOLS_METRICS_NAMESPACE", "x" * 256),
        ("POWERTOOLS_SERVICE_NAME", "iris\napi"),
        ("POWERTOOLS_SERVICE_NAME", "  "),
    ],
)
def test_bad_namespace_or_service_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}="):
        Settings.from_env({name: value})


# --- the emitter on its own ---------------------------------------------------------------------


def test_log_line_never_holds_nan_and_caps_error_items() -> None:
    telemetry = Telemetry(
        service="iris-api", namespace="IrisML", model_version="v1", class_names=["A", "B"]
    )
    items = [{"field": f"instances[{i}][0]", "type": "finite_number"} for i in range(1000)]
    scope = {"app.errors": items}
    line = telemetry.log_line(
        scope, Outcome("POST", "/predict", 422, float("nan")), now=0.0, cold=False, counts=None
    )
    record = strict_json(line)
    assert record["latency_ms"] is None
    assert len(record["errors"]) == 10
    assert record["error_count"] == 1000
    assert record["timestamp"] == "1970-01-01T00:00:00.000Z"
