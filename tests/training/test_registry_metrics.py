"""Registry stream -> EMF metrics: run outcomes and promotions, nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from training.control.registry_metrics import handler, metric_documents

_serialize = TypeSerializer().serialize


def record(item: dict[str, Any], event_name: str = "INSERT") -> dict[str, Any]:
    """A DynamoDB stream record carrying `item` as its new image."""
    return {
        "eventID": "1",
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}},
            "NewImage": {k: _serialize(v) for k, v in item.items()},
            "StreamViewType": "NEW_IMAGE",
        },
    }


def event_item(kind: str, **extra: Any) -> dict[str, Any]:
    return {"pk": "EVENT", "sk": "2026-11-27T14:05:01Z#abcd1234", "type": kind, **extra}


def test_a_finished_run_counts_by_outcome() -> None:
    records = [
        record(
            event_item("run-finished", run_id="r1", detail={"status": "rejected"}, reason="gate")
        )
    ]
    [doc] = metric_documents(records, namespace="IrisML", now_ms=1_800_000_000_000)
    assert doc["_aws"] == {
        "Timestamp": 1_800_000_000_000,
        "CloudWatchMetrics": [
            {
                "Namespace": "IrisML",
                "Dimensions": [["service", "outcome"]],
                "Metrics": [{"Name": "TrainingRuns", "Unit": "Count"}],
            }
        ],
    }
    assert (doc["service"], doc["outcome"], doc["TrainingRuns"]) == ("pipeline", "rejected", 1)
    assert (doc["run_id"], doc["reason"]) == ("r1", "gate")


@pytest.mark.parametrize(
    "kind", ["promoted", "rolled-back", "promotion-failed", "deployment-succeeded"]
)
def test_promotions_count_by_event_type(kind: str) -> None:
    [doc] = metric_documents(
        [record(event_item(kind, model_version="abc"))], namespace="N", now_ms=0
    )
    assert (doc["outcome"], doc["Promotions"]) == (kind, 1)


def test_other_items_and_changes_are_ignored() -> None:
    records = [
        record(event_item("run-started")),
        record({"pk": "RUN", "sk": "r1", "status": "failed"}),
        record(event_item("run-finished", detail={"status": "failed"}), event_name="MODIFY"),
        {"eventName": "REMOVE", "dynamodb": {}},
    ]
    assert list(metric_documents(records, namespace="N", now_ms=0)) == []


def test_handler_writes_one_emf_line_per_metric(capsys: pytest.CaptureFixture[str]) -> None:
    records = [
        record(event_item("run-finished", detail={"status": "succeeded"})),
        record(event_item("run-finished", detail={"status": "failed"})),
        record(event_item("image-registered")),
    ]
    assert handler({"Records": records}, None) == {"records": 3, "metrics": 2}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["outcome"] for line in lines] == ["succeeded", "failed"]
    assert all(line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "IrisML" for line in lines)
