"""What the prediction log holds, typed: one definition for the service that writes it, the
store that keys it, the aggregator that counts it and the API schemas that show it.

Each record knows its own DynamoDB key (``pk`` is the prediction's request id; ``sk`` says
what the item is), so the key layout is written once, here.
"""

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from moderation.labels import Decision
from moderation.language import DetectedLanguage

PREDICTION_SK = "PREDICTION"
FEEDBACK_SK_PREFIX = "FEEDBACK#"

ReviewStatus = Literal["pending", "decided"]
#: The review-queue index is keyed by ``<status>#<shard>``, the shard from the request id, so
#: no index partition takes every review; a page merges the shards, oldest first.
REVIEW_SHARDS = 8
ReviewAction = Literal["approve", "reject", "relabel"]
#: What the audit log records: a lease taken, a decision, or a decision undone (reopened).
AuditAction = Literal["claim", "approve", "reject", "relabel", "undo"]

#: How severe a flagged label is, for the queue's priority (higher first): a threat or
#: identity hate before an insult, an insult before plain toxicity.
LABEL_SEVERITY: dict[str, int] = {
    "threat": 3,
    "identity_hate": 3,
    "severe_toxic": 3,
    "insult": 2,
    "obscene": 2,
    "toxic": 1,
}
#: Closeness to block is read in bands of this width, so severity and age order the items
#: of one band rather than the third decimal of a score.
PRIORITY_BAND = 0.05
#: The label lane of an item nothing was flagged for (e.g. an unsupported script).
NO_LABEL = "none"


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
    #: a code from ``REVIEW_REASONS`` (settings), saying why
    reason: str | None = None
    notes: str | None = None
    decided_at: str

    @property
    def outcome(self) -> Decision:
        """What the comment's fate is after this decision: allowed when approved or
        relabelled clean, else blocked."""
        return "allow" if self.action == "approve" or not self.true_labels else "block"


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
    #: the comment's language as detected (None on records logged without detection)
    language: DetectedLanguage | None = None
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
    #: the moderator holding the item (a claim), until ``lease_expires_at`` (epoch seconds):
    #: a lease past its expiry is no lease, so none is ever cleaned up
    lease_holder: str | None = None
    lease_expires_at: int | None = None
    #: hash of the input and the options that shaped the answer: an Idempotency-Key retry
    #: must match it to be replayed
    fingerprint: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review_queue(self) -> str | None:
        """The review-queue index's key (absent, so not indexed, when not for review)."""
        return review_queue_key(self.review_status, self.request_id) if self.review_status else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review_priority(self) -> str | None:
        """The priority indexes' sort key (see ``review_priority``)."""
        return review_priority(self) if self.review_status else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review_label_queue(self) -> str | None:
        """The label-lane index's key: pending items only (see ``lane_keys``)."""
        return lane_keys(self)[0] if self.review_status == "pending" else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review_policy_queue(self) -> str | None:
        """The policy-lane index's key: pending items made under a policy only."""
        return lane_keys(self)[1] if self.review_status == "pending" else None

    @property
    def lead_label(self) -> str:
        """The label lane: the most severe flagged label, the higher score among equals."""
        if not self.labels:
            return NO_LABEL
        return max(
            self.labels, key=lambda label: (LABEL_SEVERITY.get(label, 0), self.scores[label])
        )

    def leased_to_other(self, moderator: str | None, now: int) -> bool:
        return (
            self.lease_holder is not None
            and self.lease_holder != moderator
            and (self.lease_expires_at or 0) > now
        )

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


def review_priority(record: "PredictionRecord") -> str:
    """The review queue's order as one ascending string: closest to block first (the top
    score, in ``PRIORITY_BAND`` bands), then the most severe flagged label, then oldest."""
    top = max(record.scores.values(), default=0.0)
    band = min(int(top / PRIORITY_BAND), int(1 / PRIORITY_BAND) - 1)
    severity = max((LABEL_SEVERITY.get(label, 0) for label in record.labels), default=0)
    return f"{99 - band:02d}#{9 - severity}#{record.created_at}#{record.request_id}"


def lane_keys(record: "PredictionRecord") -> tuple[str, str | None]:
    """The label lane's and the policy lane's index keys of a pending item, sharded as the
    review queue is (the shard from the request id)."""
    status = record.review_status or "pending"
    shard = _request_hash(record.request_id) % REVIEW_SHARDS
    label_key = f"{status}#{record.lead_label}#{shard}"
    policy_key = f"{status}#{record.policy_id}#{shard}" if record.policy_id else None
    return label_key, policy_key


def label_lane(label: str, shard: int) -> str:
    return f"pending#{label}#{shard}"


def policy_lane(policy_id: str, shard: int) -> str:
    return f"pending#{policy_id}#{shard}"


def prediction_key(request_id: str) -> dict[str, str]:
    return {"pk": request_id, "sk": PREDICTION_SK}


def feedback_key(request_id: str, source: str) -> dict[str, str]:
    return {"pk": request_id, "sk": FEEDBACK_SK_PREFIX + source}


class AuditRecord(BaseModel):
    """One line of the moderators' audit log: who did what to which item, when and why.
    It holds no comment text, so it is kept after the prediction's text expires."""

    model_config = ConfigDict(extra="ignore")

    request_id: str
    at: str
    action: AuditAction
    moderator: str
    reason: str | None = None
    true_labels: list[str] | None = None
    policy_id: str | None = None
    #: a claim's lease expiry (epoch seconds)
    lease_expires_at: int | None = None

    def item(self) -> dict[str, Any]:
        """The audit table's item: by item (pk) and by day (the export's index)."""
        return {
            **self.model_dump(),
            "pk": self.request_id,
            "sk": f"{self.at}#{self.action}",
            "day": self.at[:10],
            "day_sk": f"{self.at}#{self.request_id}#{self.action}",
        }


LogRecord = PredictionRecord | FeedbackRecord


def parse_log_item(item: dict[str, Any]) -> LogRecord | None:
    """A prediction-log item as its record; None for an item of another type."""
    kind = item.get("type")
    if kind == "prediction":
        return PredictionRecord.model_validate(item)
    if kind == "feedback":
        return FeedbackRecord.model_validate(item)
    return None
