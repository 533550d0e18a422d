"""What the prediction log holds, typed: one definition for the service that writes it, the
store that keys it, the aggregator that counts it and the API schemas that show it.

Each record knows its own DynamoDB key (``pk`` is the prediction's request id; ``sk`` says
what the item is), so the key layout is written once, here.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from moderation.labels import Decision

PREDICTION_SK = "PREDICTION"
FEEDBACK_SK_PREFIX = "FEEDBACK#"

ReviewStatus = Literal["pending", "decided"]
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
    model_name: str
    model_version: str
    latency_ms: float
    cached: bool
    created_at: str
    caller_id: str
    expires_at: int
    threshold_overrides: dict[str, float] | None = None
    review_status: ReviewStatus | None = None
    review: ReviewDecision | None = None
    #: hash of the input and the options that shaped the answer: an Idempotency-Key retry
    #: must match it to be replayed
    fingerprint: str

    def key(self) -> dict[str, str]:
        return prediction_key(self.request_id)


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
