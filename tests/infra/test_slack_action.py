"""The Slack rollback button: a Chatbot custom action, its guardrail and its function's rights.

AWS behaviour relied on:
- A custom action's button is attached to notifications of its `NotificationType` and runs its
  `CommandText` (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-chatbot-customaction-customactionattachment.html,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-chatbot-customaction-customactiondefinition.html);
  "CloudWatch" is the type of CloudWatch's alarm cards (AWS's CreateCustomAction sample,
  https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/chatbot/aws.sdk.kotlin.services.chatbot/-chatbot-client/create-custom-action.html).
- What a channel member can do is the intersection of the channel role and the guardrail
  policies (https://docs.aws.amazon.com/chatbot/latest/adminguide/understanding-permissions.html),
  and without guardrail policies AWS applies AdministratorAccess
  (https://docs.aws.amazon.com/cdk/api/latest/python/aws_cdk.aws_chatbot/CfnSlackChannelConfigurationProps.html).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from cdk_app.constructs.observability.slack_channel import (
    COMMAND_TEXT_LIMIT,
    REQUESTED_BY_VARIABLE,
    rollback_command,
)
from stacks.application import BuiltApp
from tests.support import build_app
from training.contract import REQUESTED_BY

HANDLER = "training.control.slack_rollback.handler"


@pytest.fixture(scope="module")
def slack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    """The app with Slack ids, synthesized (nag packs run during synth)."""
    built: BuiltApp = build_app(
        tmp_path_factory.mktemp("cdk.out-slack"),
        slack_workspace_id="T0123456789",
        slack_channel_id="C0123456789",
    )
    built.app.synth()
    return {
        "api": Template.from_stack(built.api),
        "observability": Template.from_stack(built.observability),
    }


def rollback_function(api: Template) -> tuple[str, dict[str, Any]]:
    [(logical_id, function)] = api.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": HANDLER}}
    ).items()
    return logical_id, function["Properties"]


def exported(api: Template, reference: Any) -> Any:
    """What an observability-stack `Fn::GetStackOutput` of the api stack refers to."""
    name = reference["Fn::GetStackOutput"]["OutputName"]
    return api.to_json()["Outputs"][name]["Value"]


def the_rollback_arn(slack: dict[str, Template]) -> Any:
    function_id, _ = rollback_function(slack["api"])
    return {"Fn::GetAtt": [function_id, "Arn"]}


def test_the_button_invokes_only_the_rollback_function(slack: dict[str, Template]) -> None:
    obs = slack["observability"]
    [action] = [a["Properties"] for a in obs.find_resources("AWS::Chatbot::CustomAction").values()]
    assert action["Attachments"] == [
        {"NotificationType": "CloudWatch", "ButtonText": "Roll back the model"}
    ]
    command = action["Definition"]["CommandText"]
    assert command == (
        f'lambda invoke --function-name iris-ml-dev-rollback --payload {{"{REQUESTED_BY}":'
        f'"${REQUESTED_BY_VARIABLE}"}}'
    )
    [function] = [
        r["Properties"]
        for r in slack["api"].find_resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "training.control.slack_rollback.handler"
    ]
    assert function["FunctionName"] == "iris-ml-dev-rollback"
    # The payload is JSON once Chatbot fills in the variable.
    payload = command.partition(" --payload ")[2]
    assert json.loads(payload) == {REQUESTED_BY: f"${REQUESTED_BY_VARIABLE}"}
    assert "AliasName" not in action  # a button on the alarm, no free-standing chat command


def test_the_guardrail_allows_only_reading_metrics_and_invoking_the_function(
    slack: dict[str, Template],
) -> None:
    obs = slack["observability"]
    [channel] = obs.find_resources("AWS::Chatbot::SlackChannelConfiguration").values()
    guardrails = channel["Properties"]["GuardrailPolicies"]
    [role_id] = [channel["Properties"]["IamRoleArn"]["Fn::GetAtt"][0]]
    role = obs.to_json()["Resources"][role_id]["Properties"]
    # The role holds what the guardrail allows, and nothing inline.
    assert role["ManagedPolicyArns"] == guardrails
    assert "Policies" not in role
    policies = obs.to_json()["Resources"]
    statements = {
        ref["Ref"]: policies[ref["Ref"]]["Properties"]["PolicyDocument"]["Statement"]
        for ref in guardrails
    }
    [read_metrics, invoke] = sorted(statements, key=lambda k: not k.startswith("SlackReadMetrics"))
    assert statements[read_metrics] == [
        {
            "Action": [
                "cloudwatch:DescribeAlarms",
                "cloudwatch:GetMetricData",
                "cloudwatch:GetMetricStatistics",
            ],
            "Effect": "Allow",
            "Resource": "*",
        }
    ]
    [statement] = statements[invoke]
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Effect"] == "Allow"
    assert exported(slack["api"], statement["Resource"]) == the_rollback_arn(slack)


def test_the_rollback_functions_role_is_least_privilege(slack: dict[str, Template]) -> None:
    api = slack["api"]
    _, function = rollback_function(api)
    role_id = function["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in api.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_sid = {s.get("Sid"): s for s in statements}
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    # Only rollback's own calls: no invalidation (the watcher's, after the deployment), no
    # way to start a canary or touch other functions.
    assert not any(a.startswith(("cloudfront:", "sns:", "iam:", "sts:")) for a in actions)
    assert "lambda:InvokeFunction" not in actions
    assert all(s["Effect"] == "Allow" for s in statements)
    deploy = by_sid["DeployAllAtOnce"]["Resource"]
    configs = [r for r in deploy if "deploymentconfig" in json.dumps(r)]
    assert configs == [
        "arn:aws:codedeploy:eu-west-1:123456789012:deploymentconfig:"
        "CodeDeployDefault.LambdaAllAtOnce"
    ]
    assert len(deploy) == 3  # the application, the deployment group, AllAtOnce
    serving_id = api.find_resources(
        "AWS::Lambda::Function", {"Properties": {"PackageType": "Image"}}
    )
    [serving] = serving_id
    assert by_sid["DeployTheRollbackImage"]["Resource"] == {"Fn::GetAtt": [serving, "Arn"]}
    assert by_sid["ReadPublishedVersions"]["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [serving, "Arn"]}, ":*"]]
    }
    # Every other statement names its resources.
    for sid, statement in by_sid.items():
        if sid in {"ReadPublishedVersions", None}:
            continue
        assert "*" not in json.dumps(statement["Resource"]), sid


def test_nothing_of_the_button_exists_without_slack_ids(templates: dict[str, Template]) -> None:
    obs, api = templates["observability"], templates["api"]
    assert obs.find_resources("AWS::Chatbot::CustomAction") == {}
    assert obs.find_resources("AWS::Chatbot::SlackChannelConfiguration") == {}
    assert obs.find_resources("AWS::IAM::ManagedPolicy") == {}
    assert api.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": HANDLER}}) == {}


def test_the_command_fits_chatbots_limit_for_the_longest_prefix() -> None:
    """Chatbot API Reference, CustomActionDefinition (https://docs.aws.amazon.com/chatbot/
    latest/APIReference/API_CustomActionDefinition.html): CommandText is at most 100
    characters; CloudFormation's schema allows 5,000 but creates the action through that API."""
    longest = "a" * 24 + "-staging"  # project_name's longest, the longest environment
    assert len(rollback_command(f"{longest}-rollback")) <= COMMAND_TEXT_LIMIT
    with pytest.raises(ValueError, match="at most 100"):
        rollback_command("f" * 80)
