"""Webhooks on the local stack, as processes: a moderator's decision on a comment an app
sent under its policy reaches the app's receiver, signed, through the stack's own dispatch
and delivery (``python -m local webhooks``)."""

import json

import httpx
import pytest

from local.processes import wait_until
from moderation.webhooks import InvalidSignature, verify
from tests.fakes import Receiver

pytestmark = pytest.mark.slow
SECRET = "whsec-local-stack-0123456789"  # pragma: allowlist secret


def test_a_review_decision_reaches_the_apps_webhook_signed(local_stack):
    receiver = Receiver()
    try:
        api, admin = local_stack.api_url, {"x-api-key": local_stack.env["ADMIN_API_KEY"]}
        # GIVEN a community policy with a webhook, and a comment it sends to review
        policy = {
            "review_terms": ["pineapple"],
            "webhook": {"url": receiver.url, "secret": SECRET, "events": ["review.decided"]},
        }
        assert httpx.put(f"{api}/policies/webhook-forum", json=policy, headers=admin).is_success
        body = {"comment_text": "pineapple belongs on pizza", "policy_id": "webhook-forum"}
        queued = httpx.post(f"{api}/predict", json=body, headers=admin).json()
        assert queued["decision"] == "review"
        # WHEN a moderator approves it
        decision = {"action": "approve", "moderator": "alice", "reason": "ok"}
        assert httpx.post(f"{api}/reviews/{queued['request_id']}", json=decision).is_success
        # THEN the receiver gets one signed review.decided event for that prediction
        wait_until(lambda: receiver.got, "the webhook at the app's receiver")
        headers, raw = receiver.got[0]
        signature = next(v for k, v in headers.items() if k.lower() == "moderation-signature")
        assert verify(SECRET, signature, raw)
        event = json.loads(raw)
        assert event["type"] == "review.decided" and event["request_id"] == queued["request_id"]
        assert (event["outcome"], event["source"], event["reason"]) == ("allow", "moderator", "ok")
        with pytest.raises(InvalidSignature):
            verify("another-secret-0123456789", signature, raw)
    finally:
        receiver.server.shutdown()
