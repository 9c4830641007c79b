"""The alert enricher's template: its event rules, stream filter, least privilege, links."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk.assertions import Match, Template

from tests.support import ROOT
from training.contract import ALARMS_SECTION, NEWS_EVENTS

HANDLER = "training.control.notify.handler.handler"


def enricher(obs: Template) -> tuple[str, dict[str, Any]]:
    [(logical_id, function)] = obs.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": HANDLER}}
    ).items()
    return logical_id, function["Properties"]


def test_alarm_state_changes_of_every_notifying_alarm_reach_the_enricher(
    templates: dict[str, Template],
) -> None:
    obs = templates["observability"]
    function_id, _ = enricher(obs)
    [rule] = obs.find_resources(
        "AWS::Events::Rule",
        {"Properties": {"EventPattern": {"source": ["aws.cloudwatch"]}}},
    ).values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    names = pattern["detail"]["alarmName"]
    named = {ref["Ref"] for ref in names if "Ref" in ref}
    # Every alarm the stack defines (all of them notify) except the enricher's own.
    alarms = {
        logical_id
        for logical_id in obs.find_resources("AWS::CloudWatch::Alarm")
        if not logical_id.startswith("NotifyNotifyDeadLetters")
    }
    assert named == alarms
    # And CloudFront's, forwarded from us-east-1 (see test_observability_stack).
    [remote] = [ref["Fn::GetStackOutput"] for ref in names if "Ref" not in ref]
    assert (remote["StackName"], remote["Region"]) == ("iris-ml-dev-cdn-monitoring", "us-east-1")
    assert remote["OutputName"].startswith("PublishOutputRefCdnCdn5xxRate")
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert "DeadLetterConfig" in target


def test_the_plain_alarm_actions_stay(templates: dict[str, Template]) -> None:
    obs = templates["observability"]
    [topic_id] = obs.find_resources("AWS::SNS::Topic")
    for alarm in obs.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]


def test_deployment_ends_of_the_promotion_application_reach_the_enricher(
    templates: dict[str, Template],
) -> None:
    obs = templates["observability"]
    obs.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.codedeploy"],
                "detail-type": ["CodeDeploy Deployment State-change Notification"],
                "detail": {
                    "application": [Match.object_like({"Fn::GetStackOutput": Match.any_value()})],
                    "state": ["SUCCESS", "FAILURE", "STOP"],
                },
            },
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [enricher(obs)[0], "Arn"]}})],
        },
    )


def test_the_stream_feeds_only_news_events(templates: dict[str, Template]) -> None:
    obs = templates["observability"]
    function_id, _ = enricher(obs)
    [mapping] = [
        m["Properties"]
        for m in obs.find_resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    [criteria] = mapping["FilterCriteria"]["Filters"]
    assert json.loads(criteria["Pattern"]) == {
        "eventName": ["INSERT"],
        "dynamodb": {"NewImage": {"pk": {"S": ["EVENT"]}, "type": {"S": list(NEWS_EVENTS)}}},
    }
    assert "OnFailure" in mapping["DestinationConfig"]


def test_the_enricher_may_publish_and_read_nothing_else(templates: dict[str, Template]) -> None:
    obs = templates["observability"]
    _, function = enricher(obs)
    role_id = function["Role"]["Fn::GetAtt"][0]
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in obs.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    actions = set()
    for statement in policy:
        found = statement["Action"]
        actions |= set(found if isinstance(found, list) else [found])
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "dynamodb:GetItem",
        "codedeploy:GetDeployment",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }
    # Nothing that could read the origin key or write the registry.
    assert not {a for a in actions if a.startswith(("secretsmanager:", "ssm:"))}
    assert not {a for a in actions if a.startswith("dynamodb:") and "Put" in a}


def test_every_alarm_links_a_runbook_anchor_that_exists(templates: dict[str, Template]) -> None:
    _, function = enricher(templates["observability"])
    variables = function["Environment"]["Variables"]
    rendered = json.dumps(variables["ALARM_RUNBOOK"])
    anchors = set(re.findall(r'\\"(\w+)\\"\]', rendered)) | {ALARMS_SECTION}
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    assert {"api5xxrate", "deadletters", "runnotsucceeded"} <= anchors
    defined = set(re.findall(r'<a id="([\w-]+)"></a>', runbook))
    assert anchors - {ALARMS_SECTION} <= defined, anchors - defined
    assert "## Alarms: what they mean, first three things to check" in runbook
    assert variables["RUNBOOK_URL"] == "docs/runbook.md"
    assert variables["DASHBOARD_NAME"] == "iris-ml-dev-overview"
