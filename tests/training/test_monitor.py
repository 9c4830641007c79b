"""The monitor: overruns terminated, Spot reclaims interrupted, vanished runs failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from mypy_boto3_ec2 import EC2Client

from tests.training.fakes import TABLE, StepClock, load_event
from training.control.monitor import MonitorSettings, handler, sweep
from training.registry import Registry

SETTINGS = MonitorSettings(registry_table=TABLE, time_limit_minutes=60)
URI = "s3://data/datasets/iris/v2/data.csv"


def start(registry: Registry, run_id: str, instance_id: str | None = None) -> None:
    registry.start_run(
        run_id, dataset_uri=URI, dataset_name="iris", dataset_version="v2", trigger="s3-event"
    )
    if instance_id is not None:
        registry.record_launch(
            run_id, instance_id=instance_id, instance_type="m7g.large", market="spot"
        )


def launch(ec2: EC2Client) -> tuple[str, datetime]:
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    return instance["InstanceId"], instance["LaunchTime"]


def status(registry: Registry, run_id: str) -> tuple[str, str | None]:
    run = registry.get_run(run_id)
    assert run is not None
    return run.status, run.reason


@pytest.mark.fault
def test_an_instance_past_the_time_limit_is_terminated_and_the_run_timed_out(
    ec2: EC2Client, registry: Registry
) -> None:
    instance, launched = launch(ec2)
    start(registry, "20261127T140000Z-00000001", instance)
    registry.mark_running(
        "20261127T140000Z-00000001", instance_id=instance, instance_type="m7g.large", market="spot"
    )
    terminated: list[list[str]] = []
    ec2.meta.events.register(
        "provide-client-params.ec2.TerminateInstances",
        lambda params, **_: terminated.append(params["InstanceIds"]),
    )

    [action] = sweep(SETTINGS, registry=registry, ec2=ec2, now=launched + timedelta(minutes=61))

    assert terminated == [[instance]]
    assert (action["status"], action["changed"], action["terminated"]) == ("timed_out", True, True)
    run_status, reason = status(registry, "20261127T140000Z-00000001")
    assert run_status == "timed_out"
    assert reason is not None
    assert reason.startswith(f"instance {instance} ran past the 60-minute time limit")
    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")


def test_an_instance_within_its_time_is_left_alone(ec2: EC2Client, registry: Registry) -> None:
    instance, launched = launch(ec2)
    start(registry, "20261127T140000Z-00000001", instance)
    assert sweep(SETTINGS, registry=registry, ec2=ec2, now=launched + timedelta(minutes=59)) == []
    assert status(registry, "20261127T140000Z-00000001") == ("launching", None)
    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("pending", "running")


@pytest.mark.fault
def test_a_spot_reclaimed_instance_ends_the_run_interrupted(
    registry: Registry, clock: StepClock
) -> None:
    start(registry, "20261127T140501Z-00000001", "i-0spot000000000001")
    ec2 = boto3.client("ec2")
    with Stubber(ec2) as stubber:
        stubber.add_response(
            "describe_instances",
            {
                "Reservations": [
                    {
                        "Instances": [
                            {
                                "InstanceId": "i-0spot000000000001",
                                "LaunchTime": clock.now,
                                "State": {"Code": 48, "Name": "terminated"},
                                "StateReason": {
                                    "Code": "Server.SpotInstanceTermination",
                                    "Message": "Server.SpotInstanceTermination: Spot instance "
                                    "termination",
                                },
                            }
                        ]
                    }
                ]
            },
            {"Filters": [{"Name": "instance-id", "Values": ["i-0spot000000000001"]}]},
        )
        sweep(SETTINGS, registry=registry, ec2=ec2, now=clock.now + timedelta(minutes=20))
    assert status(registry, "20261127T140501Z-00000001") == (
        "interrupted",
        "Spot instance reclaimed: Server.SpotInstanceTermination: Spot instance termination",
    )


@pytest.mark.fault
def test_an_instance_that_ended_without_a_result_fails_the_run(
    ec2: EC2Client, registry: Registry
) -> None:
    instance, launched = launch(ec2)
    start(registry, "20261127T140000Z-00000001", instance)
    ec2.terminate_instances(InstanceIds=[instance])
    sweep(SETTINGS, registry=registry, ec2=ec2, now=launched + timedelta(minutes=5))
    assert status(registry, "20261127T140000Z-00000001") == (
        "failed",
        "instance ended without recording a result: "
        "Client.UserInitiatedShutdown: User initiated shutdown",
    )


@pytest.mark.fault
def test_a_vanished_instance_fails_the_run_once_past_the_launch_grace(
    ec2: EC2Client, registry: Registry, clock: StepClock
) -> None:
    start(registry, "20261127T140501Z-00000001", "i-0gone000000000001")
    # Just launched: DescribeInstances may not show it yet.
    assert sweep(SETTINGS, registry=registry, ec2=ec2, now=clock.now + timedelta(minutes=1)) == []
    sweep(SETTINGS, registry=registry, ec2=ec2, now=clock.now + timedelta(minutes=16))
    assert status(registry, "20261127T140501Z-00000001") == (
        "failed",
        "instance ended without recording a result: i-0gone000000000001 no longer exists",
    )


@pytest.mark.fault
def test_a_run_stuck_launching_without_an_instance_fails_after_15_minutes(
    ec2: EC2Client, registry: Registry, clock: StepClock
) -> None:
    start(registry, "20261127T140501Z-00000001")
    assert sweep(SETTINGS, registry=registry, ec2=ec2, now=clock.now + timedelta(minutes=14)) == []
    assert status(registry, "20261127T140501Z-00000001") == ("launching", None)
    sweep(SETTINGS, registry=registry, ec2=ec2, now=clock.now + timedelta(minutes=16))
    assert status(registry, "20261127T140501Z-00000001") == (
        "failed",
        "no instance was launched within 15 minutes",
    )


def test_runs_that_ended_are_never_touched(registry: Registry, clock: StepClock) -> None:
    start(registry, "20261127T140501Z-00000001", "i-0done000000000001")
    registry.finish_run("20261127T140501Z-00000001", "succeeded", "model pushed")
    before = registry.events(limit=100)
    ec2 = boto3.client("ec2")
    with Stubber(ec2) as stubber:  # no active run, so no EC2 call either
        assert sweep(SETTINGS, registry=registry, ec2=ec2, now=clock.now + timedelta(days=2)) == []
        stubber.assert_no_pending_responses()
    assert status(registry, "20261127T140501Z-00000001") == ("succeeded", "model pushed")
    assert registry.events(limit=100) == before


@pytest.mark.fault
def test_a_run_that_ends_during_the_sweep_keeps_its_own_ending(
    registry: Registry, clock: StepClock
) -> None:
    start(registry, "20261127T140501Z-00000001", "i-0late000000000001")
    ec2 = boto3.client("ec2")

    def trainer_finishes_first(**_: object) -> None:
        registry.finish_run("20261127T140501Z-00000001", "succeeded", "model pushed")

    ec2.meta.events.register("provide-client-params.ec2.DescribeInstances", trainer_finishes_first)
    with Stubber(ec2) as stubber:
        stubber.add_response("describe_instances", {"Reservations": []}, {"Filters": ANY})
        [action] = sweep(
            SETTINGS, registry=registry, ec2=ec2, now=clock.now + timedelta(minutes=30)
        )
    assert (action["status"], action["changed"]) == ("succeeded", False)
    assert status(registry, "20261127T140501Z-00000001") == ("succeeded", "model pushed")


@pytest.mark.parametrize("sample", ["scheduled", "ec2_instance_terminated"])
def test_the_handler_sweeps_on_either_trigger(
    ec2: EC2Client, registry: Registry, monkeypatch: pytest.MonkeyPatch, sample: str
) -> None:
    monkeypatch.setenv("REGISTRY_TABLE", TABLE)
    monkeypatch.setenv("TIME_LIMIT_MINUTES", "60")
    # The handler works on the real clock: a run registered two hours ago with no instance.
    old = datetime.now(tz=UTC) - timedelta(hours=2)
    Registry(TABLE, clock=lambda: old).start_run(
        "20261127T120000Z-00000001",
        dataset_uri=URI,
        dataset_name="iris",
        dataset_version="v2",
        trigger="manual",
    )
    answer = handler(load_event(sample), None)
    assert [action["status"] for action in answer["actions"]] == ["failed"]
