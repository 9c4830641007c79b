"""Alarm state changes of another region, forwarded to the app region's alert enricher.

CloudFront publishes its metrics in us-east-1 only, so its alarms live there, while the alert
enricher runs in the app's region. An EventBridge rule here sends their state-change events to
the app region's default event bus (AWS docs: eb-cross-region; a same-account default bus needs
no resource policy, only the rule's role with events:PutEvents on it).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from cdk_app.constructs.shared.dead_letter_queue import dead_letter_queue
from training.contract import ALARM_STATE_CHANGE


class AlarmForwarder(Construct):
    """`alarms`' state changes -> the default event bus of `to_region`; failures -> a queue."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        alarms: Sequence[cloudwatch.Alarm],
        to_region: str,
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        if to_region == stack.region:
            raise ValueError(f"AlarmForwarder sends to another region; {to_region} is this one")
        bus = events.EventBus.from_event_bus_arn(
            self,
            "AppRegionBus",
            stack.format_arn(
                service="events",
                region=to_region,
                resource="event-bus",
                resource_name="default",
                arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
            ),
        )
        # EventBridge keeps an event it could not send rather than dropping it. No alarm watches
        # this queue: the alarms here notify their own topic, so a failed forward costs only the
        # context message, not the alarm, and an alarm on it would cost $0.10 a month idle.
        self.undelivered = dead_letter_queue(
            self, "Undelivered", of=f"the alarm forwarder to {to_region}"
        )
        self.rule = events.Rule(
            self,
            "AlarmStateChanged",
            description=f"Send this region's app alarms to the alert enricher in {to_region}",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_STATE_CHANGE],
                detail={"alarmName": [alarm.alarm_name for alarm in alarms]},
            ),
            targets=[targets.EventBus(bus, dead_letter_queue=self.undelivered)],
        )
