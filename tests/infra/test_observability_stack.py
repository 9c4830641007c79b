"""Observability: topic and key policy, the alarm set, Slack, budget, dashboard, metrics feed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Annotations, Match, Template

from stacks.application import BuiltApp
from tests.support import build_app

SLACK: dict[str, Any] = {"slack_workspace_id": "T0123456789", "slack_channel_id": "C0123456789"}


def alarms_by_id(template: Template) -> dict[str, dict[str, Any]]:
    """Alarm properties keyed by the alarm's construct id (the tail of its logical id)."""
    found = template.find_resources("AWS::CloudWatch::Alarm")
    return {
        resource["Metadata"]["aws:cdk:path"].split("/")[-2]: resource["Properties"]
        for resource in found.values()
    }


def topic_ref(template: Template) -> dict[str, str]:
    """A Ref to the stack's alarm topic."""
    [topic_id] = template.find_resources("AWS::SNS::Topic")
    return {"Ref": topic_id}


def test_topic_is_encrypted_ssl_only_and_open_to_the_publishers(
    templates: dict[str, Template],
) -> None:
    """Each publishing service is named in the key and topic policies. Cost Anomaly Detection
    publishes as costalerts.amazonaws.com: taken from published topic policies, not confirmed
    in AWS's own pages here (the closing note says so)."""
    obs = templates["observability"]
    [(key_id, key)] = obs.find_resources("AWS::KMS::Key").items()
    assert key["Properties"]["EnableKeyRotation"] is True
    grants = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AlarmPublishersMayEncrypt"
    ]
    [grant] = grants
    assert sorted(grant["Principal"]["Service"]) == [
        "budgets.amazonaws.com",
        "cloudwatch.amazonaws.com",
        "costalerts.amazonaws.com",
        "events.amazonaws.com",
    ]
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    topic = next(iter(obs.find_resources("AWS::SNS::Topic").values()))
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    [policy] = obs.find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    publish = next(s for s in statements if s.get("Sid") == "AlarmPublishersMayPublish")
    assert "budgets.amazonaws.com" in publish["Principal"]["Service"]


def test_the_alarm_set(templates: dict[str, Template]) -> None:
    obs = templates["observability"]
    alarms = alarms_by_id(obs)
    topic = topic_ref(obs)
    for name, props in alarms.items():
        assert props["AlarmActions"] == [topic], name
        assert props["OKActions"] == [topic], name
        assert props["TreatMissingData"] in {"notBreaching", "breaching"}, name

    def single(name: str) -> tuple[str, str, float]:
        props = alarms[name]
        statistic = props.get("ExtendedStatistic", props.get("Statistic"))
        return str(props["MetricName"]), str(statistic), float(props["Threshold"])

    assert single("ApiLatencyP99") == ("Latency", "p99", 1500)
    assert single("FunctionErrors") == ("Errors", "Sum", 1)
    assert single("FunctionThrottles") == ("Throttles", "Sum", 1)
    assert single("FunctionDurationP99") == ("Duration", "p99", 8000)  # 80% of 10 s
    # No reservation by default (new accounts cannot reserve any), so no concurrency alarm.
    assert "FunctionConcurrency" not in alarms
    for queue in ("Registrar", "Launcher", "Monitor", "Promoter", "Watcher"):
        assert single(f"{queue}DeadLetters") == ("ApproximateNumberOfMessagesVisible", "Maximum", 1)
    for name, expression, threshold in (
        ("Api5xxRate", "IF(requests > 0, 100 * errors / requests, 0)", 1.0),
        ("Api4xxRate", "IF(requests > 0, 100 * errors / requests, 0)", 25.0),
        ("RegistryThrottles", "read + write", 1),
        ("RunNotSucceeded", "failed + rejected + interrupted + timedout", 1),
    ):
        props = alarms[name]
        [math] = [m for m in props["Metrics"] if "Expression" in m]
        assert math["Expression"] == expression, name
        assert props["Threshold"] == threshold, name
    errors = {m["Id"]: m for m in alarms["Api5xxRate"]["Metrics"]}["errors"]
    assert errors["MetricStat"]["Metric"]["MetricName"] == "5xx"
    runs = {m["Id"]: m for m in alarms["RunNotSucceeded"]["Metrics"]}
    assert runs["failed"]["MetricStat"]["Metric"]["Namespace"] == "IrisML"
    assert "NoRecentTraining" not in alarms


