"""Webhooks end to end in moto: a decision on a prediction made under a policy goes from
the predictions stream (dispatch) through SQS (delivery) to a real receiver on loopback,
signed, retried when the receiver fails, dead-lettered after the retry window, re-driven."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from local.lambda_context import LambdaContext
from local.streams import Checkpoints, StreamReader
from moderation.policies import PolicyRules, WebhookConfig
from moderation.settings import Settings
from moderation.stores.policies import PolicyStore
from moderation.webhooks import verify
from tests.fakes import Receiver, queued
from tests.paths import load_event
from webhooks.delivery import Delivery
from webhooks.dispatch import DeliveryQueue
from webhooks.handler import dispatch
from webhooks.redrive import redrive

SECRET = "whsec-integration-0123456789"  # pragma: allowlist secret


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def webhooks(stack, receiver, tmp_path: Path):
    """Queues in moto, a policy whose webhook points at the receiver, and helpers that run
    the stream (dispatch) and the queue (delivery) as Lambda would."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="webhooks")["QueueUrl"]
    dead_url = sqs.create_queue(QueueName="webhooks-dlq")["QueueUrl"]
    policies = PolicyStore(stack.settings.policies_table, stack.dynamodb)
    webhook = WebhookConfig(
        url=receiver.url, secret=SECRET, events=["review.decided", "prediction.blocked"]
    )
    policies.put("forum", PolicyRules(webhook=webhook), "admin")

    class Harness:
        settings = Settings(webhook_retry_base_seconds=0, webhook_retry_window_seconds=3600)

        def __init__(self) -> None:
            #: how far the delivery's clock is ahead of the real one (dispatch's)
            self.ahead = 0.0
            self.queue = DeliveryQueue(queue_url, sqs)
            self.dead = DeliveryQueue(dead_url, sqs)
            self.queue_url, self.dead_url = queue_url, dead_url

        def reader(self, name: str = "a") -> StreamReader:
            return StreamReader(
                stack.settings.predictions_table,
                dispatch,
                Checkpoints(tmp_path / f"webhook-checkpoints-{name}.json"),
                stack.dynamodb,
                boto3.client("dynamodbstreams", region_name="us-east-1"),
                context=LambdaContext(),
            )

        def dispatch(self, name: str = "a") -> None:
            from webhooks import dispatch as module

            module.get_queue.cache_clear()
            module.get_policies.cache_clear()
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(module, "get_queue", lambda: self.queue)
                patch.setattr(module, "get_policies", lambda: policies)
                reader = self.reader(name)
                while reader.poll():
                    pass

        def deliver(self, rounds: int = 10) -> list[str]:
            delivery = Delivery(
                self.settings, policies, self.queue, self.dead, lambda: self.clock()
            )
            results = []
            for _ in range(rounds):
                messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
                if not messages.get("Messages"):
                    break
                for message in messages["Messages"]:
                    results.append(delivery.handle(json.loads(message["Body"])))
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return results

        def clock(self) -> float:
            return time.time() + self.ahead

        def waiting(self, url: str) -> int:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            values = attributes["Attributes"]
            return int(values["ApproximateNumberOfMessages"]) + int(
                values["ApproximateNumberOfMessagesDelayed"]
            )

    return Harness()


def test_a_decision_is_delivered_signed_after_the_receiver_fails_twice(
    client, service, webhooks, receiver
):
    # GIVEN an item made under the policy, decided by a moderator
    queued(service, "item", "2026-11-24T09:00:00.000Z", "forum", toxic=0.8)
    queued(service, "no-policy", "2026-11-24T09:00:00.000Z", None, toxic=0.8)
    body = {"action": "reject", "moderator": "alice", "reason": "harassment"}
    assert client.post("/reviews/item", json=body).is_success
    assert client.post("/reviews/no-policy", json=body).is_success
    # WHEN the stream is dispatched and the receiver fails twice before answering 200
    webhooks.dispatch()
    receiver.statuses = [500, 503]
    results = webhooks.deliver()
    # THEN the one event (the policy's) was tried three times and delivered, signed each time
    assert results == ["retrying", "retrying", "delivered"]
    assert len(receiver.got) == 3 and len(set(receiver.event_ids())) == 1
    for headers, raw in receiver.got:
        verify(SECRET, headers["Moderation-Signature"], raw, now=webhooks.clock())
        assert headers["Moderation-Event-Id"] == json.loads(raw)["id"]
    event = json.loads(receiver.got[-1][1])
    assert event["type"] == "review.decided" and event["request_id"] == "item"
    assert event["outcome"] == "block" and event["reason"] == "harassment"
    assert event["policy_id"] == "forum" and event["created_at"]
    assert "comment_text" not in event


