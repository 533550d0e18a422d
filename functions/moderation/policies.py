"""Community policies: the rules a community moderates by, saved as data.

A policy says, per label, where review and block start (or that a label never blocks), which
words or phrases always block, always go to review or are always allowed (see
``moderation.terms``), what to do with text in a language the model was not trained for,
and (for review outcomes) where to send webhooks. Fields left out keep the model's defaults.

``PolicyRules`` is the body callers send; ``StoredPolicy`` adds what the store keeps (the
version, who changed it and when); ``AppliedPolicy`` is a policy compiled against the served
model, what the service applies to each comment.
"""

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from moderation.labels import DECISIONS, LABELS, Decision, Label
from moderation.language import DetectedLanguage
from moderation.model.policy import Judgement, judge
from moderation.terms import Match, TermMatcher, mask

if TYPE_CHECKING:
    from moderation.model.scorer import Scorer

POLICY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
POLICY_ID_RE = re.compile(POLICY_ID_PATTERN)
MAX_TERM_CHARS = 64
#: block, review and allow terms together: 3,000 terms of 64 characters keep a policy and
#: each of its versions well inside DynamoDB's 400 KB item
MAX_TERMS = 3_000
WebhookEvent = Literal["review.decided", "prediction.blocked"]
#: a block threshold saying the label never blocks
NEVER = "never"

Score = Annotated[float, Field(ge=0.0, le=1.0)]


def _clean_term(term: str) -> str:
    term = " ".join(term.split())
    if not term:
        raise ValueError("a term must not be blank")
    if len(term) > MAX_TERM_CHARS:
        raise ValueError(f"a term has at most {MAX_TERM_CHARS} characters")
    return term


TermText = Annotated[str, AfterValidator(_clean_term)]


class WebhookConfig(BaseModel):
    """Where outcomes of predictions made under the policy are sent, signed with ``secret``."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    secret: SecretStr = Field(min_length=16, description="HMAC key; never read back")
    events: list[WebhookEvent] = Field(default_factory=lambda: ["review.decided"], min_length=1)


class PolicyRules(BaseModel):
    """A policy as callers write it."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=500)
    thresholds: dict[Label, Score] = Field(
        default_factory=dict, description="label -> score from which it is flagged (review)"
    )
    block_thresholds: dict[Label, Score | Literal["never"]] = Field(
        default_factory=dict,
        description='label -> score from which it blocks; "never" (or null): it never blocks',
    )
    block_terms: list[TermText] = Field(default_factory=list, max_length=MAX_TERMS)
    review_terms: list[TermText] = Field(default_factory=list, max_length=MAX_TERMS)
    allow_terms: list[TermText] = Field(
        default_factory=list, max_length=MAX_TERMS, validate_default=True
    )
    unsupported_language: Decision | None = Field(
        None, description="decision for text outside the model's language (null: the default)"
    )
    webhook: WebhookConfig | None = None

    @field_validator("block_thresholds", mode="before")
    @classmethod
    def _null_is_never(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {label: NEVER if v is None else v for label, v in value.items()}
        return value

    @field_validator("block_thresholds")
    @classmethod
    def _block_not_below_review(cls, value: dict[str, Any], info: ValidationInfo) -> Any:
        review_at = info.data.get("thresholds") or {}
        for label, block in value.items():
            review = review_at.get(label)
            if block != NEVER and review is not None and block < review:
                raise ValueError(f"{label} ({block}) is below thresholds.{label} ({review})")
        return value

    @field_validator("allow_terms")
    @classmethod
    def _not_too_many_terms(cls, value: list[str], info: ValidationInfo) -> list[str]:
        total = len(value) + sum(
            len(info.data.get(name) or []) for name in ("block_terms", "review_terms")
        )
        if total > MAX_TERMS:
            raise ValueError(
                f"block_terms, review_terms and allow_terms hold at most {MAX_TERMS} terms "
                f"in all ({total} given)"
            )
        return value


class StoredPolicy(PolicyRules):
    """A policy version as the store keeps it (items read back carry their keys: ignored)."""

    model_config = ConfigDict(extra="ignore")

    policy_id: str
    version: int
    updated_at: str
    updated_by: str
    deleted: bool = False

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def public(self) -> dict:
        """What callers read: everything but the webhook secret."""
        body = self.model_dump(mode="json", exclude={"webhook"})
        if self.webhook is not None:
            body["webhook"] = {
                "url": str(self.webhook.url),
                "events": list(self.webhook.events),
                "secret_set": True,
            }
        else:
            body["webhook"] = None
        return body


_SEVERITY = {decision: rank for rank, decision in enumerate(DECISIONS)}


def stricter(a: Decision, b: Decision) -> Decision:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


@dataclass(frozen=True)
class AppliedPolicy:
    """A policy compiled against one model: arrays the decision rule reads, and terms."""

    policy_id: str | None
    version: int | None
    review_at: np.ndarray
    block_at: dict[str, float]
    unsupported_language: Decision | None
    terms: TermMatcher

    @classmethod
    def compile(
        cls,
        rules: PolicyRules | None,
        default_review: np.ndarray,
        default_block: dict[str, float],
        default_unsupported: Decision | None,
        policy_id: str | None = None,
        version: int | None = None,
    ) -> "AppliedPolicy":
        rules = rules or PolicyRules()
        review = np.array(
            [
                rules.thresholds.get(label, t)
                for label, t in zip(LABELS, default_review, strict=True)
            ]
        )
        block = {label: default_block[label] for label in LABELS}
        for label, value in rules.block_thresholds.items():
            block[label] = math.inf if value == NEVER else value
        terms = TermMatcher(
            {"block": rules.block_terms, "review": rules.review_terms, "allow": rules.allow_terms}
        )
        unsupported = rules.unsupported_language or default_unsupported
        return cls(policy_id, version, review, block, unsupported, terms)

    def prepare(self, normalized: str) -> tuple[list[Match], str]:
        """The terms in a normalised comment, and the text the model scores: the comment
        without its allow matches (the same string when there are none)."""
        if not self.terms:
            return [], normalized
        matches = self.terms.find(normalized)
        return matches, mask(normalized, matches)

    def judge(
        self,
        scorer: "Scorer",
        model_text: str,
        scores: np.ndarray,
        matches: list[Match],
        review_at: np.ndarray | None = None,
        language: DetectedLanguage | None = None,
    ) -> Judgement:
        """The decision under this policy: the model's rule with the policy's thresholds
        (``review_at`` overrides them, as a request's own thresholds do), then the terms,
        the stricter decision winning. Allow matches appear among the reasons."""
        judged = judge(
            scorer,
            model_text,
            scores,
            self.review_at if review_at is None else review_at,
            unsupported=self.unsupported_language,
            block_at=self.block_at,
            language=language,
        )
        if not matches:
            return judged
        by_terms, reasons = term_decision(matches)
        return Judgement(
            judged.labels, stricter(judged.decision, by_terms), judged.reasons + reasons
        )


def term_decision(matches: list[Match]) -> tuple[Decision, list[str]]:
    """What the terms alone decide, with a reason per distinct term that fired."""
    decision: Decision = "allow"
    reasons: list[str] = []
    for match in matches:
        reason = f'{match.list}_term:"{match.term}"'
        if reason not in reasons:
            reasons.append(reason)
        if match.list == "block":
            decision = "block"
        elif match.list == "review":
            decision = stricter(decision, "review")
    return decision, reasons
