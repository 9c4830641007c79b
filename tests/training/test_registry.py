"""The registry on moto: conditional writes, idempotent retries, kept history, both write orders."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber
from mypy_boto3_dynamodb import DynamoDBServiceResource

from tests.training.fakes import TABLE, StepClock
from training.registry import (
    CANDIDATE,
    FAILED,
    REJECTED,
    SUCCEEDED,
    Event,
    ImageRecord,
    ModelRecord,
    Registry,
    RegistryConflictError,
    RegistryNotFoundError,
    create_table,
)

URI = "s3://data/datasets/iris/v2/data.csv"
RUN_ID = "20261127T140501Z-1a2b3c4d"
MODEL_VERSION = "0a1b2c3d4e5f"
DIGEST = "sha256:" + "ab" * 32
METRICS = {
    "accuracy": 0.9666666666666667,
    "per_class": {"setosa": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 10}},
    "confusion_matrix": {"labels": ["setosa"], "matrix": [[10]]},
}


def start(registry: Registry, run_id: str = RUN_ID, uri: str = URI) -> None:
    registry.start_run(
        run_id,
        dataset_uri=uri,
        dataset_name="iris",
        dataset_version=uri.split("/")[-2],
        trigger="s3-event",
    )


def model_record(**overrides: Any) -> ModelRecord:
    values: dict[str, Any] = {
        "model_version": MODEL_VERSION,
        "status": CANDIDATE,
        "status_reason": "passed the quality gate with accuracy 0.9667",
        "run_id": RUN_ID,
        "dataset_name": "iris",
        "dataset_version": "v2",
        "dataset_uri": URI,
        "dataset_sha256": "e" * 64,
        "dataset_s3_version_id": "version-1",
        "metrics": METRICS,
        "gate": {"passed": True, "reasons": [], "baseline_accuracy": None},
        "image_tag": f"v2-{MODEL_VERSION}",
    }
    values.update(overrides)
    return ModelRecord(**values)


IMAGE = ImageRecord(
    model_version=MODEL_VERSION,
    dataset_version="v2",
    image_tag=f"v2-{MODEL_VERSION}",
    image_digest=DIGEST,
    image_uri=f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris-models@{DIGEST}",
    repository="iris-models",
)


def event_types(registry: Registry) -> list[str]:
    return sorted(event.type for event in registry.events(limit=100))


def raw_item(dynamodb: DynamoDBServiceResource, pk: str, sk: str, table: str = TABLE) -> Any:
    return dynamodb.Table(table).get_item(Key={"pk": pk, "sk": sk}).get("Item")


def test_start_run_records_launching_and_its_event(registry: Registry) -> None:
    run, created = registry.start_run(
        RUN_ID,
        dataset_uri=URI,
        dataset_name="iris",
        dataset_version="v2",
        trigger="manual",
        requested_by="arn:aws:iam::123456789012:user/ops",
        request_reason="new data",
    )
    assert created
    assert run == registry.get_run(RUN_ID)
    assert (run.status, run.trigger, run.dataset_version) == ("launching", "manual", "v2")
    assert run.requested_by == "arn:aws:iam::123456789012:user/ops"
    assert run.started_at == run.updated_at == "2026-11-27T14:05:01Z"
    [event] = registry.events()
    assert (event.type, event.run_id, event.reason, event.actor) == (
        "run-started",
        RUN_ID,
        "new data",
        "test",
    )
    assert event.time == "2026-11-27T14:05:01.000000Z"


@pytest.mark.fault
def test_a_duplicate_start_changes_nothing(registry: Registry, clock: StepClock) -> None:
    start(registry)
    clock.advance(seconds=30)
    run, created = registry.start_run(
        RUN_ID, dataset_uri=URI, dataset_name="iris", dataset_version="v2", trigger="s3-event"
    )
    assert not created
    assert run.started_at == "2026-11-27T14:05:01Z"
    assert event_types(registry) == ["run-started"]


@pytest.mark.fault
def test_another_run_under_the_same_id_is_a_conflict(registry: Registry) -> None:
    start(registry)
    with pytest.raises(RegistryConflictError, match=r"already exists for s3://data/.*/v2/"):
        start(registry, uri="s3://data/datasets/iris/v3/data.csv")
    run = registry.get_run(RUN_ID)
    assert run is not None
    assert run.dataset_version == "v2"
    assert event_types(registry) == ["run-started"]


@pytest.mark.fault
def test_finish_run_happens_once_and_a_second_finish_returns_the_first(
    registry: Registry, clock: StepClock
) -> None:
    start(registry)
    clock.advance(minutes=5)
    run, changed = registry.finish_run(
        RUN_ID,
        SUCCEEDED,
        "model passed",
        details={"model_version": MODEL_VERSION, "metrics": METRICS, "image_tag": None},
    )
    assert changed
    assert (run.status, run.reason, run.finished_at) == (
        SUCCEEDED,
        "model passed",
        "2026-11-27T14:10:01Z",
    )
    assert run.metrics == METRICS
    assert run.image_tag is None
    clock.advance(minutes=5)
    again, changed = registry.finish_run(RUN_ID, FAILED, "instance vanished")
    assert not changed
    assert again == run == registry.get_run(RUN_ID)
    assert event_types(registry) == ["run-finished", "run-started"]


def test_finish_run_refuses_unknown_runs_statuses_and_details(registry: Registry) -> None:
    with pytest.raises(RegistryNotFoundError, match=RUN_ID):
        registry.finish_run(RUN_ID, FAILED, "no such run")
    start(registry)
    with pytest.raises(ValueError, match="not a terminal status"):
        registry.finish_run(RUN_ID, "running", "oops")
    with pytest.raises(ValueError, match="cannot record"):
        registry.finish_run(RUN_ID, FAILED, "oops", details={"status": "succeeded"})
    assert event_types(registry) == ["run-started"]


def test_mark_running_once_per_instance(registry: Registry) -> None:
    start(registry)
    registry.record_launch(RUN_ID, instance_id="i-1", instance_type="m7g.large", market="spot")
    run = registry.mark_running(RUN_ID, instance_id="i-1", instance_type="m7g.large", market="spot")
    assert (run.status, run.instance_id, run.market) == ("running", "i-1", "spot")
    # A retry is a no-op; another instance claiming the run is refused.
    assert (
        registry.mark_running(RUN_ID, instance_id="i-1", instance_type="m7g.large", market="spot")
        == run
    )
    with pytest.raises(RegistryConflictError, match="runs on i-1, not on i-2"):
        registry.mark_running(RUN_ID, instance_id="i-2", instance_type="m7g.large", market="spot")
    registry.finish_run(RUN_ID, FAILED, "stopped")
    with pytest.raises(RegistryConflictError, match="already ended as failed"):
        registry.mark_running(RUN_ID, instance_id="i-1", instance_type="c7g.large", market="spot")
    assert event_types(registry) == ["run-finished", "run-launched", "run-running", "run-started"]


def test_record_model_and_register_image_converge_in_either_order(
    dynamodb: DynamoDBServiceResource, clock: StepClock
) -> None:
    create_table(dynamodb.meta.client, "other")
    trainer_first = Registry(TABLE, dynamodb=dynamodb, clock=clock)
    registrar_first = Registry("other", dynamodb=dynamodb, clock=clock)

    trainer_first.record_model(model_record())
    trainer_first.register_image(IMAGE)
    model, changed = registrar_first.register_image(IMAGE)
    assert changed
    assert (model.status, model.run_id, model.metrics) == (CANDIDATE, None, None)
    registrar_first.record_model(model_record())

    one = raw_item(dynamodb, "MODEL", MODEL_VERSION)
    other = raw_item(dynamodb, "MODEL", MODEL_VERSION, table="other")
    assert one == other
    assert one["status"] == CANDIDATE
    assert one["status_reason"] == "passed the quality gate with accuracy 0.9667"
    assert one["image_digest"] == DIGEST
    assert one["run_id"] == RUN_ID
    for registry in (trainer_first, registrar_first):
        assert event_types(registry) == ["image-registered", "model-recorded"]
        converged = registry.get_model(MODEL_VERSION)
        assert converged is not None
        assert converged.metrics == METRICS


@pytest.mark.fault
def test_the_trainer_retries_when_the_registrar_writes_between_its_read_and_write(
    registry: Registry, dynamodb: DynamoDBServiceResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    registrar = Registry(TABLE, dynamodb=dynamodb, actor="registrar")
    read = registry._get
    reads: list[Any] = []

    def stale_first_read(pk: str, sk: str) -> Any:
        item = read(pk, sk)
        if not reads:
            registrar.register_image(IMAGE)
        reads.append(item)
        return item

    monkeypatch.setattr(registry, "_get", stale_first_read)
    model, changed = registry.record_model(model_record())
    assert changed
    assert reads[0] is None  # the first attempt wrote against a read the registrar outdated
    assert (model.image_digest, model.metrics, model.status) == (DIGEST, METRICS, CANDIDATE)


def test_recording_the_same_model_again_changes_nothing(registry: Registry) -> None:
    first, changed = registry.record_model(model_record())
    assert changed
    again, changed = registry.record_model(model_record())
    assert not changed
    assert again == first
    assert event_types(registry) == ["model-recorded"]


def test_a_rejected_model_can_pass_later_but_a_live_one_keeps_its_status(
    registry: Registry, dynamodb: DynamoDBServiceResource
) -> None:
    registry.record_model(model_record(status=REJECTED, status_reason="worse", image_tag=None))
    model, _ = registry.record_model(model_record())
    assert model.status == CANDIDATE
    dynamodb.Table(TABLE).update_item(
        Key={"pk": "MODEL", "sk": MODEL_VERSION},
        UpdateExpression="SET #s = :live, status_reason = :why",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":live": "live", ":why": "promoted"},
    )
    model, changed = registry.record_model(
        model_record(status=REJECTED, status_reason="worse than itself?", run_id="other")
    )
    assert not changed
    assert (model.status, model.status_reason, model.run_id) == ("live", "promoted", RUN_ID)


@pytest.mark.fault
def test_a_duplicate_push_changes_nothing_and_another_digest_is_refused(
    registry: Registry, dynamodb: DynamoDBServiceResource
) -> None:
    registry.record_model(model_record())
    registered, changed = registry.register_image(IMAGE)
    assert changed
    before = raw_item(dynamodb, "MODEL", MODEL_VERSION)
    again, changed = registry.register_image(IMAGE)
    assert not changed
    assert again == registered
    tampered = ImageRecord(**{**IMAGE.__dict__, "image_digest": "sha256:" + "66" * 32})
    with pytest.raises(RegistryConflictError, match="tampered"):
        registry.register_image(tampered)
    assert raw_item(dynamodb, "MODEL", MODEL_VERSION) == before
    assert event_types(registry) == ["image-registered", "model-recorded"]


@pytest.mark.fault
def test_pointers_move_only_from_the_revision_read(registry: Registry) -> None:
    assert registry.live() is None
    assert registry.rollback() is None
    registry.record_model(model_record())
    with pytest.raises(RegistryConflictError, match="image not registered"):
        registry.set_live(MODEL_VERSION, expected_revision=0, reason="first")
    registry.register_image(IMAGE)
    pointer = registry.set_live(MODEL_VERSION, expected_revision=0, reason="first")
    assert pointer == registry.live()
    assert (pointer.revision, pointer.image_digest, pointer.updated_by) == (1, DIGEST, "test")
    with pytest.raises(RegistryConflictError, match="revision 1, not 0"):
        registry.set_live(MODEL_VERSION, expected_revision=0, reason="stale")
    assert registry.set_live(MODEL_VERSION, expected_revision=1, reason="again").revision == 2
    with pytest.raises(RegistryNotFoundError):
        registry.set_live("ffffffffffff", expected_revision=2, reason="unknown")


def test_history_is_kept_newest_first(registry: Registry, clock: StepClock) -> None:
    run_ids = [f"20261127T1{minute}0000Z-0000000{minute}" for minute in range(5)]
    for run_id in run_ids:
        start(registry, run_id)
        clock.advance(seconds=1)
    registry.finish_run(run_ids[0], FAILED, "first failed")
    assert [run.run_id for run in registry.list_runs(3)] == run_ids[::-1][:3]
    assert [run.run_id for run in registry.active_runs()] == run_ids[1:]
    events = registry.events(limit=10)
    assert len(events) == 6
    assert [event.time for event in events] == sorted((e.time for e in events), reverse=True)


@pytest.mark.fault
def test_an_event_that_would_overwrite_another_is_refused_with_its_change(
    dynamodb: DynamoDBServiceResource, clock: StepClock
) -> None:
    registry = Registry(TABLE, dynamodb=dynamodb, clock=clock, token=lambda: "00000000")
    start(registry)
    # Same second, same token: the audit event's key is taken, so the whole write is refused.
    with pytest.raises(RegistryConflictError, match="event"):
        registry.finish_run(RUN_ID, FAILED, "boom")
    run = registry.get_run(RUN_ID)
    assert run is not None
    assert run.status == "launching"
    assert event_types(registry) == ["run-started"]


@pytest.mark.fault
def test_a_write_that_keeps_conflicting_surfaces_as_a_conflict(registry: Registry) -> None:
    with Stubber(registry._client) as stubber:
        for _ in range(4):
            stubber.add_client_error(
                "transact_write_items",
                service_error_code="TransactionCanceledException",
                service_message="Transaction cancelled [TransactionConflict, None]",
                modeled_fields={
                    "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}]
                },
            )
        with pytest.raises(RegistryConflictError, match="TransactionConflict"):
            start(registry)
        stubber.assert_no_pending_responses()


# --- event keys ---------------------------------------------------------------------------------


def tokens(*values: str) -> Iterator[str]:
    """Event key suffixes in the order given."""
    yield from values


def test_two_events_in_one_second_keep_their_order(
    dynamodb: DynamoDBServiceResource, clock: StepClock
) -> None:
    """Sort keys sort by their bytes, so the timestamp alone must order a run's events.

    DynamoDB returns a partition's items "in order of UTF-8 bytes" of a string sort key
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.KeyConditionExpressions.html).
    With whole seconds, two events of one second were ordered by their random suffix.
    """
    suffixes = tokens("ffffffff", "00000000")
    registry = Registry(TABLE, dynamodb=dynamodb, clock=clock, token=lambda: next(suffixes))
    start(registry)
    clock.advance(milliseconds=250)  # same second
    registry.finish_run(RUN_ID, FAILED, "boom")
    newest_first = registry.events()
    assert [event.type for event in newest_first] == ["run-finished", "run-started"]
    assert [event.time for event in newest_first] == [
        "2026-11-27T14:05:01.250000Z",
        "2026-11-27T14:05:01.000000Z",
    ]


def test_event_keys_carry_microseconds_from_the_default_clock(
    dynamodb: DynamoDBServiceResource,
) -> None:
    registry = Registry(TABLE, dynamodb=dynamodb)
    before = datetime.now(tz=UTC)
    registry.append_event("run-started", run_id=RUN_ID)
    [event] = registry.events()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[0-9a-f]{8}", event.sk)
    assert before <= event.at <= datetime.now(tz=UTC)


def test_keys_of_whole_seconds_written_before_still_read_and_sort(
    dynamodb: DynamoDBServiceResource, registry: Registry, clock: StepClock
) -> None:
    table = dynamodb.Table(TABLE)
    for sk in ("2026-11-27T14:05:00Z#00000001", "2026-11-27T14:05:02Z#00000002"):
        table.put_item(Item={"pk": "EVENT", "sk": sk, "type": "old", "actor": "test"})
    clock.advance(microseconds=500_000)  # 14:05:01.5, between the two old events
    registry.append_event("new")
    events = registry.events()
    assert [event.type for event in events] == ["old", "new", "old"]
    assert [event.at for event in events] == [
        datetime(2026, 11, 27, 14, 5, 2, tzinfo=UTC),
        datetime(2026, 11, 27, 14, 5, 1, 500_000, tzinfo=UTC),
        datetime(2026, 11, 27, 14, 5, 0, tzinfo=UTC),
    ]
    assert Event(sk="2026-11-27T14:05:00Z#00000001", type="old", actor="x").time == (
        "2026-11-27T14:05:00Z"
    )
