"""Sampled X-Ray traces, sent by the app: a fixed share of requests plus a small reservoir.

Behind an HTTP API the function is the root of its traces, and Lambda's own (Active) tracing
samples the first request each second and 5% of the rest, which below one request a second is
every request: $5.00 per million. So the function runs with tracing PassThrough and the app
samples: TRACE_SAMPLE_RATE of requests, plus up to TRACE_RESERVOIR_PER_HOUR an hour per
instance so that a quiet API still shows traces. Each sampled request becomes one segment
document sent with X-Ray's PutTraceSegments (AWS docs: xray-api-sendingdata, and the segment
document schema: name, id, trace_id, start_time, end_time, http, annotations, error, fault).

boto3 is imported on the first sampled request, never on the cold path (the Lambda base image
ships it). Sending never fails a request: an error is logged and the request answers as usual.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import environment as names

_log = logging.getLogger(__name__)
HOUR_SECONDS = 3600.0


@dataclass(frozen=True)
class Span:
    """What one request's segment says."""

    method: str
    path: str
    route: str
    status: int
    start: float  # epoch seconds
    end: float
    model_version: str
    cold_start: bool


class Sampler:
    """Up to `reservoir_per_hour` requests an hour, then a `rate` share of the rest."""

    def __init__(
        self,
        rate: float,
        reservoir_per_hour: int,
        *,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.reservoir_per_hour = reservoir_per_hour
        self._draw = draw
        self._clock = clock
        self._window: float | None = None
        self._used = 0

    @property
    def enabled(self) -> bool:
        """Whether any request can be sampled at all."""
        return self.rate > 0 or self.reservoir_per_hour > 0

    def sample(self) -> bool:
        """Whether to trace the request that is starting now."""
        if not self.enabled:
            return False
        now = self._clock()
        if self._window is None or now - self._window >= HOUR_SECONDS:
            self._window, self._used = now, 0
        if self._used < self.reservoir_per_hour:
            self._used += 1
            return True
        return self._draw() < self.rate


def segment(span: Span, *, name: str) -> dict[str, Any]:
    """The X-Ray segment document of one request."""
    return {
        "name": name,
        "id": secrets.token_hex(8),
        "trace_id": f"1-{int(span.start):08x}-{secrets.token_hex(12)}",
        "start_time": span.start,
        "end_time": span.end,
        "origin": "AWS::Lambda::Function",
        "http": {
            "request": {"method": span.method, "url": span.path},
            "response": {"status": span.status},
        },
        "annotations": {
            "route": span.route,
            "model_version": span.model_version,
            "cold_start": span.cold_start,
        },
        "error": 400 <= span.status < 500,
        "fault": span.status >= 500,
    }


class Tracer:
    """Samples requests and sends the sampled ones to X-Ray."""

    def __init__(
        self, sampler: Sampler, *, name: str, client_factory: Callable[[], Any] | None = None
    ) -> None:
        self.sampler = sampler
        self.name = name
        self._client_factory = client_factory or _xray_client
        self._client: Any = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Tracer:
        """The tracer the construct configured (TRACE_*); off when they are unset."""
        rate = float(environ.get(names.TRACE_SAMPLE_RATE) or 0)
        reservoir = int(environ.get(names.TRACE_RESERVOIR_PER_HOUR) or 0)
        if not 0 <= rate <= 1 or reservoir < 0:
            raise ValueError(
                f"{names.TRACE_SAMPLE_RATE} must be within [0, 1] and "
                f"{names.TRACE_RESERVOIR_PER_HOUR} at least 0; got {rate} and {reservoir}"
            )
        name = environ.get("AWS_LAMBDA_FUNCTION_NAME") or "iris-classifier"
        return cls(Sampler(rate, reservoir), name=name)

    def send(self, span: Span) -> bool:
        """Send one sampled request's segment; False (and a log line) when it did not go."""
        try:
            if self._client is None:
                self._client = self._client_factory()
            answer = self._client.put_trace_segments(
                TraceSegmentDocuments=[json.dumps(segment(span, name=self.name))]
            )
        except Exception as err:  # noqa: BLE001 - a trace must never cost a caller the answer
            _log.warning("trace not sent: %s: %s", type(err).__name__, err)
            return False
        unprocessed = answer.get("UnprocessedTraceSegments") or []
        if unprocessed:
            _log.warning("trace not accepted: %s", unprocessed[0].get("Message", "unknown"))
            return False
        return True


def _xray_client() -> Any:
    """X-Ray's client, imported on first use: boto3 costs ~150 ms to import."""
    import boto3  # noqa: PLC0415 - kept off the cold path on purpose

    return boto3.client("xray")