def test_one_decision_has_one_event_id_however_often_it_is_delivered(
    client, service, stack, webhooks, receiver
):
    queued(service, "item", "2026-11-24T09:00:00.000Z", "forum", toxic=0.8)
    client.post("/reviews/item", json={"action": "approve", "moderator": "alice"})
    # WHEN the stream is read twice (a retried batch) and both copies are delivered
    webhooks.dispatch("first")
    webhooks.dispatch("second")
    assert webhooks.deliver() == ["delivered", "delivered"]
    # THEN the receiver got the same event id twice: it keeps one
    (one,) = set(receiver.event_ids())
    # AND an undo and a new decision is a new decision, with a new id
    client.post("/reviews/item/undo", json={"moderator": "alice"})
    client.post("/reviews/item", json={"action": "reject", "moderator": "alice"})
    webhooks.dispatch("first")
    webhooks.deliver()
    assert len(set(receiver.event_ids())) == 2 and receiver.event_ids()[0] == one


def test_a_blocked_prediction_under_the_policy_is_an_event(service, webhooks, receiver):
    from tests.fakes import prediction_record

    blocked = prediction_record(
        request_id="b-1", decision="block", labels=["threat"], policy_id="forum", policy_version=1
    )
    service.store.log([blocked])
    webhooks.dispatch()
    assert webhooks.deliver() == ["delivered"]
    event = json.loads(receiver.got[0][1])
    assert event["type"] == "prediction.blocked" and event["source"] == "model"


def test_after_the_retry_window_an_event_is_dead_lettered_and_can_be_redriven(
    client, service, webhooks, receiver
):
    queued(service, "item", "2026-11-24T09:00:00.000Z", "forum", toxic=0.8)
    client.post("/reviews/item", json={"action": "approve", "moderator": "alice"})
    webhooks.dispatch()
    # WHEN the receiver fails all through the window
    receiver.statuses = [500] * 3
    assert webhooks.deliver(rounds=1) == ["retrying"]
    webhooks.ahead += 3600  # the window is over at the next failure
    assert webhooks.deliver() == ["dead_lettered"]
    assert webhooks.waiting(webhooks.dead_url) == 1 and webhooks.waiting(webhooks.queue_url) == 0
    # THEN once the receiver is fixed, the re-drive sends it again, with its id
    receiver.statuses = []
    sqs = boto3.client("sqs", region_name="us-east-1")
    assert redrive(webhooks.dead_url, webhooks.queue_url, sqs) == 1
    webhooks.ahead = 0.0
    assert webhooks.deliver() == ["delivered"]
    assert len(set(receiver.event_ids())) == 1


def test_a_delivery_not_yet_due_waits_in_the_queue_at_most_15_minutes_at_a_time(
    client, service, webhooks, receiver
):
    queued(service, "item", "2026-11-24T09:00:00.000Z", "forum", toxic=0.8)
    client.post("/reviews/item", json={"action": "approve", "moderator": "alice"})
    webhooks.settings = Settings(webhook_retry_base_seconds=7200)
    webhooks.dispatch()
    receiver.statuses = [500]
    # WHEN the first attempt fails, the next is two hours away
    assert webhooks.deliver() == ["retrying"]
    # THEN it sits in the queue, delayed (SQS caps a delay at 15 minutes; the message
    # carries the rest of the wait and is sent back when it arrives early)
    assert webhooks.waiting(webhooks.queue_url) == 1 and len(receiver.got) == 1


def test_the_webhook_lambdas_handle_the_events_in_events(webhooks, receiver, monkeypatch):
    """``sam local invoke`` payloads: the stream record of a decision under the policy
    queues one delivery, and the queue's message is delivered signed."""
    from moderation.settings import get_settings
    from webhooks import delivery, dispatch
    from webhooks.handler import deliver
    from webhooks.handler import dispatch as dispatch_handler

    monkeypatch.setenv("WEBHOOK_QUEUE_URL", webhooks.queue_url)
    monkeypatch.setenv("WEBHOOK_DEAD_LETTER_QUEUE_URL", webhooks.dead_url)

    def forget_clients() -> None:
        get_settings.cache_clear()
        for module in (dispatch, delivery):
            for factory in ("get_queue", "get_policies"):
                if hasattr(getattr(module, factory, None), "cache_clear"):
                    getattr(module, factory).cache_clear()

    forget_clients()
    try:
        # the stream event: one record, pending -> decided under policy "forum"
        answer = dispatch_handler(
            load_event("stream_review_decided_under_policy.json"), LambdaContext()
        )
        assert answer == {"batchItemFailures": []} and webhooks.waiting(webhooks.queue_url) == 1
        # the SQS event: that delivery's message, first attempt, already due
        answer = deliver(load_event("sqs_webhook_delivery.json"), LambdaContext())
        assert answer == {"batchItemFailures": []}
        ((headers, body),) = receiver.got
        assert json.loads(body)["id"] == "c117067a-dbf3-5938-9afd-a4450f80ea4e"
        assert verify(SECRET, headers["Moderation-Signature"], body)
    finally:
        forget_clients()
