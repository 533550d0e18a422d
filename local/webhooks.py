"""Webhook delivery on the local stack, as the two Lambdas do it on AWS: the predictions
stream feeds ``webhooks.handler.dispatch`` (its own checkpoints, beside the aggregator's),
and the queue feeds ``webhooks.handler.deliver``, Lambda's SQS event shape in and its
partial batch response out: a message whose delivery raised stays in the queue and is
received again after its visibility timeout."""

import logging
import os
import time
from pathlib import Path
from typing import Any

import boto3

from local.lambda_context import LambdaContext
from local.moto_server import wait_for_moto
from local.resources import QUEUE_NAMES
from local.streams import Checkpoints, StreamReader, run_until_stopped
from moderation.settings import get_settings

logger = logging.getLogger("local.webhooks")


def queue_urls(sqs: Any) -> dict[str, str]:
    """The local queues' URLs, as the template's ``!Ref`` gives them to the Lambdas."""
    return {
        logical_id: sqs.get_queue_url(QueueName=name)["QueueUrl"]
        for logical_id, name in QUEUE_NAMES.items()
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            }
            for m in messages
        ]
    }


def deliver_once(sqs: Any, queue_url: str, queue_arn: str, deliver: Any, wait_s: int) -> int:
    """Receive up to 10 messages, hand them to ``deliver`` and delete the ones it did not
    report as failed (what Lambda's SQS event source does); returns how many were handled.
    The queue's depth is read first (a read, which local moto does not journal), so an idle
    stack makes no receive calls: moto journals each one as a write."""
    depth = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    if int(depth) == 0:
        return 0
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s
    ).get("Messages", [])
    if not received:
        return 0
    response = deliver(sqs_event(received, queue_arn), LambdaContext()) or {}
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    done = [m for m in received if m["MessageId"] not in failed]
    for message in done:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return len(done)


def run(state_dir: Path, interval: float = 1.0) -> None:
    wait_for_moto(state_dir)
    settings = get_settings()
    dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    waited = None
    while True:
        try:
            urls = queue_urls(sqs)
            if settings.predictions_table in dynamodb.list_tables()["TableNames"]:
                break
        except sqs.exceptions.QueueDoesNotExist:
            pass
        if waited is None or time.monotonic() - waited > 30:
            logger.info("webhooks: waiting for the bootstrap to create the table and queues")
            waited = time.monotonic()
        time.sleep(0.5)
    os.environ["WEBHOOK_QUEUE_URL"] = urls["WebhookQueue"]
    os.environ["WEBHOOK_DEAD_LETTER_QUEUE_URL"] = urls["WebhookDeadLetterQueue"]
    get_settings.cache_clear()
    from webhooks.handler import deliver, dispatch

    reader = StreamReader(
        settings.predictions_table,
        dispatch,
        Checkpoints(state_dir / "webhook-stream-checkpoints.json"),
        dynamodb,
        boto3.client("dynamodbstreams"),
        context=LambdaContext(function_name="toxic-moderation-webhook-dispatch-local"),
    )
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=urls["WebhookQueue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    logger.info("webhooks: dispatching from %s, delivering from its queue", reader.table)

    def one_pass() -> int:
        handled = reader.poll()
        return handled + deliver_once(sqs, urls["WebhookQueue"], queue_arn, deliver, 0)

    run_until_stopped(one_pass, interval, "webhooks")
