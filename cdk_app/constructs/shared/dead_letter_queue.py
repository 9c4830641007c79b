"""The queue where a message that could not be delivered waits instead of being lost."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def dead_letter_queue(scope: Construct, id_: str, *, of: str) -> sqs.Queue:
    """An encrypted, TLS-only queue keeping undelivered messages of `of` for 14 days."""
    queue = sqs.Queue(
        scope,
        id_,
        enforce_ssl=True,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        retention_period=cdk.Duration.days(14),
    )
    reason = (
        f"This queue is itself the dead-letter queue of {of}; a dead-letter queue of a "
        "dead-letter queue would only move the same messages one hop further. Messages stay "
        "14 days for inspection and redrive, and an alarm watches its depth."
    )
    cdk.Validations.of(queue).acknowledge(
        cdk.Acknowledgment(id="AwsSolutions-SQS3", reason=reason),
        cdk.Acknowledgment(id="Serverless-SQSRedrivePolicy", reason=reason),
    )
    return queue
