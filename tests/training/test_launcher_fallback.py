"""The launcher's fallback table: which RunInstances refusals move on, to what, and which end.

Each test names the AWS document behind its row of training.control.launcher.NEXT_STEP. EC2 is a
botocore Stubber, so each test also pins the exact sequence of attempts.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tests.training.fakes import StepClock, load_event
from tests.training.test_launcher import SPOT, STUBBED_NETWORK, make_settings
from training.control.launcher import handle
from training.registry import Registry

NO_SLR = "AuthFailure.ServiceLinkedRoleCreationNotPermitted"
SLR_MESSAGE = (
    "The provided credentials do not have permission to create the service-linked role for "
    "EC2 Spot Instances."
)
INSTANCE = "i-0fallback000000001"

pytestmark = pytest.mark.fault


def expect(
    stubber: Stubber,
    subnet: int,
    instance_type: str,
    *,
    spot: bool = True,
    error: tuple[str, str, int] | None = None,
) -> None:
    """Expect one RunInstances call; answer (code, message, HTTP status) or an instance."""
    network = STUBBED_NETWORK
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
        code, message, status = error
        stubber.add_client_error("run_instances", code, message, status, None, expected)
    else:
        stubber.add_response("run_instances", {"Instances": [{"InstanceId": INSTANCE}]}, expected)


def run(
    stubbed: list[tuple[Any, ...]],
    registry: Registry,
    clock: StepClock,
    *,
    fallback: bool = True,
) -> dict[str, Any]:
    """Handle one upload event against exactly these stubbed attempts, in this order."""
    ec2 = boto3.client("ec2")
    with Stubber(ec2) as stubber:
        for args, kwargs in stubbed:
            expect(stubber, *args, **kwargs)
        answer = handle(
            load_event("s3_object_created"),
            make_settings(STUBBED_NETWORK, fallback=fallback),
            registry=registry,
            ec2=ec2,
            clock=clock,
        )
        stubber.assert_no_pending_responses()
    return answer


def launched_log(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """The fields of the launcher's "instance launched" record."""
    [record] = [r for r in caplog.records if r.getMessage() == "instance launched"]
    fields: dict[str, Any] = record.fields  # type: ignore[attr-defined]
    return fields


def test_a_missing_spot_service_linked_role_goes_on_demand_at_once(
    registry: Registry, clock: StepClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Without AWSServiceRoleForEC2Spot, and without the right to create it, every Spot
    request fails alike with AuthFailure.ServiceLinkedRoleCreationNotPermitted; on-demand does
    not use that role. So: no other Spot type or subnet, straight to on-demand.

    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
    ("If you use the AWS CLI or an API to request a Spot Instance, you must first ensure that
    this role exists"); https://docs.amazonaws.cn/en_us/AWSEC2/latest/UserGuide/spot-fleet-prerequisites.md
    """
    with caplog.at_level(logging.INFO, logger="training.control.launcher"):
        answer = run(
            [
                ((0, "m7g.large"), {"error": (NO_SLR, SLR_MESSAGE, 403)}),
                ((0, "m7g.large"), {"spot": False}),
            ],
            registry,
            clock,
        )
    assert answer["market"] == "on-demand"
    run_record = registry.get_run(answer["run_id"])
    assert run_record is not None
    assert (run_record.instance_id, run_record.market) == (INSTANCE, "on-demand")
    assert launched_log(caplog)["failed_attempts"] == [
        f"spot m7g.large in subnet-0aaa: {NO_SLR}: {SLR_MESSAGE}"
    ]


def test_an_unauthorized_spot_attempt_falls_back_to_on_demand(
    registry: Registry, clock: StepClock, caplog: pytest.LogCaptureFixture
) -> None:
    """UnauthorizedOperation: "You are not authorized to perform this operation" - the same for
    every type and subnet. A Spot launch is authorized against more resources than an
    on-demand one (spot-instances-request), so on-demand is tried, and the real error kept.

    UnauthorizedOperation in the EC2 API error reference:
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
    spot-instances-request in a Spot RunInstances policy ("Tag Spot Instance requests"):
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-requests.html
    """
    denied = ("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
    with caplog.at_level(logging.INFO, logger="training.control.launcher"):
        answer = run(
            [((0, "m7g.large"), {"error": denied}), ((0, "m7g.large"), {"spot": False})],
            registry,
            clock,
        )
    assert answer == {"run_id": answer["run_id"], "instance_id": INSTANCE, "market": "on-demand"}
    [attempt] = launched_log(caplog)["failed_attempts"]
    assert attempt.startswith("spot m7g.large in subnet-0aaa: UnauthorizedOperation: ")


def test_without_fallback_a_ruled_out_spot_market_fails_naming_the_code(
    registry: Registry, clock: StepClock
) -> None:
    """With trainer_on_demand_fallback off, a Spot market ruled out by the missing service-linked
    role ends the run after one attempt, and the recorded reason names the error code.

    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
    """
    answer = run(
        [((0, "m7g.large"), {"error": (NO_SLR, SLR_MESSAGE, 403)})],
        registry,
        clock,
        fallback=False,
    )
    assert answer["status"] == "failed"
    assert answer["reason"] == (
        f"spot ruled out by {NO_SLR} (on-demand fallback is off); "
        f"attempts: spot m7g.large in subnet-0aaa: {NO_SLR}: {SLR_MESSAGE}"
    )
    run_record = registry.get_run(answer["run_id"])
    assert run_record is not None
    assert (run_record.status, run_record.reason) == ("failed", answer["reason"])


def test_unauthorized_in_both_markets_fails_naming_the_code_of_each(
    registry: Registry, clock: StepClock
) -> None:
    """Refused on-demand too, no market is left: the run fails, its reason naming each code.

    UnauthorizedOperation in the EC2 API error reference:
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
    """
    denied = ("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
    answer = run(
        [
            ((0, "m7g.large"), {"error": denied}),
            ((0, "m7g.large"), {"spot": False, "error": denied}),
        ],
        registry,
        clock,
    )
    assert answer["status"] == "failed"
    assert answer["reason"].startswith(
        "spot ruled out by UnauthorizedOperation; on-demand ruled out by UnauthorizedOperation; "
        "attempts: spot m7g.large in subnet-0aaa: UnauthorizedOperation: "
    )
    assert "on-demand m7g.large in subnet-0aaa: UnauthorizedOperation: " in answer["reason"]


def test_a_subnet_out_of_addresses_moves_to_the_next_subnet(
    registry: Registry, clock: StepClock
) -> None:
    """InsufficientFreeAddressesInSubnet: "The specified subnet does not contain enough free
    private IP addresses" - no other type fits in that subnet, so the next subnet is tried.

    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
    (InsufficientFreeAddressesInSubnet)
    """
    full = ("InsufficientFreeAddressesInSubnet", "No free addresses in subnet-0aaa.", 400)
    answer = run(
        [((0, "m7g.large"), {"error": full}), ((1, "m7g.large"), {})],
        registry,
        clock,
    )
    assert answer["market"] == "spot"
