"""Lambda on the registry's stream: audit events become CloudWatch metrics (EMF log lines).

`run-finished` events count as `TrainingRuns` by outcome; promotion events count as
`Promotions` by outcome. The alarms and the dashboard read exactly these names.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from training.contract import (
    DEPLOYMENT_SUCCEEDED,
    EVENT_PK,
    METRICS_NAMESPACE,
    PIPELINE_SERVICE,
    PROMOTED,
    PROMOTION_FAILED,
    ROLLED_BACK,
    RUN_FINISHED,
    Env,
)

PROMOTION_EVENTS = frozenset({PROMOTED, ROLLED_BACK, PROMOTION_FAILED, DEPLOYMENT_SUCCEEDED})
_deserialize = TypeDeserializer().deserialize


def metric_documents(
    records: Sequence[Mapping[str, Any]], *, namespace: str, now_ms: int
) -> Iterator[dict[str, Any]]:
    """One EMF document per inserted event that counts as a metric."""
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        image = record.get("dynamodb", {}).get("NewImage")
        if not image:
            continue
        event = {key: _deserialize(value) for key, value in image.items()}
        if event.get("pk") != EVENT_PK:
            continue
        kind = event.get("type")
        if kind == RUN_FINISHED:
            name, outcome = "TrainingRuns", str(event.get("detail", {}).get("status", "unknown"))
        elif kind in PROMOTION_EVENTS:
            name, outcome = "Promotions", str(kind)
        else:
            continue
        yield {
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [["service", "outcome"]],
                        "Metrics": [{"Name": name, "Unit": "Count"}],
                    }
                ],
            },
            "service": PIPELINE_SERVICE,
            "outcome": outcome,
            name: 1,
            # Context for whoever reads the log line; not dimensions, so no cost.
            "run_id": event.get("run_id"),
            "model_version": event.get("model_version"),
            "reason": event.get("reason"),
        }


def handler(event: Mapping[str, Any], context: object) -> dict[str, int]:
    """Write one EMF line per metric to stdout, where Lambda ships it to CloudWatch."""
    namespace = os.environ.get(Env.METRICS_NAMESPACE, METRICS_NAMESPACE)
    documents = list(
        metric_documents(
            list(event.get("Records", [])), namespace=namespace, now_ms=int(time.time() * 1000)
        )
    )
    for document in documents:
        sys.stdout.write(json.dumps(document, default=str) + "\n")
    sys.stdout.flush()
    return {"records": len(event.get("Records", [])), "metrics": len(documents)}
