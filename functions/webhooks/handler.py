"""Lambda entry points: the predictions stream -> the webhook queue (``dispatch``), and the
queue -> the receivers (``deliver``), each answering with Lambda's partial batch response."""

import json

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from moderation.log import logger
from webhooks.delivery import get_delivery
from webhooks.dispatch import dispatch_record

_streams = BatchProcessor(event_type=EventType.DynamoDBStreams)
_messages = BatchProcessor(event_type=EventType.SQS)


def _dispatch(record: DynamoDBRecord) -> int:
    return dispatch_record(record)


def _deliver(record: SQSRecord) -> str:
    return get_delivery().handle(json.loads(record.body))


@logger.inject_lambda_context(clear_state=True)
def dispatch(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=_dispatch, processor=_streams, context=context
    )


@logger.inject_lambda_context(clear_state=True)
def deliver(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=_deliver, processor=_messages, context=context
    )
