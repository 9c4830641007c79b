"""The launcher: events to runs, the exact RunInstances call, fallbacks, duplicates, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from mypy_boto3_ec2 import EC2Client

from tests.training.fakes import TABLE, StepClock, load_event
from training.aws import SettingsError, new_run_id, parse_iso
from training.control.launcher import LauncherSettings, handle, handler
from training.registry import Registry

URI = "s3://data/datasets/iris/v2/data.csv"
SPOT = {
    "MarketType": "spot",
    "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
}


@pytest.fixture
def network(ec2: EC2Client) -> dict[str, Any]:
    """A launch template and two subnets on moto, as the pipeline stack provides them."""
    template = ec2.create_launch_template(
        LaunchTemplateName="trainer", LaunchTemplateData={"ImageId": "ami-12c6146b"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"]
        for i in range(2)
    ]
    return {"template": template, "subnets": subnets}


# Ids for tests whose EC2 is a Stubber: moto's EC2 is slow to set up.
STUBBED_NETWORK = {
    "template": "lt-0123456789abcdef0",
    "on_demand_template": "lt-0fedcba9876543210",
    "subnets": ["subnet-0aaa", "subnet-0bbb"],
}


def make_settings(network: dict[str, Any], *, fallback: bool = True) -> LauncherSettings:
    return LauncherSettings(
        registry_table=TABLE,
        launch_template_id=network["template"],
        on_demand_launch_template_id=network.get("on_demand_template") if fallback else None,
        subnet_ids=tuple(network["subnets"]),
        instance_types=("m7g.large", "c7g.large"),
        on_demand_fallback=fallback,
        time_limit_minutes=60,
        dataset_bucket="data",
    )


def expected_run_id(event: dict[str, Any]) -> str:
    obj = event["detail"]["object"]
    key = f"s3://data/{obj['key']}?versionId={obj['version-id']}"
    return new_run_id(parse_iso(event["time"]), key)


def capture_run_instances(ec2: EC2Client) -> list[dict[str, Any]]:
    """Every RunInstances call's parameters, exactly as the code passed them."""
    calls: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    ec2.meta.events.register("provide-client-params.ec2.RunInstances", capture)
    return calls


def test_an_upload_event_records_the_run_and_launches_a_spot_instance(
    network: dict[str, Any], ec2: EC2Client, registry: Registry, clock: StepClock
) -> None:
    event = load_event("s3_object_created")
    calls = capture_run_instances(ec2)

    answer = handle(event, make_settings(network), registry=registry, ec2=ec2, clock=clock)

    run_id = expected_run_id(event)
    assert run_id.startswith("20261127T140501Z-")
    assert answer == {"run_id": run_id, "instance_id": answer["instance_id"], "market": "spot"}
    tags = [
        {"Key": "RunId", "Value": run_id},
        {"Key": "DatasetUri", "Value": URI},
        {"Key": "Name", "Value": f"trainer-{run_id}"},
    ]
    assert calls == [
        {
            "LaunchTemplate": {"LaunchTemplateId": network["template"], "Version": "$Latest"},
            "MinCount": 1,
            "MaxCount": 1,
            "SubnetId": network["subnets"][0],
            "InstanceType": "m7g.large",
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
            "InstanceMarketOptions": SPOT,
        }
    ]
    run = registry.get_run(run_id)
    assert run is not None
    assert (run.status, run.trigger, run.dataset_uri) == ("launching", "s3-event", URI)
    assert (run.instance_id, run.instance_type, run.market) == (
        answer["instance_id"],
        "m7g.large",
        "spot",
    )
    [instance] = ec2.describe_instances()["Reservations"][0]["Instances"]
    assert instance["InstanceLifecycle"] == "spot"
    assert {"Key": "RunId", "Value": run_id} in instance["Tags"]
    started = [e for e in registry.events() if e.type == "run-started"]
    assert started[0].reason == f"PutObject of {URI}"


@pytest.mark.fault
def test_a_duplicate_delivery_launches_once(
    network: dict[str, Any], ec2: EC2Client, registry: Registry, clock: StepClock
) -> None:
    event = load_event("s3_object_created")
    first = handle(event, make_settings(network), registry=registry, ec2=ec2, clock=clock)
    clock.advance(minutes=2)
    second = handle(event, make_settings(network), registry=registry, ec2=ec2, clock=clock)
    assert second == {
        "run_id": first["run_id"],
        "status": "duplicate",
        "run_status": "launching",
        "instance_id": first["instance_id"],
    }
    reservations = ec2.describe_instances()["Reservations"]
    assert sum(len(r["Instances"]) for r in reservations) == 1
    assert len(registry.list_runs()) == 1


