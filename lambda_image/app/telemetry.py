"""Request telemetry: one JSON log line and CloudWatch EMF metrics per request, on stdout.

Lambda ships each stdout line to CloudWatch Logs as a log event, and CloudWatch extracts
metrics from every event that carries an `_aws` block (embedded metric format): no agent, no
API call. Metric documents carry no `level`, so a log-level filter never drops a metric.

Our own emitter, not aws-lambda-powertools' Logger and Metrics: its import (+9 ms cold) was
fine, but serving the same telemetry through it took the warm single-instance p50 from
~165 us to ~375 us (budget 200 us): a print per metric group, each validated and rebuilt.
This module adds ~25 us.

Each line is one flat dict serialized by pydantic-core (five times faster than `json.dumps`);
the `_aws` directives are serialized once at start and spliced in; all of a request's lines
go out in one write (Lambda's Python runtime flushes stdout on every write).
Nothing from a request's body, query or URL is written: only the matched route template,
the status, error field names and types, and counts.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import traceback
from collections.abc import MutableMapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic_core import to_json

from app.tracing import Span, Tracer

# Keys the routes and error handlers leave in the ASGI scope for the middleware to report.
PREDICTED_KEY = "app.predicted_class_ids"
ERRORS_KEY = "app.errors"
# Route label of a request no route matched: raw paths would leak input and explode the
# number of metric series.
UNMATCHED = "unmatched"
# Refusals of bad input; 404 and 405 are a client's wrong address, not bad input.
VALIDATION_STATUSES = frozenset({400, 413, 415, 422, 431})
# A 1,000-instance batch can break thousands of rules; a few name the problem.
MAX_LOGGED_ERRORS = 10
MAX_FIELD_CHARS = 100
MAX_MESSAGE_CHARS = 1000

Scope = MutableMapping[str, Any]
# (class index, number of instances predicted as that class), classes with none left out.
Counts = list[tuple[int, int]]


class Outcome(NamedTuple):
    """What the middleware saw of one request."""

    method: str
    route: str
    status: int
    seconds: float
    exception: BaseException | None = None


def note_predictions(scope: Scope, class_ids: npt.NDArray[np.intp]) -> None:
    """Record the predicted class index of every instance, for the request's telemetry."""
    scope[PREDICTED_KEY] = class_ids


def note_errors(scope: Scope, items: Sequence[dict[str, Any]]) -> None:
    """Record the error items a refusal answered with (only their field and type are logged)."""
    scope[ERRORS_KEY] = items


def _directive(namespace: str, dimensions: list[list[str]], name: str, unit: str) -> str:
    """One EMF metric directive, serialized."""
    return json.dumps(
        {
            "Namespace": namespace,
            "Dimensions": dimensions,
            "Metrics": [{"Name": name, "Unit": unit}],
        },
        separators=(",", ":"),
    )


