"""Rules of real AWS for the launcher's first launch in a fresh account, on the template side.

Neither moto nor a synthesized template enforces these; each test names the AWS document whose
rule it encodes (the launcher's side, what it does with the errors, is in
tests/training/test_launcher_fallback.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from tests.infra.test_pipeline_stack import only, statements
from tests.infra.test_security import render
from tests.support import build_app

SPOT_ROLE = (
    "arn:<AWS::Partition>:iam::<AWS::AccountId>:"
    "role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"
)
SPOT_REQUESTS = "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:spot-instances-request/*"
LAUNCHER_HANDLER = "training.control.launcher.handler"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def granted(template: Template, action: str) -> list[dict[str, Any]]:
    """The launcher role's Allow statements that name `action`."""
    return [
        s
        for s in statements(template, "TrainingLauncherRole")
        if s["Effect"] == "Allow" and action in _listed(s["Action"])
    ]


def resources(template: Template, action: str) -> set[str]:
    """Every resource, rendered, that the launcher role may use `action` on."""
    return {render(r) for s in granted(template, action) for r in _listed(s["Resource"])}


def launcher(template: Template) -> dict[str, Any]:
    """The launcher function's properties."""
    fn = only(
        template,
        "AWS::Lambda::Function",
        {"Handler": Match.exact(LAUNCHER_HANDLER)},
    )
    props: dict[str, Any] = fn["Properties"]
    return props


def test_the_launcher_may_create_the_spot_service_linked_role_and_no_other(
    templates: dict[str, Template],
) -> None:
    """The first Spot request in an account creates AWSServiceRoleForEC2Spot with the caller's
    rights; without iam:CreateServiceLinkedRole it fails with
    AuthFailure.ServiceLinkedRoleCreationNotPermitted.

    EC2 User Guide, "Service-linked role for Spot Instances":
    https://docs.amazonaws.cn/en_us/AWSEC2/latest/UserGuide/spot-fleet-prerequisites.md
    (#service-linked-roles-spot-instances) and
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
    """
    found = granted(templates["pipeline"], "iam:CreateServiceLinkedRole")
    assert len(found) == 1, f"the launcher role has {len(found)} CreateServiceLinkedRole grants"
    [statement] = found
    assert _listed(statement["Action"]) == ["iam:CreateServiceLinkedRole"]
    assert [render(r) for r in _listed(statement["Resource"])] == [SPOT_ROLE]
    assert statement["Condition"] == {"StringLike": {"iam:AWSServiceName": "spot.amazonaws.com"}}


def test_spot_launches_may_create_their_spot_instance_request(
    templates: dict[str, Template],
) -> None:
    """A Spot RunInstances creates a Spot Instance request, a resource type RunInstances is
    authorized against (arn:...:spot-instances-request/*). CreateTags must cover it only when
    the request is tagged on create; neither the launch templates nor the launcher do that
    (the launcher tags instance and volume, tests/training/test_launcher.py), so it is not.

    EC2 User Guide, "Tag Spot Instance requests" (the RunInstances policy names
    spot-instances-request/*): https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-requests.html;
    launch templates may tag spot-instances-request:
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateTagSpecificationRequest.html
    """
    pipeline = templates["pipeline"]
    assert SPOT_REQUESTS in resources(pipeline, "ec2:RunInstances")
    tagged = {
        spec["ResourceType"]
        for template in pipeline.find_resources("AWS::EC2::LaunchTemplate").values()
        for spec in template["Properties"]["LaunchTemplateData"].get("TagSpecifications", [])
    }
    may_tag = any("spot-instances-request" in r for r in resources(pipeline, "ec2:CreateTags"))
    assert may_tag == ("spot-instances-request" in tagged)


def test_the_launcher_reserves_no_concurrency_unless_configured(
    templates: dict[str, Template], tmp_path: Path
) -> None:
    """New accounts have a reduced concurrency quota (10), and Lambda keeps 100 unreserved, so
    any reservation fails the deploy there; `launcher_reserved_concurrency` (default 0) sets it.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html ("reserve up to
    the Unreserved account concurrency value ... minus 100") and
    https://docs.aws.amazon.com/lambda/latest/dg/limits.html ("New AWS accounts have reduced
    concurrency and memory quotas").
    """
    assert "ReservedConcurrentExecutions" not in launcher(templates["pipeline"])
    built = build_app(tmp_path, checks=False, launcher_reserved_concurrency=2)
    assert launcher(Template.from_stack(built.pipeline))["ReservedConcurrentExecutions"] == 2