def test_a_direct_invoke_records_who_asked_and_why(
    network: dict[str, Any], ec2: EC2Client, registry: Registry, clock: StepClock
) -> None:
    event = {"dataset_uri": URI, "requested_by": "arn:aws:iam::1:user/ops", "reason": "new data"}
    answer = handle(event, make_settings(network), registry=registry, ec2=ec2, clock=clock)
    run = registry.get_run(answer["run_id"])
    assert run is not None
    assert (run.trigger, run.requested_by) == ("manual", "arn:aws:iam::1:user/ops")
    assert answer["run_id"].startswith("20261127T140501Z-")
    assert [e.reason for e in registry.events() if e.type == "run-started"] == ["new data"]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"dataset_uri": "s3://data/datasets/iris/data.csv"}, "is not a dataset version"),
        ({"dataset_uri": "s3://other/datasets/iris/v2/data.csv"}, "not in the data bucket data"),
        ({"dataset_uri": "https://example.com/data.csv"}, "is not an s3:// URI"),
        ({"dataset_uri": "s3://data/datasets/iris/v 2/data.csv"}, "is not a dataset version"),
        ({"hello": "world"}, "expected an S3 Object Created event"),
        (
            load_event("s3_object_created", object={"key": "datasets/iris/v2/extra/data.csv"}),
            "is not a dataset version",
        ),
        (
            load_event("s3_object_created", bucket={"name": "elsewhere"}),
            "not in the data bucket data",
        ),
    ],
)
@pytest.mark.fault
def test_a_request_outside_the_layout_is_refused_and_nothing_recorded(
    registry: Registry, clock: StepClock, event: dict[str, Any], reason: str
) -> None:
    ec2 = boto3.client("ec2")
    with Stubber(ec2):  # any EC2 call would fail: none is expected
        answer = handle(
            event, make_settings(STUBBED_NETWORK), registry=registry, ec2=ec2, clock=clock
        )
    assert answer["status"] == "refused"
    assert reason in answer["reason"]
    assert registry.list_runs() == []


def _stub_attempt(
    stubber: Stubber,
    network: dict[str, Any],
    subnet: int,
    instance_type: str,
    *,
    spot: bool = True,
    error: str | None = None,
) -> None:
    """Expect one RunInstances call with these choices; answer with `error` or an instance."""
    template = network["template"] if spot else network["on_demand_template"]
    expected: dict[str, Any] = {
        "LaunchTemplate": {"LaunchTemplateId": template, "Version": "$Latest"},
        "MinCount": 1,
        "MaxCount": 1,
        "SubnetId": network["subnets"][subnet],
        "InstanceType": instance_type,
        "TagSpecifications": ANY,
    }
    if spot:
        expected["InstanceMarketOptions"] = SPOT
    if error:
        stubber.add_client_error("run_instances", error, f"{error} here", 500, None, expected)
    else:
        stubber.add_response(
            "run_instances", {"Instances": [{"InstanceId": "i-0fallback000000001"}]}, expected
        )


@pytest.mark.fault
def test_capacity_errors_fall_back_across_types_then_subnets_then_on_demand(
    registry: Registry, clock: StepClock
) -> None:
    network = STUBBED_NETWORK
    ec2 = boto3.client("ec2")
    with Stubber(ec2) as stubber:
        _stub_attempt(stubber, network, 0, "m7g.large", error="InsufficientInstanceCapacity")
        _stub_attempt(stubber, network, 0, "c7g.large", error="SpotMaxPriceTooLow")
        _stub_attempt(stubber, network, 1, "m7g.large", error="MaxSpotInstanceCountExceeded")
        _stub_attempt(stubber, network, 1, "c7g.large", error="Unsupported")
        _stub_attempt(stubber, network, 0, "m7g.large", spot=False)
        answer = handle(
            load_event("s3_object_created"),
            make_settings(network),
            registry=registry,
            ec2=ec2,
            clock=clock,
        )
        stubber.assert_no_pending_responses()
    assert answer["market"] == "on-demand"
    run = registry.get_run(answer["run_id"])
    assert run is not None
    assert (run.instance_id, run.instance_type, run.market) == (
        "i-0fallback000000001",
        "m7g.large",
        "on-demand",
    )


@pytest.mark.fault
def test_no_capacity_anywhere_fails_the_run_listing_every_attempt(
    registry: Registry, clock: StepClock
) -> None:
    network = STUBBED_NETWORK
    ec2 = boto3.client("ec2")
    with Stubber(ec2) as stubber:
        for subnet in (0, 1):
            for instance_type in ("m7g.large", "c7g.large"):
                _stub_attempt(
                    stubber, network, subnet, instance_type, error="InsufficientInstanceCapacity"
                )
        answer = handle(
            load_event("s3_object_created"),
            make_settings(network, fallback=False),
            registry=registry,
            ec2=ec2,
            clock=clock,
        )
        stubber.assert_no_pending_responses()
    assert answer["status"] == "failed"
    assert answer["reason"].startswith("no capacity for any choice (on-demand fallback is off)")
    assert answer["reason"].count("spot ") == 4
    assert f"spot c7g.large in {network['subnets'][1]}" in answer["reason"]
    run = registry.get_run(answer["run_id"])
    assert run is not None
    assert (run.status, run.reason) == ("failed", answer["reason"])


