"""The registry's audit events as a Lambda event source: stream inserts of `pk = EVENT` only."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs

from training.contract import EVENT_PK


def registry_events(
    registry: dynamodb.ITableV2,
    *,
    dead_letters: sqs.IQueue,
    batch_size: int,
    types: Sequence[str] = (),
) -> sources.DynamoEventSource:
    """Audit events (pk = EVENT) as inserted, of `types` if given: runs and models churn.

    A batch that fails is halved until the bad record is alone, retried three times, then its
    record goes to `dead_letters`.
    """
    image: dict[str, object] = {"pk": {"S": lambda_.FilterRule.is_equal(EVENT_PK)}}
    if types:
        image["type"] = {"S": lambda_.FilterRule.or_(*types)}
    return sources.DynamoEventSource(
        registry,
        starting_position=lambda_.StartingPosition.LATEST,
        batch_size=batch_size,
        bisect_batch_on_error=True,
        retry_attempts=3,
        on_failure=sources.SqsDlq(dead_letters),
        filters=[
            lambda_.FilterCriteria.filter(
                {
                    "eventName": lambda_.FilterRule.is_equal("INSERT"),
                    "dynamodb": {"NewImage": image},
                }
            )
        ],
    )
