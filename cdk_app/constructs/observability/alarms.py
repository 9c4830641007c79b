"""Alarm helpers: every alarm notifies on ALARM and on OK, and says how it treats no data."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

Comparison = cloudwatch.ComparisonOperator
Missing = cloudwatch.TreatMissingData


def notify(
    scope: Construct,
    id_: str,
    *,
    topic: sns.ITopic,
    metric: cloudwatch.IMetric,
    threshold: float,
    comparison: cloudwatch.ComparisonOperator,
    missing: cloudwatch.TreatMissingData,
    description: str,
    evaluation_periods: int = 1,
    datapoints_to_alarm: int | None = None,
) -> cloudwatch.Alarm:
    """An alarm on `metric` whose ALARM and OK transitions both go to `topic`."""
    alarm = cloudwatch.Alarm(
        scope,
        id_,
        metric=metric,
        threshold=threshold,
        comparison_operator=comparison,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints_to_alarm,
        treat_missing_data=missing,
        alarm_description=description,
    )
    alarm.add_alarm_action(actions.SnsAction(topic))
    alarm.add_ok_action(actions.SnsAction(topic))
    return alarm
