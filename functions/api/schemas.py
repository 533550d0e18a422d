"""Request and response models: every boundary is a pydantic model (unknown fields refused)."""

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from moderation.labels import Decision, Label
from moderation.language import DetectedLanguage
from moderation.model.explain import Explanation
from moderation.policies import POLICY_ID_PATTERN
from moderation.records import TermMatchRecord
from moderation.text import is_blank

Scores = dict[Label, float]
PolicyId = Annotated[str, StringConstraints(pattern=POLICY_ID_PATTERN)]


def _valid_unicode(value: str) -> str:
    """Refuse lone surrogates (a JSON "\\ud800" escape decodes to one): like invalid UTF-8,
    they are not text, and no store can log them (DynamoDB strings are UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"holds a lone surrogate at position {exc.start}: not valid Unicode"
        ) from None
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PredictOptionsBase(Strict):
    thresholds: dict[Label, Annotated[float, Field(ge=0.0, le=1.0)]] | None = Field(
        None, description="per-label threshold overrides (0..1) for this request"
    )
    explain: bool = Field(False, description="return the n-grams behind each flagged label")
    store_text: bool = Field(True, description="false: log the comment's hash, never its text")
    policy_id: PolicyId | None = Field(
        None, description="decide under this community policy (default: the key's, if any)"
    )


def _check_text(value: str) -> str:
    if is_blank(value):
        raise ValueError("must not be empty or whitespace only")
    return value


class PredictCreate(PredictOptionsBase):
    comment_text: Text = Field(description="the comment, at most MAX_COMMENT_CHARS characters")

    _not_blank = field_validator("comment_text")(_check_text)


class BatchCreate(PredictOptionsBase):
    comments: list[Text] = Field(description="1..MAX_BATCH comments, answered in input order")

    @field_validator("comments")
    @classmethod
    def _each_not_blank(cls, values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            if is_blank(value):
                raise ValueError(f"comments[{index}] must not be empty or whitespace only")
        return values


class PolicyRef(BaseModel):
    id: str
    version: int


class PredictionPublic(BaseModel):
    request_id: str
    labels: list[Label]
    scores: Scores
    decision: Decision
    reasons: list[str] = Field(
        description="each rule that fired: label:<label>>=<threshold>, "
        'block:<label>>=<threshold>, block_term:"...", review_term:"...", allow_term:"...", '
        "identity_terms_only, negated_or_quoted, unsupported_script, "
        "unsupported_language:<code>"
    )
    language: DetectedLanguage | None = Field(
        description="the comment's language as detected (code und: too short to tell); "
        "text the model was not trained for gets the unsupported-language decision"
    )
    policy: PolicyRef | None = Field(description="the policy and version decided under")
    term_matches: list[TermMatchRecord] = Field(
        description="policy terms found, with [begin, end) offsets in the comment"
    )
    model_version: str
    model_name: str
    cached: bool
    latency_ms: float
    explanations: dict[Label, list[Explanation]] | None = None


class BatchPublic(BaseModel):
    results: list[PredictionPublic]
    model_version: str


class FeedbackCreate(Strict):
    request_id: Annotated[Text, StringConstraints(min_length=1, max_length=64)]
    correct: bool
    true_labels: list[Label] | None = Field(
        None, description="the right labels; default: the predicted ones if correct"
    )
    notes: Annotated[Text, StringConstraints(max_length=1000)] | None = None


class FeedbackPublic(BaseModel):
    request_id: str
    recorded: bool = True
    duplicate: bool = Field(description="true when this exact feedback was already recorded")


Moderator = Annotated[Text, StringConstraints(min_length=1, max_length=100)]
Action = Literal["approve", "reject", "relabel"]
_ACTION = Field(
    description="approve: the comment is fine; reject: the flagged labels are right; "
    "relabel: true_labels are right"
)
_REASON = Field(
    None,
    description="a code from REVIEW_REASONS (default ok, spam, harassment, hate, threat, "
    "sexual, other); omitted: ok for approve, other otherwise",
)


class ReviewDecisionCreate(Strict):
    action: Action = _ACTION
    moderator: Moderator
    true_labels: list[Label] | None = None
    reason: Annotated[Text, StringConstraints(max_length=40)] | None = _REASON
    notes: Annotated[Text, StringConstraints(max_length=1000)] | None = None


class BulkDecisionCreate(ReviewDecisionCreate):
    request_ids: list[Annotated[Text, StringConstraints(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=100, description="the selected items (1..100)"
    )


class ModeratorCreate(Strict):
    moderator: Moderator


class ClaimPublic(BaseModel):
    request_id: str
    moderator: str
    lease_expires_at: int = Field(description="epoch seconds; the lease ends by itself then")


class UndoPublic(BaseModel):
    request_id: str
    review_status: Literal["pending"] = "pending"
    moderator: str
    undone_at: str
    lease_expires_at: int = Field(description="the item is held for its moderator till then")


class ReviewItem(BaseModel):
    request_id: str
    comment_text: str | None = Field(None, description="null when logged with store_text false")
    scores: Scores
    labels: list[Label]
    decision: Decision
    model_version: str
    created_at: str
    review_status: str
    review: dict | None = None
    policy_id: str | None = None
    lead_label: str = Field(description="the label lane: the most severe flagged label")
    lease_holder: str | None = Field(None, description="who claimed it (see lease_expires_at)")
    lease_expires_at: int | None = None
    explanations: dict[Label, list[Explanation]] | None = Field(
        None, description="with explain=true: the n-grams behind each flagged label"
    )


class ReviewPage(BaseModel):
    items: list[ReviewItem]
    next_cursor: str | None
    count: int = Field(description="how many items have this status in all")
    oldest_created_at: str | None = Field(
        None, description="pending pages: when the longest-waiting item was logged"
    )
    reasons: list[str] = Field(description="the reason codes a decision may carry")


class ReviewDecisionPublic(BaseModel):
    request_id: str
    action: str
    true_labels: list[Label]
    moderator: str
    reason: str | None
    correct: bool
    decided_at: str


class BulkItemPublic(BaseModel):
    request_id: str
    status: Literal["decided", "not_found", "conflict"]
    message: str | None = None
    decided_at: str | None = None


class BulkDecisionPublic(BaseModel):
    decided: int = Field(description="how many of the items were decided")
    results: list[BulkItemPublic]


class OutcomePublic(BaseModel):
    decision: Decision = Field(description="what happens to the comment: allow or block")
    source: Literal["model", "moderator"]
    decided_at: str
    reason: str | None = Field(
        None, description="the moderator's reason code, or the model's reasons"
    )
    action: str | None = None
    true_labels: list[Label] | None = None


class FeedbackItemPublic(BaseModel):
    source: str
    correct: bool
    true_labels: list[Label] | None = None
    notes: str | None = None
    moderator: str | None = None
    created_at: str


class AuditLinePublic(BaseModel):
    at: str
    action: str
    moderator: str
    reason: str | None = None
    true_labels: list[Label] | None = None
    lease_expires_at: int | None = None


class PredictionStatusPublic(BaseModel):
    request_id: str
    comment_text: str | None = Field(None, description="null when logged with store_text false")
    text_stored: bool
    labels: list[Label]
    scores: Scores
    decision: Decision = Field(description="the model's (or policy's) decision")
    reasons: list[str]
    model_name: str
    model_version: str
    created_at: str
    policy_id: str | None = None
    policy_version: int | None = None
    review_status: str | None = Field(None, description="pending or decided; null: no review")
    outcome: OutcomePublic | None = Field(
        description="the final outcome; null while the review is pending"
    )
    feedback: list[FeedbackItemPublic]
    history: list[AuditLinePublic] = Field(description="claims, decisions and undos, oldest first")


class ModelInfo(BaseModel):
    name: str
    version: str


class ModelCard(ModelInfo):
    labels: list[Label]
    thresholds: Scores = Field(description="a label is flagged at or above its threshold")
    block_thresholds: Scores = Field(description="any label at or above this blocks")
    decision_rule: str
    created_at: str
    metrics: dict[str, float] = Field(
        description="held-out figures: mean ROC-AUC and macro F1 (validation, real-rate, test)"
    )


class HealthPublic(BaseModel):
    status: Literal["ok", "unavailable"]
    model: str | None = Field(description="the served model's name")
    model_version: str | None
    reason: str | None = None
    store: Literal["reachable", "unreachable"]


class ErrorDetail(BaseModel):
    field: str | None
    problem: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorPublic(BaseModel):
    error: ErrorBody
    request_id: str | None = None


class WebhookPublic(BaseModel):
    url: str
    events: list[str]
    secret_set: bool = Field(description="a secret is stored; it is never read back")


class PolicyPublic(BaseModel):
    """A stored policy version, as callers read it (no webhook secret)."""

    policy_id: str
    version: int
    updated_at: str
    updated_by: str
    deleted: bool = False
    description: str
    thresholds: dict[Label, float]
    block_thresholds: dict[Label, float | Literal["never"]]
    block_terms: list[str]
    review_terms: list[str]
    allow_terms: list[str]
    unsupported_language: Decision | None
    webhook: WebhookPublic | None


class PolicyList(BaseModel):
    items: list[PolicyPublic]


class KeyBindingCreate(Strict):
    default_policy: PolicyId | None = Field(None, description="applies when a request names none")
    policies: list[PolicyId] = Field(
        default_factory=list, max_length=100, description="the policies the key may use and read"
    )
