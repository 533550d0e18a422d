"""Webhook events: what an app hears about its predictions, and how it knows the message is
ours. One definition for the delivery Lambda that signs and the receivers that verify (the
snippet in docs/api.md is this ``verify``).

An event's id is derived from what it reports (uuid5 of the type, the request id and, for a
decision, its time), never drawn at random: however often a stream record is read again or a
delivery retried, one decision has one event id, so receivers de-duplicate by it. An undo
followed by a new decision is a new decision, with a new id and a later ``decided_at``.
"""

import hashlib
import hmac
import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel

from moderation.policies import WebhookEvent as PolicyWebhookEvent
from moderation.records import PredictionRecord

#: the event types (the policy model defines which a webhook may ask for)
EventType = PolicyWebhookEvent
SIGNATURE_HEADER = "Moderation-Signature"
EVENT_ID_HEADER = "Moderation-Event-Id"
#: how old a signature's ``t`` a receiver should still accept (seconds)
DEFAULT_TOLERANCE_S = 300
_EVENT_NAMESPACE = uuid.UUID("2a4c6f0e-3b1d-4e5f-9a8b-7c6d5e4f3a2b")


class InvalidSignature(ValueError):
    """A webhook request whose signature is missing, wrong, or too old (a replay)."""


class WebhookEvent(BaseModel):
    """The JSON body of a webhook request."""

    id: str
    type: EventType
    created_at: str
    request_id: str
    policy_id: str
    policy_version: int | None
    #: allow or block: what finally happens to the comment
    outcome: Literal["allow", "block"]
    #: who decided it: the model (prediction.blocked) or a moderator (review.decided)
    source: Literal["model", "moderator"]
    #: the moderator's reason code, or the model's reasons
    reason: str | None = None
    labels: list[str]
    model_version: str

    def body(self) -> bytes:
        """The exact bytes sent (and signed): compact JSON, keys in a fixed order."""
        return json.dumps(self.model_dump(), separators=(",", ":")).encode()


def event_id(kind: EventType, request_id: str, decided_at: str = "") -> str:
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{kind}:{request_id}:{decided_at}"))


def events_for(old: PredictionRecord | None, new: PredictionRecord) -> list[WebhookEvent]:
    """The events one change of a prediction under a policy means: its logging with a
    block decision (``prediction.blocked``), a pending review becoming decided
    (``review.decided``). Nothing for anything else (claims, undos, other items)."""
    if new.policy_id is None:
        return []
    common = {
        "request_id": new.request_id,
        "policy_id": new.policy_id,
        "policy_version": new.policy_version,
        "model_version": new.model_version,
    }
    if old is None and new.decision == "block":
        return [
            WebhookEvent(
                id=event_id("prediction.blocked", new.request_id),
                type="prediction.blocked",
                created_at=new.created_at,
                outcome="block",
                source="model",
                reason="; ".join(new.reasons) or None,
                labels=list(new.labels),
                **common,
            )
        ]
    review = new.review
    if (
        old is not None
        and old.review_status == "pending"
        and new.review_status == "decided"
        and review is not None
    ):
        return [
            WebhookEvent(
                id=event_id("review.decided", new.request_id, review.decided_at),
                type="review.decided",
                created_at=review.decided_at,
                outcome=review.outcome,
                source="moderator",
                reason=review.reason,
                labels=list(review.true_labels),
                **common,
            )
        ]
    return []


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Moderation-Signature`` header value: ``t=<unix seconds>,v1=<hex HMAC-SHA256
    of "<t>." + body, keyed by the secret>``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check a webhook request as a receiver should; returns its ``t``. Raises
    ``InvalidSignature`` when the header is malformed, no ``v1`` matches (constant-time
    compare), or ``t`` is more than ``tolerance_s`` from now (a replayed request)."""
    try:
        parts = [part.split("=", 1) for part in header.split(",")]
        timestamp = int(next(value for key, value in parts if key == "t"))
        signatures = [value for key, value in parts if key == "v1"]
    except (ValueError, StopIteration):
        raise InvalidSignature("malformed Moderation-Signature header") from None
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise InvalidSignature("no signature matches the body")
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        raise InvalidSignature(f"signed {timestamp}: outside the {tolerance_s} s tolerance")
    return timestamp


def headers(secret: str, event: WebhookEvent, body: bytes, timestamp: int) -> dict[str, Any]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "toxic-moderation-webhooks/1",
        EVENT_ID_HEADER: event.id,
        SIGNATURE_HEADER: sign(secret, body, timestamp),
    }
