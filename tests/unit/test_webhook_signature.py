"""The webhook signature a receiver checks (``Moderation-Signature``, Stripe's scheme), and
the retry schedule that keeps an event alive for a day."""

import pytest

from moderation.settings import Settings
from moderation.webhooks import InvalidSignature, sign, verify
from webhooks.delivery import retry_delay

SECRET = "whsec-test-0123456789abcdef"  # pragma: allowlist secret
BODY = b'{"id":"e-1","type":"review.decided","outcome":"block"}'
T = 1_790_000_000


def test_a_valid_signature_verifies_and_gives_its_time():
    header = sign(SECRET, BODY, T)
    assert header.startswith(f"t={T},v1=")
    assert verify(SECRET, header, BODY, now=T + 10) == T


@pytest.mark.parametrize(
    "body, secret",
    [
        (BODY.replace(b"block", b"allow"), SECRET),  # the body changed on the way
        (BODY, "another-secret-0123456789"),  # not signed with this receiver's secret
    ],
)
def test_a_tampered_body_or_a_foreign_secret_is_refused(body, secret):
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify(secret, sign(SECRET, BODY, T), body, now=T)


def test_a_replayed_request_outside_the_tolerance_is_refused():
    header = sign(SECRET, BODY, T)
    assert verify(SECRET, header, BODY, tolerance_s=300, now=T + 300) == T
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(SECRET, header, BODY, tolerance_s=300, now=T + 301)


def test_a_forged_timestamp_breaks_the_signature():
    header = sign(SECRET, BODY, T).replace(f"t={T}", f"t={T + 3600}")
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY, now=T + 3600)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=soon,v1=abc", "nonsense"])
def test_a_malformed_header_is_refused(header):
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY, now=T)


def test_the_retry_schedule_doubles_and_spans_at_least_a_day():
    settings = Settings()
    delays = [retry_delay(n, settings) for n in range(1, 40)]
    assert delays[:4] == [30, 60, 120, 240] and max(delays) == 4 * 3600
    # attempts go on while the window is open, so the last is at or after 24 h
    elapsed, attempts = 0.0, 1
    while elapsed < settings.webhook_retry_window_seconds:
        elapsed += retry_delay(attempts, settings)
        attempts += 1
    assert attempts == 15 and 24 * 3600 <= elapsed < 25 * 3600
