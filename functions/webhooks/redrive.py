"""Sends what the webhook dead-letter queue holds back to the delivery queue, as new
deliveries (attempt 0, a fresh 24 h window); an event keeps its id, so a receiver that got
it after all de-duplicates it. Run it once the receiver is fixed:

- on AWS: ``aws lambda invoke --function-name <WebhookRedriveFunction output> out.json``
- locally: ``make redrive-webhooks`` (``python -m webhooks.redrive``)
"""

import json
import time
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from moderation.log import logger
from moderation.settings import get_settings


def redrive(
    dead_letter_url: str, queue_url: str, sqs: Any | None = None, max_messages: int = 1000
) -> int:
    """Move up to ``max_messages`` dead letters back; returns how many moved. A message is
    deleted from the dead-letter queue only once it is in the delivery queue."""
    sqs = sqs or boto3.client("sqs")
    moved = 0
    while moved < max_messages:
        batch = sqs.receive_message(
            QueueUrl=dead_letter_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            now = time.time()
            body = json.loads(message["Body"]) | {"attempt": 0, "first_at": now, "deliver_at": now}
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
            sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def _urls() -> tuple[str, str]:
    settings = get_settings()
    if not settings.webhook_dead_letter_queue_url or not settings.webhook_queue_url:
        raise ValueError("WEBHOOK_QUEUE_URL and WEBHOOK_DEAD_LETTER_QUEUE_URL must be set")
    return settings.webhook_dead_letter_queue_url, settings.webhook_queue_url


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    moved = redrive(*_urls(), max_messages=int(event.get("max_messages", 1000)))
    logger.info("webhook re-drive done", extra={"moved": moved})
    return {"moved": moved}


if __name__ == "__main__":
    logger.info("webhook re-drive done", extra={"moved": redrive(*_urls())})