@pytest.mark.fault
def test_another_error_stops_at_once_and_fails_the_run(
    registry: Registry, clock: StepClock
) -> None:
    network = STUBBED_NETWORK
    ec2 = boto3.client("ec2")
    with Stubber(ec2) as stubber:
        _stub_attempt(stubber, network, 0, "m7g.large", error="InsufficientInstanceCapacity")
        _stub_attempt(stubber, network, 0, "c7g.large", error="InvalidParameterValue")
        answer = handle(
            load_event("s3_object_created"),
            make_settings(network),
            registry=registry,
            ec2=ec2,
            clock=clock,
        )
        stubber.assert_no_pending_responses()
    assert answer["status"] == "failed"
    assert answer["reason"].startswith(
        "EC2 refused the launch (InvalidParameterValue); attempts: spot m7g.large"
    )
    assert "InvalidParameterValue: InvalidParameterValue here" in answer["reason"]


def test_the_handler_reads_its_settings_from_the_environment(
    network: dict[str, Any],
    ec2: EC2Client,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "REGISTRY_TABLE": TABLE,
        "LAUNCH_TEMPLATE_ID": network["template"],
        "SUBNET_IDS": ",".join(network["subnets"]),
        "INSTANCE_TYPES": "m7g.large,c7g.large",
        "ON_DEMAND_FALLBACK": "false",
        "TIME_LIMIT_MINUTES": "60",
        "DATASET_BUCKET": "data",
    }.items():
        monkeypatch.setenv(name, value)
    answer = handler({"dataset_uri": URI, "requested_by": "me"}, None)
    assert answer["market"] == "spot"
    assert registry.get_run(answer["run_id"]) is not None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SUBNET_IDS", "subnet-1,,subnet-2", "SUBNET_IDS has an empty item"),
        ("ON_DEMAND_FALLBACK", "yes", "ON_DEMAND_FALLBACK must be true or false"),
        ("TIME_LIMIT_MINUTES", "0", "TIME_LIMIT_MINUTES must be at least 1"),
        ("LAUNCH_TEMPLATE_ID", "", "LAUNCH_TEMPLATE_ID is not set"),
        ("ON_DEMAND_LAUNCH_TEMPLATE_ID", "", "ON_DEMAND_LAUNCH_TEMPLATE_ID is not set"),
    ],
)
def test_a_bad_setting_names_its_variable(name: str, value: str, message: str) -> None:
    environ = {
        "REGISTRY_TABLE": TABLE,
        "LAUNCH_TEMPLATE_ID": "lt-1",
        "SUBNET_IDS": "subnet-1",
        "INSTANCE_TYPES": "m7g.large",
        "ON_DEMAND_FALLBACK": "true",
        "ON_DEMAND_LAUNCH_TEMPLATE_ID": "lt-2",
        "TIME_LIMIT_MINUTES": "60",
        "DATASET_BUCKET": "data",
        name: value,
    }
    with pytest.raises(SettingsError, match=message):
        LauncherSettings.from_env(environ)


def test_the_schedule_trains_on_the_newest_version(
    network: dict[str, Any], ec2: EC2Client, registry: Registry, clock: StepClock
) -> None:
    s3 = boto3.client("s3")
    # Keys and the hour each was written: v2 is the newest data.csv, notes.txt is newer still.
    written = {
        "datasets/iris/v1/data.csv": 1,
        "datasets/iris/v3/data.csv": 2,
        "datasets/iris/v2/data.csv": 3,
        "datasets/iris/notes.txt": 4,
    }
    contents = [
        {"Key": key, "LastModified": datetime(2026, 11, 27, hour, tzinfo=UTC), "Size": 1}
        for key, hour in written.items()
    ]
    calls = capture_run_instances(ec2)
    with Stubber(s3) as stubber:
        stubber.add_response(
            "list_objects_v2",
            {"Contents": contents, "IsTruncated": False},
            {"Bucket": "data", "Prefix": "datasets/iris/"},
        )
        answer = handle(
            {"latest_of": "iris"},
            make_settings(network),
            registry=registry,
            ec2=ec2,
            s3=s3,
            clock=clock,
        )
    run = registry.get_run(answer["run_id"])
    assert run is not None
    assert run.dataset_uri == "s3://data/datasets/iris/v2/data.csv"  # newest data.csv, not v3
    assert len(calls) == 1


def test_the_schedule_without_any_version_is_refused(
    network: dict[str, Any], ec2: EC2Client, registry: Registry, clock: StepClock
) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    answer = handle(
        {"latest_of": "iris"},
        make_settings(network),
        registry=registry,
        ec2=ec2,
        s3=s3,
        clock=clock,
    )
    assert answer == {
        "status": "refused",
        "reason": "no version of dataset 'iris' in s3://data/datasets/",
    }
    assert registry.list_runs() == []
