"""Sampled tracing: which requests are traced, what X-Ray receives, failures kept quiet."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from app.adapter import build_handler
from app.main import create_app
from app.settings import Settings
from app.tracing import HOUR_SECONDS, Sampler, Span, Tracer, segment
from tests.serving.support import event

SPAN = Span(
    method="POST",
    path="/predict",
    route="/predict",
    status=200,
    start=1764633600.125,
    end=1764633600.127,
    model_version="222222222222",
    cold_start=False,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_reservoir_comes_first_then_the_rate_each_hour() -> None:
    clock = Clock()
    draws = iter([0.5, 0.005, 0.5])
    sampler = Sampler(0.01, 2, draw=lambda: next(draws), clock=clock)
    assert [sampler.sample() for _ in range(5)] == [True, True, False, True, False]
    clock.now += HOUR_SECONDS
    # A new hour, a new reservoir: no draw is made while it lasts.
    assert [sampler.sample(), sampler.sample()] == [True, True]


def test_nothing_is_sampled_when_tracing_is_off() -> None:
    sampler = Sampler(0.0, 0, draw=lambda: 0.0)
    assert not sampler.enabled
    assert not any(sampler.sample() for _ in range(100))


def test_a_rate_samples_about_that_share() -> None:
    sampler = Sampler(0.01, 0)
    sampled = sum(sampler.sample() for _ in range(100_000))
    assert 700 < sampled < 1300


def test_the_segment_follows_xrays_document_schema() -> None:
    """X-Ray segment documents: 16-hex id, trace id 1-<8 hex epoch>-<24 hex>, times in epoch
    seconds, http request and response, annotations, error for 4xx and fault for 5xx."""
    doc = segment(SPAN, name="iris-ml-dev-api")
    assert re.fullmatch(r"[0-9a-f]{16}", doc["id"])
    assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", doc["trace_id"])
    assert doc["trace_id"].split("-")[1] == f"{int(SPAN.start):08x}"
    assert (doc["start_time"], doc["end_time"]) == (SPAN.start, SPAN.end)
    assert doc["http"] == {
        "request": {"method": "POST", "url": "/predict"},
        "response": {"status": 200},
    }
    assert doc["annotations"] == {
        "route": "/predict",
        "model_version": "222222222222",
        "cold_start": False,
    }
    assert (doc["error"], doc["fault"]) == (False, False)
    failed = segment(Span(**{**SPAN.__dict__, "status": 503}), name="x")
    refused = segment(Span(**{**SPAN.__dict__, "status": 422}), name="x")
    assert (failed["fault"], refused["error"], refused["fault"]) == (True, True, False)


def test_a_sampled_request_is_sent_with_put_trace_segments() -> None:
    client = boto3.client(
        "xray",
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",  # noqa: S106 - a stub
    )
    tracer = Tracer(Sampler(1.0, 0), name="iris-ml-dev-api", client_factory=lambda: client)
    sent: list[dict[str, Any]] = []
    with Stubber(client) as stub:
        stub.add_response("put_trace_segments", {"UnprocessedTraceSegments": []})
        stub.add_response(
            "put_trace_segments",
            {"UnprocessedTraceSegments": [{"Id": "x", "ErrorCode": "1", "Message": "throttled"}]},
        )
        client.meta.events.register(
            "before-parameter-build.xray.PutTraceSegments",
            lambda params, **_: sent.append(json.loads(params["TraceSegmentDocuments"][0])),
        )
        assert tracer.send(SPAN) is True
        assert tracer.send(SPAN) is False
        stub.assert_no_pending_responses()
    assert sent[0]["name"] == "iris-ml-dev-api"
    assert sent[0]["http"]["response"]["status"] == 200


def test_a_failure_to_send_never_reaches_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Any:
        raise ImportError("No module named 'boto3'")

    tracer = Tracer(Sampler(1.0, 0), name="x", client_factory=broken)
    assert tracer.send(SPAN) is False
    assert "trace not sent: ImportError" in caplog.text


def test_settings_come_from_the_environment_and_bad_ones_name_the_variables() -> None:
    tracer = Tracer.from_env(
        {
            "TRACE_SAMPLE_RATE": "0.01",
            "TRACE_RESERVOIR_PER_HOUR": "6",
            "AWS_LAMBDA_FUNCTION_NAME": "iris-ml-dev-api-ServingFunction",
        }
    )
    assert (tracer.sampler.rate, tracer.sampler.reservoir_per_hour) == (0.01, 6)
    assert tracer.name == "iris-ml-dev-api-ServingFunction"
    assert not Tracer.from_env({}).sampler.enabled
    with pytest.raises(ValueError, match="TRACE_SAMPLE_RATE"):
        Tracer.from_env({"TRACE_SAMPLE_RATE": "2"})


def test_importing_the_tracer_does_not_import_boto3() -> None:
    """boto3 costs ~150 ms to import: it must stay off the cold path."""
    code = "import sys, app.tracing; print('boto3' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd="lambda_image",
    )
    assert found.stdout.strip() == "False"


class Recorder:
    """An X-Ray client that keeps what it was sent."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def put_trace_segments(self, TraceSegmentDocuments: list[str]) -> dict[str, Any]:  # noqa: N803
        self.documents += [json.loads(doc) for doc in TraceSegmentDocuments]
        return {"UnprocessedTraceSegments": []}


def test_a_sampled_request_through_the_lambda_handler_reaches_xray(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the construct's TRACE_* settings, a recorded HTTP API event, one segment."""
    recorder = Recorder()
    monkeypatch.setattr("app.tracing._xray_client", lambda: recorder)
    monkeypatch.setenv("TRACE_SAMPLE_RATE", "0")
    monkeypatch.setenv("TRACE_RESERVOIR_PER_HOUR", "1")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "iris-ml-dev-api-Serving")
    handler = build_handler(create_app(Settings(model_dir=model_dir)))

    for _ in range(3):
        assert handler(event("http_v2_post_predict.json"), None)["statusCode"] == 200

    # The reservoir of one an hour took the first request; the rate of 0 took no other.
    [doc] = recorder.documents
    assert doc["name"] == "iris-ml-dev-api-Serving"
    assert doc["http"] == {
        "request": {"method": "POST", "url": "/predict"},
        "response": {"status": 200},
    }
    assert doc["annotations"]["route"] == "/predict"
    assert doc["annotations"]["cold_start"] is True
    assert doc["end_time"] >= doc["start_time"]