class Telemetry:
    """Writes a request's log line and EMF documents; built once per app."""

    def __init__(
        self,
        *,
        service: str,
        namespace: str,
        model_version: str,
        class_names: Sequence[str],
        tracer: Tracer | None = None,
    ) -> None:
        self.service = service
        # Sampled X-Ray segments (app/tracing.py); off unless the construct set TRACE_*.
        self.tracer = tracer if tracer is not None else Tracer.from_env()
        self.namespace = namespace
        self.model_version = model_version
        self.class_names = list(class_names)
        # The first request this app serves; the Lambda handler builds one app per process.
        self.cold = True
        # Local requests (no Lambda context) get a process-unique prefix and a counter: cheap,
        # and unique across the processes of one host.
        self._local_prefix = f"local-{os.urandom(6).hex()}-"
        self._local_ids = itertools.count(1)
        # The timestamp's whole-second part, formatted once per second (see _timestamp).
        self._second = -1
        self._second_text = ""
        by_route = [["service", "route"]]
        by_version = [["service", "model_version"]]
        self._latency = _directive(namespace, by_route, "Latency", "Milliseconds")
        self._predictions = _directive(
            namespace, [["service", "iris_type"], *by_version], "Predictions", "Count"
        )
        self._validation = _directive(
            namespace, [*by_route, *by_version], "ValidationErrors", "Count"
        )
        self._cold_start = _directive(namespace, [["service"]], "ColdStart", "Count")

    def request_id(self, scope: Scope) -> str:
        """The Lambda request id under Lambda; a generated one elsewhere."""
        rid = getattr(scope.get("aws.context"), "aws_request_id", None)
        if isinstance(rid, str):
            return rid
        return f"{self._local_prefix}{next(self._local_ids)}"

    def emit(self, scope: Scope, outcome: Outcome) -> None:
        """Write the request's log line and EMF documents to stdout in one call."""
        cold, self.cold = self.cold, False
        now = time.time()
        counts = _class_counts(scope.get(PREDICTED_KEY))
        lines = [
            self.log_line(scope, outcome, now=now, cold=cold, counts=counts),
            *self.metric_documents(outcome, now=now, cold=cold, counts=counts),
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        if self.tracer.sampler.sample():
            self.tracer.send(
                Span(
                    method=outcome.method,
                    path=str(scope.get("path", "")),
                    route=outcome.route,
                    status=outcome.status,
                    start=now - outcome.seconds,
                    end=now,
                    model_version=self.model_version,
                    cold_start=cold,
                )
            )

    def _timestamp(self, now: float) -> str:
        """UTC time to the millisecond, ISO 8601.

        The date and time of day are formatted once per second: `time.strftime` costs ~5 us
        inside a request (it round-trips through the locale's encoding).
        """
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int(now * 1000) % 1000:03d}Z"

    def log_line(
        self,
        scope: Scope,
        outcome: Outcome,
        *,
        now: float,
        cold: bool,
        counts: Counts | None,
    ) -> str:
        """The request's structured log line."""
        status = outcome.status
        record: dict[str, Any] = {
            "level": "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO",
            "message": f"{outcome.method} {outcome.route} {status}",
            "timestamp": self._timestamp(now),
            "service": self.service,
            "request_id": self.request_id(scope),
            "method": outcome.method,
            "route": outcome.route,
            "status": status,
            "latency_ms": round(outcome.seconds * 1000, 3),
            "model_version": self.model_version,
            "cold_start": cold,
        }
        event = scope.get("aws.event")
        if isinstance(event, dict):
            apigw_id = (event.get("requestContext") or {}).get("requestId")
            if isinstance(apigw_id, str):
                record["apigw_request_id"] = apigw_id
        if counts is not None:
            record["instances"] = sum(n for _, n in counts)
        if status >= 400:
            items = scope.get(ERRORS_KEY)
            if items:
                record["errors"] = [
                    {"field": str(item["field"])[:MAX_FIELD_CHARS], "type": str(item["type"])}
                    for item in items[:MAX_LOGGED_ERRORS]
                ]
                record["error_count"] = len(items)
        if outcome.exception is not None:
            exc = outcome.exception
            record["exception"] = {
                "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                "message": str(exc)[:MAX_MESSAGE_CHARS],
                "traceback": "".join(traceback.format_exception(exc)),
            }
        return to_json(record, inf_nan_mode="null").decode()

    def metric_documents(
        self, outcome: Outcome, *, now: float, cold: bool, counts: Counts | None
    ) -> list[str]:
        """EMF documents: Latency (and ColdStart, ValidationErrors) and Predictions per class.

        A dimension's value is a single top-level string of the document, so each predicted
        class needs a document of its own; each carries both Predictions dimension sets, so
        the per-version series adds up to the instance count (use the Sum statistic).
        """
        timestamp = int(now * 1000)
        directives = [self._latency]
        members: dict[str, Any] = {
            "service": self.service,
            "route": outcome.route,
            "model_version": self.model_version,
            "Latency": round(outcome.seconds * 1000, 3),
        }
        if cold:
            directives.append(self._cold_start)
            members["ColdStart"] = 1
        if outcome.status in VALIDATION_STATUSES:
            directives.append(self._validation)
            members["ValidationErrors"] = 1
        per_class = counts or []
        if per_class:
            # The first class rides in the request's document; any others get their own.
            index, count = per_class[0]
            directives.append(self._predictions)
            members["iris_type"] = self.class_names[index]
            members["Predictions"] = count
        documents = [_document(timestamp, directives, members)]
        for index, count in per_class[1:]:
            extra = {
                "service": self.service,
                "model_version": self.model_version,
                "iris_type": self.class_names[index],
                "Predictions": count,
            }
            documents.append(_document(timestamp, [self._predictions], extra))
        return documents


def _document(timestamp: int, directives: list[str], members: dict[str, Any]) -> str:
    """An EMF document: the `_aws` block, spliced from serialized directives, then members."""
    body = to_json(members, inf_nan_mode="null").decode()
    return (
        f'{{"_aws":{{"Timestamp":{timestamp},"CloudWatchMetrics":[{",".join(directives)}]}},'
        f"{body[1:]}"
    )


def _class_counts(class_ids: npt.NDArray[np.intp] | None) -> Counts | None:
    """(class index, instances) of each predicted class, or None when nothing was predicted."""
    if class_ids is None:
        return None
    if class_ids.size == 1:  # most requests carry one flower: skip bincount
        return [(int(class_ids[0]), 1)]
    return [(i, n) for i, n in enumerate(np.bincount(class_ids).tolist()) if n]
