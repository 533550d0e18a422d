"""Stream -> queue: the webhook events a batch of prediction-log changes means, enqueued for
the policies whose webhook asks for them. Plain functions; the handler only wires.

A record that cannot be enqueued fails the batch from it (Lambda retries it); records
enqueued before are enqueued again then, with the same event ids (``moderation.webhooks``),
which is what at-least-once delivery with de-duplication by id allows.
"""

import json
import time
from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from moderation.errors import NotFound, StoreUnavailable
from moderation.log import logger
from moderation.policies import WebhookConfig
from moderation.records import PredictionRecord
from moderation.settings import get_settings
from moderation.stores.dynamo import deserialize
from moderation.stores.policies import PolicyStore
from moderation.webhooks import WebhookEvent, events_for


class DeliveryQueue:
    """The SQS queue of deliveries; a message is one event and its delivery state."""

    def __init__(self, queue_url: str | None, client: Any | None = None) -> None:
        self.queue_url, self._client = queue_url, client

    @cached_property
    def client(self) -> Any:
        return self._client or boto3.client("sqs")

    def send(self, message: dict[str, Any], delay_s: float = 0) -> None:
        if not self.queue_url:
            raise StoreUnavailable("WEBHOOK_QUEUE_URL is not set")
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(message),
            DelaySeconds=max(0, min(900, int(delay_s))),
        )


@lru_cache
def get_queue() -> DeliveryQueue:
    return DeliveryQueue(get_settings().webhook_queue_url)


@lru_cache
def get_policies() -> PolicyStore:
    return PolicyStore(get_settings().policies_table)


def _image(raw: dict[str, Any] | None) -> PredictionRecord | None:
    item = deserialize(raw or {})
    return PredictionRecord.model_validate(item) if item.get("type") == "prediction" else None


def record_events(raw: dict[str, Any]) -> list[WebhookEvent]:
    """The events one stream record means (see ``moderation.webhooks.events_for``)."""
    images = raw.get("dynamodb") or {}
    new = _image(images.get("NewImage"))
    if new is None:
        return []
    return events_for(_image(images.get("OldImage")), new)


def subscription(policies: PolicyStore, event: WebhookEvent) -> WebhookConfig | None:
    """The webhook that asks for ``event``, if its policy (still) has one."""
    try:
        webhook = policies.get(event.policy_id).webhook
    except NotFound:
        return None
    return webhook if webhook is not None and event.type in webhook.events else None


def new_message(event: WebhookEvent, now: float) -> dict[str, Any]:
    return {"event": event.model_dump(), "attempt": 0, "first_at": now, "deliver_at": now}


def dispatch_record(
    record: DynamoDBRecord,
    policies: PolicyStore | None = None,
    queue: DeliveryQueue | None = None,
    clock: Callable[[], float] | None = None,
) -> int:
    """Enqueue the subscribed events of one stream record; returns how many."""
    policies, queue = policies or get_policies(), queue or get_queue()
    sent = 0
    for event in record_events(record.raw_event):
        if subscription(policies, event) is None:
            continue
        queue.send(new_message(event, (clock or time.time)()))
        logger.info("webhook event queued", extra={"event_id": event.id, "type": event.type})
        sent += 1
    return sent
