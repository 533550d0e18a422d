"""What the prediction log holds, typed: one definition for the service that writes it, the
store that keys it, the aggregator that counts it and the API schemas that show it.

Each record knows its own DynamoDB key (``pk`` is the prediction's request id; ``sk`` says
what the item is), so the key layout is written once, here.
"""

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from moderation.labels import Decision

PREDICTION_SK = "PREDICTION"
FEEDBACK_SK_PREFIX = "FEEDBACK#"

ReviewStatus = Literal["pending", "decided"]
#: The review-queue index is keyed by ``<status>#<shard>``, the shard from the request id, so
#: no index partition takes every review; a page merges the shards, oldest first.
REVIEW_SHARDS = 8
ReviewAction = Literal["approve", "reject", "relabel"]


class Record(BaseModel):
    # Items read back carry their key attributes (pk, sk) too: ignored, not refused.
    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    def item(self) -> dict[str, Any]:
        """The DynamoDB item: the record's fields and its key."""
        return {**self.model_dump(), **self.key()}

    def key(self) -> dict[str, str]:
        raise NotImplementedError


class ReviewDecision(BaseModel):
    """A moderator's decision on a prediction sent to review."""

    action: ReviewAction
    true_labels: list[str]
    moderator: str
    notes: str | None = None
    decided_at: str


class TermMatchRecord(BaseModel):
    """A policy term found in a comment: which, from which list, and where."""

    term: str
    list: Literal["block", "review", "allow"]
    begin: int
    end: int


class PredictionRecord(Record):
    """One scored comment, as logged (``comment_text`` is None when the caller asked that
    the text not be stored)."""

    type: Literal["prediction"] = "prediction"
    request_id: str
    comment_text: str | None = None
    text_stored: bool = True
    input_hash: str
    scores: dict[str, float]
    labels: list[str]
    decision: Decision
    #: why the decision: each threshold reached, and any fail-safe rule that applied
    reasons: list[str] = []
    model_name: str
    model_version: str
    latency_ms: float
    cached: bool
    created_at: str
    caller_id: str
    expires_at: int
    threshold_overrides: dict[str, float] | None = None
    #: the community policy the decision was made under, and its version (None: defaults)
    policy_id: str | None = None
    policy_version: int | None = None
    #: block/review/allow terms found, with [start, end) offsets in the comment as sent
    term_matches: list[TermMatchRecord] = []
    #: ``<day>#<shard>`` for the share of predictions kept in the traffic-sample index
    #: (policy forecasts read it); absent, so not indexed, for the others
    traffic_sample: str | None = None
    review_status: ReviewStatus | None = None
    review: ReviewDecision | None = None
    #: hash of the input and the options that shaped the answer: an Idempotency-Key retry
    #: must match it to be replayed
    fingerprint: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review_queue(self) -> str | None:
        """The review-queue index's key (absent, so not indexed, when not for review)."""
        return review_queue_key(self.review_status, self.request_id) if self.review_status else None

    def key(self) -> dict[str, str]:
        return prediction_key(self.request_id)


class SampledPrediction(BaseModel):
    """A prediction as the traffic-sample index projects it: what a forecast replays."""

    model_config = ConfigDict(extra="ignore")

    request_id: str
    created_at: str
    scores: dict[str, float]
    decision: Decision
    comment_text: str | None = None
    policy_id: str | None = None
    review: ReviewDecision | None = None


class FeedbackRecord(Record):
    """Whether a prediction was right, from one source (``api``, ``moderator``, ...)."""

    type: Literal["feedback"] = "feedback"
    request_id: str
    source: str
    correct: bool
    true_labels: list[str] | None = None
    predicted_labels: list[str]
    predicted_decision: Decision
    model_version: str
    #: the policy the prediction was decided under (its feedback counts for that policy)
    policy_id: str | None = None
    notes: str | None = None
    moderator: str | None = None
    caller_id: str | None = None
    #: label -> the score the caller says the comment should have had (Perspective's
    #: SuggestCommentScore)
    suggested_scores: dict[str, float] | None = None
    created_at: str
    #: hash of what the feedback says: the same feedback again is a no-op, different
    #: feedback from the same source a conflict
    fingerprint: str

    def key(self) -> dict[str, str]:
        return feedback_key(self.request_id, self.source)


def _request_hash(request_id: str) -> int:
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16)


def review_queue_key(status: ReviewStatus, request_id: str) -> str:
    return f"{status}#{_request_hash(request_id) % REVIEW_SHARDS}"


#: The traffic-sample index is keyed by ``<day>#<shard>``: a day's sample spread over this
#: many partitions, so no partition takes more than its share of the index's writes.
TRAFFIC_SAMPLE_SHARDS = 16


def traffic_sample_key(request_id: str, created_at: str, rate: float) -> str | None:
    """The sample index key of a prediction, or None when it is not in the sample: a
    deterministic ``rate`` share of request ids (the same id is always in or out)."""
    point = _request_hash(request_id)
    if point >= rate * 0x1_0000_0000:
        return None
    return f"{created_at[:10]}#{(point >> 4) % TRAFFIC_SAMPLE_SHARDS}"


def prediction_key(request_id: str) -> dict[str, str]:
    return {"pk": request_id, "sk": PREDICTION_SK}


def feedback_key(request_id: str, source: str) -> dict[str, str]:
    return {"pk": request_id, "sk": FEEDBACK_SK_PREFIX + source}


LogRecord = PredictionRecord | FeedbackRecord


def parse_log_item(item: dict[str, Any]) -> LogRecord | None:
    """A prediction-log item as its record; None for an item of another type."""
    kind = item.get("type")
    if kind == "prediction":
        return PredictionRecord.model_validate(item)
    if kind == "feedback":
        return FeedbackRecord.model_validate(item)
    return None
