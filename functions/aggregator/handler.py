"""Lambda entry point: a DynamoDB Streams batch (one shard's, with its ``shardId``) -> the
aggregates table, answered with Lambda's partial batch response."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from aggregator.counting import count_batch
from moderation.log import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: LambdaContext) -> dict:  # noqa: ARG001
    outcome = count_batch(event)
    logger.info(
        "batch counted",
        extra={
            "shard": event.get("shardId"),
            "records": len(event.get("Records") or []),
            "counted": outcome.counted,
            "duplicates": outcome.duplicates,
            "ignored": outcome.ignored,
            "dead_lettered": outcome.dead_lettered,
            "retry_from": outcome.retry_from,
        },
    )
    return outcome.response()