def test_thresholds_come_from_config(tmp_path: Path) -> None:
    built = build_app(
        tmp_path,
        api_5xx_rate_percent=5,
        latency_p99_threshold_ms=800,
        reserved_concurrency=10,
        retrain_every_days=3,
    )
    alarms = alarms_by_id(Template.from_stack(built.observability))
    assert alarms["Api5xxRate"]["Threshold"] == 5
    assert alarms["ApiLatencyP99"]["Threshold"] == 800
    concurrency = alarms["FunctionConcurrency"]
    assert (concurrency["MetricName"], concurrency["Threshold"]) == ("ConcurrentExecutions", 8)
    stale = alarms["NoRecentTraining"]
    assert (stale["Threshold"], stale["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert (stale["Period"], stale["EvaluationPeriods"]) == (86400, 4)
    assert stale["TreatMissingData"] == "breaching"


def test_cloudfront_alarm_lives_in_us_east_1(built: BuiltApp) -> None:
    assert built.cdn_monitoring is not None
    assert built.cdn_monitoring.region == "us-east-1"
    cdn = Template.from_stack(built.cdn_monitoring)
    alarm = alarms_by_id(cdn)["Cdn5xxRate"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/CloudFront",
        "5xxErrorRate",
        "Average",
    )
    assert {"Name": "Region", "Value": "Global"} in alarm["Dimensions"]
    assert alarm["AlarmActions"] == [topic_ref(cdn)]


def test_cloudfront_alarm_is_forwarded_to_the_enricher_in_the_app_region(built: BuiltApp) -> None:
    """Same-account cross-region routing: a rule whose target is the other region's bus, with
    a role allowed events:PutEvents on it (AWS docs: eb-cross-region, eb-event-bus-perms)."""
    assert built.cdn_monitoring is not None
    cdn = Template.from_stack(built.cdn_monitoring)
    [alarm_id] = cdn.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"Namespace": "AWS/CloudFront"}}
    )
    [rule] = cdn.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [{"Ref": alarm_id}]},
    }
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == "arn:aws:events:eu-west-1:123456789012:event-bus/default"
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    cdn.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": role_id}],
            "PolicyDocument": {
                "Statement": [
                    {"Action": "events:PutEvents", "Effect": "Allow", "Resource": target["Arn"]}
                ]
            },
        },
    )
    # An event it could not send waits in a queue; the alarm itself notified its own topic.
    assert "DeadLetterConfig" in target
    assert alarms_by_id(cdn)["Cdn5xxRate"]["AlarmActions"] == [topic_ref(cdn)]


def test_ecr_critical_findings_notify(templates: dict[str, Template]) -> None:
    rule = templates["observability"].find_resources(
        "AWS::Events::Rule",
        {"Properties": {"EventPattern": Match.object_like({"source": ["aws.ecr"]})}},
    )
    [props] = [r["Properties"] for r in rule.values()]
    detail = props["EventPattern"]["detail"]
    assert props["EventPattern"]["detail-type"] == ["ECR Image Scan"]
    assert detail["finding-severity-counts"] == {"CRITICAL": [{"numeric": [">", 0]}]}
    [target] = props["Targets"]
    assert "DeadLetterConfig" in target
    assert "CRITICAL findings" in json.dumps(target["InputTransformer"])


def test_budget_alerts_at_80_and_100_percent(templates: dict[str, Template]) -> None:
    obs = templates["observability"]
    [budget] = obs.find_resources("AWS::Budgets::Budget").values()
    props = budget["Properties"]
    assert props["Budget"]["BudgetLimit"] == {"Amount": 20, "Unit": "USD"}
    assert props["Budget"]["TimeUnit"] == "MONTHLY"
    thresholds = []
    for entry in props["NotificationsWithSubscribers"]:
        assert entry["Notification"]["NotificationType"] == "ACTUAL"
        assert entry["Subscribers"] == [{"SubscriptionType": "SNS", "Address": topic_ref(obs)}]
        thresholds.append(entry["Notification"]["Threshold"])
    assert thresholds == [80, 100]


def test_without_slack_synth_warns_once_and_goes_on(built: BuiltApp) -> None:
    obs = Template.from_stack(built.observability)
    obs.resource_count_is("AWS::Chatbot::SlackChannelConfiguration", 0)
    Annotations.from_stack(built.observability).has_warning(
        "*", Match.string_like_regexp("Slack is not configured")
    )


def test_slack_channel_subscribes_to_both_topics(tmp_path: Path) -> None:
    built = build_app(tmp_path, **SLACK, alarm_email="oncall@example.com")
    obs = Template.from_stack(built.observability)
    [channel] = obs.find_resources("AWS::Chatbot::SlackChannelConfiguration").values()
    props = channel["Properties"]
    assert (props["SlackWorkspaceId"], props["SlackChannelId"]) == ("T0123456789", "C0123456789")
    arns = json.dumps(props["SnsTopicArns"])
    assert len(props["SnsTopicArns"]) == 2
    assert "Topic" in arns
    guardrail = json.dumps(props["GuardrailPolicies"])
    assert "AdministratorAccess" not in guardrail
    obs.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )
    assert not Annotations.from_stack(built.observability).find_warning(
        "*", Match.string_like_regexp("Slack")
    )


def test_dashboard_shows_what_the_team_needs(templates: dict[str, Template]) -> None:
    [dashboard] = templates["observability"].find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for expected in (
        "Requests",
        "Latency",
        "p50",
        "p90",
        "p99",
        "5xx",
        "cold_start",  # cold starts from the app's own line (no REPORT lines are logged)
        "USD per 1,000",  # the estimated cost per thousand predictions
        "Predictions",
        "iris_type",
        "Setosa",
        "model_version",  # the live model version over time
        "TrainingRuns",
        "timed_out",
        "alarm",
    ):
        assert expected in body, expected


def test_registry_events_feed_pipeline_metrics(templates: dict[str, Template]) -> None:
    pipeline, obs = templates["pipeline"], templates["observability"]
    [table] = pipeline.find_resources("AWS::DynamoDB::GlobalTable").values()
    assert table["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    # The alert enricher reads the same stream (tests/infra/test_alert_rules.py).
    [mapping] = [
        resource
        for logical_id, resource in obs.find_resources("AWS::Lambda::EventSourceMapping").items()
        if logical_id.startswith("RegistryMetrics")
    ]
    props = mapping["Properties"]
    [criteria] = props["FilterCriteria"]["Filters"]
    assert json.loads(criteria["Pattern"]) == {
        "eventName": ["INSERT"],
        "dynamodb": {"NewImage": {"pk": {"S": ["EVENT"]}}},
    }
    assert props["BisectBatchOnFunctionError"] is True
    assert "OnFailure" in props["DestinationConfig"]
    obs.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "training.control.registry_metrics.handler"}
    )
