"""Queue -> receiver: one signed POST per message, retried with exponential backoff over
WEBHOOK_RETRY_WINDOW_SECONDS (24 h by default), then dead-lettered.

SQS delays a message by at most 15 minutes, so a wait is carried in the message
(``deliver_at``): a message that arrives early is sent back with the rest of its wait (at
most 15 minutes at a time) and no delivery is tried. The waits double from
WEBHOOK_RETRY_BASE_SECONDS up to WEBHOOK_RETRY_MAX_DELAY_SECONDS: 30 s, 1, 2, 4, 8, 16 and
32 min, 1 h 4 min, 2 h 8 min, then every 4 h, so a receiver that never answers is tried 15
times over 24 h 15 min before its event goes to the dead-letter queue (``webhooks.redrive``
sends it back).

A receiver's failure (a non-2xx answer, a timeout, a refused connection) is the receiver's:
the message is rescheduled and this one succeeds. Only our own failures (the queue or the
policy store unavailable) fail the message, which SQS then delivers again, up to
maxReceiveCount (template.yaml) before its own redrive policy dead-letters it.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal

import urllib3

from moderation.log import logger
from moderation.settings import Settings, get_settings
from moderation.stores.policies import PolicyStore
from moderation.webhooks import WebhookEvent, headers
from webhooks.dispatch import DeliveryQueue, get_policies, get_queue, subscription

Result = Literal["delivered", "deferred", "retrying", "dead_lettered", "dropped"]


def retry_delay(attempt: int, settings: Settings) -> float:
    """The wait after failed attempt ``attempt`` (1, 2, ...): doubling, capped."""
    delay = settings.webhook_retry_base_seconds * 2 ** (attempt - 1)
    return min(delay, settings.webhook_retry_max_delay_seconds)


@dataclass
class Delivery:
    settings: Settings
    policies: PolicyStore
    queue: DeliveryQueue
    dead_letters: DeliveryQueue
    clock: Callable[[], float] = time.time
    http: urllib3.PoolManager | None = None

    @cached_property
    def pool(self) -> urllib3.PoolManager:
        return self.http or urllib3.PoolManager(retries=False)

    def handle(self, message: dict[str, Any]) -> Result:
        now = self.clock()
        if now < message["deliver_at"]:
            self.queue.send(message, message["deliver_at"] - now)
            return "deferred"
        event = WebhookEvent.model_validate(message["event"])
        webhook = subscription(self.policies, event)
        if webhook is None:
            logger.info(
                "webhook dropped: the policy no longer asks for it", extra={"event_id": event.id}
            )
            return "dropped"
        attempt = int(message["attempt"]) + 1
        if self._post(str(webhook.url), webhook.secret.get_secret_value(), event, int(now)):
            logger.info("webhook delivered", extra={"event_id": event.id, "attempt": attempt})
            return "delivered"
        message = {**message, "attempt": attempt}
        if now - message["first_at"] >= self.settings.webhook_retry_window_seconds:
            logger.error("webhook dead-lettered", extra={"event_id": event.id, "attempt": attempt})
            self.dead_letters.send(message)
            return "dead_lettered"
        delay = retry_delay(attempt, self.settings)
        self.queue.send({**message, "deliver_at": now + delay}, delay)
        logger.warning(
            "webhook receiver failed; retrying",
            extra={"event_id": event.id, "attempt": attempt, "retry_in_s": delay},
        )
        return "retrying"

    def _post(self, url: str, secret: str, event: WebhookEvent, timestamp: int) -> bool:
        body = event.body()
        try:
            response = self.pool.request(
                "POST",
                url,
                body=body,
                headers=headers(secret, event, body, timestamp),
                timeout=urllib3.Timeout(total=self.settings.webhook_timeout_seconds),
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            logger.warning("webhook receiver unreachable: %s", type(exc).__name__)
            return False
        return 200 <= response.status < 300


@lru_cache
def get_delivery() -> Delivery:
    settings = get_settings()
    return Delivery(
        settings,
        get_policies(),
        get_queue(),
        DeliveryQueue(settings.webhook_dead_letter_queue_url),
    )
