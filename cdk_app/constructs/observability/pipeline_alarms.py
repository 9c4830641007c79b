"""Alarms on the pipeline: run outcomes, freshness, dead letters, throttles, image findings."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.constructs.observability.alarms import Comparison, Missing, notify
from cdk_app.constructs.shared.dead_letter_queue import dead_letter_queue
from training.contract import METRICS_NAMESPACE, PIPELINE_SERVICE

BAD_OUTCOMES = ("failed", "rejected", "interrupted", "timed_out")


def _field(path: str) -> str:
    """A placeholder for a field of the event's detail in a notification text."""
    field: str = events.EventField.from_path(f"$.detail.{path}")
    return field


def run_metric(outcome: str, period: cdk.Duration) -> cloudwatch.Metric:
    """Training runs that ended with `outcome` (emitted from the registry's event stream)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name="TrainingRuns",
        dimensions_map={"service": PIPELINE_SERVICE, "outcome": outcome},
        statistic="Sum",
        period=period,
    )


class PipelineAlarms(Construct):
    """Bad run outcomes, stale training, non-empty DLQs, DynamoDB throttles, ECR scan findings."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        dead_letter_queues: dict[str, sqs.IQueue],
        registry: dynamodb.ITableV2,
        repository: ecr.IRepository,
        retrain_every_days: int,
    ) -> None:
        super().__init__(scope, id_)
        five = cdk.Duration.minutes(5)
        quiet = Missing.NOT_BREACHING
        outcomes = {o.replace("_", ""): run_metric(o, five) for o in BAD_OUTCOMES}
        self.alarms = [
            notify(
                self,
                "RunNotSucceeded",
                topic=topic,
                metric=cloudwatch.MathExpression(
                    expression=" + ".join(outcomes),
                    using_metrics=dict(outcomes),
                    label="runs failed, rejected, interrupted or timed out",
                    period=five,
                ),
                threshold=1,
                comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                missing=quiet,
                description="A training run failed, was rejected by the gate, was "
                "interrupted or timed out (python -m training registry shows why)",
            )
        ]
        if retrain_every_days:
            days = retrain_every_days + 1
            self.alarms.append(
                notify(
                    self,
                    "NoRecentTraining",
                    topic=topic,
                    metric=run_metric("succeeded", cdk.Duration.days(1)),
                    threshold=1,
                    comparison=Comparison.LESS_THAN_THRESHOLD,
                    # No successful run in a day is exactly what this alarm is about.
                    missing=Missing.BREACHING,
                    evaluation_periods=days,
                    description=f"No successful training run in {days} days "
                    f"(retraining is scheduled every {retrain_every_days})",
                )
            )
        for name, queue in dead_letter_queues.items():
            self.alarms.append(
                notify(
                    self,
                    f"{name}DeadLetters",
                    topic=topic,
                    metric=queue.metric_approximate_number_of_messages_visible(
                        period=five, statistic="Maximum"
                    ),
                    threshold=1,
                    comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    missing=quiet,
                    description=f"The {name} function's dead-letter queue is not empty",
                )
            )
        throttles = {
            kind.lower(): cloudwatch.Metric(
                namespace="AWS/DynamoDB",
                metric_name=f"{kind}ThrottleEvents",
                dimensions_map={"TableName": registry.table_name},
                statistic="Sum",
                period=five,
            )
            for kind in ("Read", "Write")
        }
        self.alarms.append(
            notify(
                self,
                "RegistryThrottles",
                topic=topic,
                metric=cloudwatch.MathExpression(
                    expression="read + write",
                    using_metrics=dict(throttles),
                    label="registry throttle events",
                    period=five,
                ),
                threshold=1,
                comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                missing=quiet,
                description="DynamoDB throttled the model registry",
            )
        )
        # EventBridge keeps a notification it could not deliver here rather than dropping it.
        undelivered = dead_letter_queue(
            self, "UndeliveredNotifications", of="the pipeline's notification rules"
        )
        self.alarms.append(
            notify(
                self,
                "UndeliveredNotificationsAlarm",
                topic=topic,
                metric=undelivered.metric_approximate_number_of_messages_visible(
                    period=five, statistic="Maximum"
                ),
                threshold=1,
                comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                missing=quiet,
                description="EventBridge could not deliver a notification to the alarm topic",
            )
        )
        self.critical_findings = events.Rule(
            self,
            "CriticalFindings",
            description="An image scan found CRITICAL vulnerabilities in a model image",
            event_pattern=events.EventPattern(
                source=["aws.ecr"],
                detail_type=["ECR Image Scan"],
                detail={
                    "repository-name": [repository.repository_name],
                    "scan-status": ["COMPLETE"],
                    "finding-severity-counts": {"CRITICAL": [{"numeric": [">", 0]}]},
                },
            ),
            targets=[
                targets.SnsTopic(
                    topic,
                    dead_letter_queue=undelivered,
                    message=events.RuleTargetInput.from_text(
                        f"CRITICAL findings in {_field('repository-name')}:"
                        f"{_field('image-tags')} ({_field('finding-severity-counts.CRITICAL')} "
                        "critical). Run: aws ecr describe-image-scan-findings."
                    ),
                )
            ],
        )
