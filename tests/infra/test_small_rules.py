"""Small AWS rules the templates follow: names, retention, AMI pins and clean-up, warnings."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stacks.application import BuiltApp
from tests.support import ROOT, build_app

# The trainer AMI's Python (cdk_app/constructs/training/trainer_image.py) and this venv's, on both
# architectures: a dependency behind a marker for any of them belongs in the trainer's pins.
MARKER_ENVIRONMENTS = [
    {"python_version": version, "platform_machine": machine, "sys_platform": "linux", "extra": ""}
    for version in ("3.11", "3.12")
    for machine in ("x86_64", "aarch64")
]


@pytest.fixture(scope="module")
def other_env(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    """A second environment in the same account, with an alarm e-mail address."""
    return build_app(
        tmp_path_factory.mktemp("staging"),
        checks=False,
        environment="staging",
        alarm_email="oncall@example.com",
    )


def api_dimensions(template: Template) -> list[str]:
    """The names of every dimension of an AWS/ApiGateway metric in alarms and dashboards."""
    named: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("Namespace") == "AWS/ApiGateway":
                named.extend(d["Name"] for d in node.get("Dimensions", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template.to_json())
    # Dashboard bodies are JSON inside a string: ["AWS/ApiGateway", "5xx", "ApiId", ...].
    text = json.dumps(template.to_json())
    named += re.findall(r'\\"AWS/ApiGateway\\",\\"\w+\\",\\"(\w+)\\"', text)
    return named


def http_api_name(template: Template) -> str:
    [api] = template.find_resources("AWS::ApiGatewayV2::Api").values()
    name: str = api["Properties"]["Name"]
    return name


# --- 1. the API's name and the key of its metrics -------------------------------------------


def test_the_api_is_named_after_the_stack_prefix_and_its_metrics_keyed_by_its_id(
    templates: dict[str, Template], other_env: BuiltApp
) -> None:
    """HTTP API metrics carry the dimensions ApiId and Stage, not the API's name
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html), so
    two environments in one account never share metrics, alarms or canary guards."""
    assert http_api_name(templates["api"]) == "iris-ml-dev"
    assert http_api_name(Template.from_stack(other_env.api)) == "iris-ml-staging"
    # The canary's guards (API stack) and the alarms and dashboard (observability stack).
    for template in (templates["api"], templates["observability"]):
        found = api_dimensions(template)
        assert found, "no API Gateway metric found"
        assert set(found) == {"ApiId", "Stage"}
    [api_id] = templates["api"].find_resources("AWS::ApiGatewayV2::Api")
    text = json.dumps(templates["api"].to_json())
    assert f'{{"Name": "ApiId", "Value": {{"Ref": "{api_id}"}}}}' in text


# --- 2. nothing account-wide -----------------------------------------------------------------


def test_the_app_changes_no_account_wide_api_gateway_setting(
    templates: dict[str, Template],
) -> None:
    """A REST API's execution logs need the account's one API Gateway CloudWatch role
    (AWS::ApiGateway::Account: "one per region per account"); HTTP API access logs do not,
    so the app no longer writes, or retains, that account-wide setting."""
    for template in templates.values():
        assert not template.find_resources("AWS::ApiGateway::Account")
        assert not template.find_resources("AWS::ApiGateway::RestApi")


# --- 3. the trainer AMI: its pins and its clean-up ------------------------------------------


def pins(path: Path) -> dict[str, str]:
    """Pinned versions of a requirements-style file, by canonical name."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            found[canonicalize_name(name)] = version
    return found


def trainer_closure() -> set[str]:
    """training/requirements.txt and everything they need, from the installed metadata."""
    todo = list(pins(ROOT / "training" / "requirements.txt"))
    seen: set[str] = set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate(env) for env in MARKER_ENVIRONMENTS):
                todo.append(requirement.name)
    return seen


def test_trainer_constraints_are_its_subset_of_the_project_pins() -> None:
    """Kept true by `make lock`; a stale file fails here with what it should hold."""
    everything = pins(ROOT / "constraints.txt")
    expected = {name: everything[name] for name in trainer_closure()}
    assert pins(ROOT / "training" / "constraints.txt") == expected


def test_trainer_ami_embeds_only_the_trainers_pins(templates: dict[str, Template]) -> None:
    """A dev-tool bump in constraints.txt must not change the AMI component (a rebuild)."""
    [component] = templates["pipeline"].find_resources("AWS::ImageBuilder::Component").values()
    document = json.loads(component["Properties"]["Data"])
    [build] = [phase for phase in document["phases"] if phase["name"] == "build"]
    [write] = [step for step in build["steps"] if step["name"] == "WriteRequirements"]
    files = {entry["path"]: entry["content"] for entry in write["inputs"]}
    embedded = {
        canonicalize_name(line.partition("==")[0])
        for line in files["/opt/trainer/constraints.txt"].splitlines()
    }
    assert embedded == trainer_closure()
    assert {"ruff", "pytest", "aws-cdk-lib", "mypy"}.isdisjoint(embedded)


def test_ami_lifecycle_policy_cleans_up_every_recipe_version(
    templates: dict[str, Template],
) -> None:
    """Each content change is a new recipe version, so the policy must select them all.

    Lifecycle policies take a wildcard recipe version, `x.x.x` matching every version
    (https://docs.aws.amazon.com/imagebuilder/latest/userguide/ibhow-semantic-versioning.html,
    "Wildcard versioning in lifecycle policies"; the API's pattern
    `^(?:[0-9]+|x)\\.(?:[0-9]+|x)\\.(?:[0-9]+|x)$`,
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyResourceSelectionRecipe.html).
    """
    pipeline = templates["pipeline"]
    [policy] = pipeline.find_resources("AWS::ImageBuilder::LifecyclePolicy").values()
    [recipe] = pipeline.find_resources("AWS::ImageBuilder::ImageRecipe").values()
    selection: dict[str, Any] = policy["Properties"]["ResourceSelection"]
    assert selection == {
        "Recipes": [{"Name": recipe["Properties"]["Name"], "SemanticVersion": "x.x.x"}]
    }
    [detail] = policy["Properties"]["PolicyDetails"]
    assert detail["Filter"] == {"Type": "COUNT", "Value": 3}


# --- 7. alarms that reach nobody ------------------------------------------------------------


UNHEARD = Match.string_like_regexp("Alarms reach nobody.*alarm_email.*slack_workspace_id")


def test_without_email_or_slack_synth_warns_that_alarms_reach_nobody(built: BuiltApp) -> None:
    """The defaults subscribe nobody to the topics; say so on the alarm topic construct."""
    Annotations.from_stack(built.observability).has_warning(
        f"/{built.observability.stack_name}/Alarms", UNHEARD
    )


def test_with_an_alarm_email_there_is_no_such_warning(other_env: BuiltApp) -> None:
    assert not Annotations.from_stack(other_env.observability).find_warning("*", UNHEARD)
