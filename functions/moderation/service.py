"""The moderation domain service: score, cache, log, feedback, reviews, health.

The API's routes only validate input, call these methods and shape the response; the model
(``ModelHolder``) and the prediction log (``PredictionLog``) are handed in, so tests can
give it fakes.
"""

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np

from moderation.errors import Conflict, Forbidden, IdempotencyMismatch, NotFound
from moderation.labels import LABELS
from moderation.language import DetectedLanguage
from moderation.model.language_id import detect_language
from moderation.model.scorer import Scorer
from moderation.model_holder import ModelHolder
from moderation.policies import AppliedPolicy
from moderation.policy_catalog import Caller, PolicyCatalog
from moderation.records import (
    AuditRecord,
    FeedbackRecord,
    PredictionRecord,
    ReviewAction,
    ReviewDecision,
    ReviewStatus,
    TermMatchRecord,
    traffic_sample_key,
)
from moderation.settings import Settings
from moderation.stores.audit import AuditLog
from moderation.stores.prediction_log import (
    CacheWrite,
    DuplicateRequest,
    PredictionLog,
    QueueView,
)
from moderation.terms import locate
from moderation.text import normalize_text, text_hash

_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d7f4e-8a53-4f53-9d0e-2b1c1f6a9e11")

#: label -> the n-grams behind its score, as plain dicts (``Explanation.model_dump()``)
Explanations = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class PredictOptions:
    thresholds: dict[str, float] | None = None
    explain: bool = False
    store_text: bool = True
    #: the community policy to decide under (None: the caller's key default, if any)
    policy_id: str | None = None
    #: an unknown or unreadable ``policy_id`` falls back to the default instead of 404
    #: (Perspective's communityId, a hint its clients send freely)
    policy_lenient: bool = False

    def fingerprint(self, policy: AppliedPolicy) -> str:
        return json.dumps(
            {
                "t": self.thresholds or {},
                "s": self.store_text,
                "p": [policy.policy_id, policy.version],
            },
            sort_keys=True,
            default=str,
        )


@dataclass
class Prediction:
    """What a caller gets back for one comment."""

    request_id: str
    scores: dict[str, float]
    labels: list[str]
    decision: str
    model_name: str
    model_version: str
    cached: bool
    latency_ms: float
    reasons: list[str] = field(default_factory=list)
    language: DetectedLanguage | None = None
    policy_id: str | None = None
    policy_version: int | None = None
    term_matches: list[TermMatchRecord] = field(default_factory=list)
    explanations: Explanations | None = None


@dataclass
class Timings:
    """Where a request's time went (the API benchmark splits latency with these): the model
    (normalisation, language identification, scoring and the decision rule with its
    re-scoring passes) and the store (DynamoDB calls); the rest is the request's shaping."""

    model_s: float = 0.0
    store_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    model_name: str | None
    model_version: str | None
    model_problem: str | None
    store_reachable: bool

    @property
    def ok(self) -> bool:
        return self.model_problem is None and self.store_reachable


@dataclass(frozen=True)
class ReviewPage:
    items: list[PredictionRecord]
    explanations: dict[str, Explanations]
    next_cursor: str | None
    count: int
    #: when the longest-waiting pending item was logged (pending pages only)
    oldest_created_at: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What finally happened to a comment, and why: the model's decision for allow and
    block, the moderator's for a reviewed one (None while it waits)."""

    decision: str
    source: Literal["model", "moderator"]
    decided_at: str
    reason: str | None = None
    action: str | None = None
    true_labels: list[str] | None = None


def outcome_of(prediction: PredictionRecord) -> Outcome | None:
    """The final outcome of a logged prediction (the status lookup and the webhooks')."""
    if prediction.decision != "review":
        reason = "; ".join(prediction.reasons) or None
        return Outcome(prediction.decision, "model", prediction.created_at, reason)
    review = prediction.review
    if prediction.review_status != "decided" or review is None:
        return None
    return Outcome(
        review.outcome,
        "moderator",
        review.decided_at,
        review.reason,
        review.action,
        list(review.true_labels),
    )


@dataclass(frozen=True)
class PredictionStatus:
    prediction: PredictionRecord
    outcome: Outcome | None
    feedback: list[FeedbackRecord]
    history: list[AuditRecord]


@dataclass(frozen=True)
class BulkResult:
    request_id: str
    status: Literal["decided", "not_found", "conflict"]
    message: str | None = None
    review: ReviewDecision | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _explanations(scorer: Scorer, text: str, labels: list[str]) -> Explanations:
    return {
        label: [item.model_dump() for item in items]
        for label, items in scorer.explain(text, labels).items()
    }


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def request_id_for(caller_id: str, idempotency_key: str, index: int = 0) -> str:
    """The request id of comment ``index`` of a request carrying ``idempotency_key``: the
    same caller retrying the same key gets the same ids, so the retry is answered from the
    log instead of being logged twice."""
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{caller_id}:{idempotency_key}:{index}"))


#: A suggested score at or above this says the label applies (Perspective's scores are the
#: share of readers who would perceive it).
SUGGESTION_POSITIVE_AT = 0.5


def _prediction(record: PredictionRecord) -> Prediction:
    return Prediction(
        request_id=record.request_id,
        scores={label: float(record.scores[label]) for label in LABELS},
        labels=list(record.labels),
        decision=record.decision,
        reasons=list(record.reasons),
        language=record.language,
        model_name=record.model_name,
        model_version=record.model_version,
        cached=record.cached,
        latency_ms=record.latency_ms,
        policy_id=record.policy_id,
        policy_version=record.policy_version,
        term_matches=list(record.term_matches),
    )


class ReviewCounts(Protocol):
    """How many items have a review status, without paging the queue."""

    def review_count(self, status: ReviewStatus) -> int: ...


class ModerationService:
    def __init__(
        self,
        model: ModelHolder,
        store: PredictionLog,
        settings: Settings,
        review_counts: ReviewCounts,
        policies: PolicyCatalog | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.model = model
        self.store = store
        self.settings = settings
        self.review_counts = review_counts
        self.policies = policies or PolicyCatalog(
            None, settings.policy_cache_seconds, settings.unsupported_language_decision
        )
        self.audit = audit or AuditLog(settings.audit_table)
        #: the review work's clock (leases, the undo window): tests move it
        self.clock = clock

    def health(self) -> Health:
        """Whether a model is served and the prediction log answers, and if not, why."""
        scorer, problem = self.model.status()
        return Health(
            model_name=scorer.model_name if scorer else None,
            model_version=(scorer.version or "unregistered") if scorer else None,
            model_problem=problem,
            store_reachable=self.store.ping(),
        )

    def predict(
        self,
        texts: list[str],
        options: PredictOptions,
        caller_id: str,
        idempotency_key: str | None = None,
        timings: Timings | None = None,
        admin: bool = False,
        languages: list[DetectedLanguage] | None = None,
    ) -> list[Prediction]:
        """Score comments (cache first) under the caller's policy, log every one, and only
        then return them. Under a policy with allow terms the model scores the comment
        without them, and the cache key is the hash of that text (what the model saw).
        ``languages``: each comment's, when the caller has detected them already."""
        started = time.perf_counter()
        timings = timings if timings is not None else Timings()
        scorer = self.model.get()
        version = scorer.version or "unregistered"
        stored_policy = self.policies.resolve(
            Caller(caller_id, admin), options.policy_id, options.policy_lenient
        )
        policy = self.policies.applied(stored_policy, scorer)
        model_started = time.perf_counter()
        normalized = [normalize_text(text) for text in texts]
        hashes = [text_hash(n) for n in normalized]
        if languages is None:
            languages = [detect_language(text) for text in texts]
        preparing_s = time.perf_counter() - model_started
        prepared = [policy.prepare(n) for n in normalized]
        model_texts = [text for _, text in prepared]
        cache_keys = [
            f"{h if t is n else text_hash(t)}#{version}"
            for h, n, t in zip(hashes, normalized, model_texts, strict=True)
        ]
        if idempotency_key:
            request_ids = [request_id_for(caller_id, idempotency_key, i) for i in range(len(texts))]
        else:
            request_ids = [str(uuid.uuid4()) for _ in texts]

        t0 = time.perf_counter()
        cached = self.store.cached_scores(cache_keys)
        t1 = time.perf_counter()
        # one pass for a batch's misses; a lone comment takes the cheaper single path
        misses = {k: t for k, t in zip(cache_keys, model_texts, strict=True) if k not in cached}
        if len(misses) > 1:
            scores = scorer.score_many_normalized(list(misses.values()))
        else:
            scores = [scorer.score_normalized(text) for text in misses.values()]
        scored: dict[str, np.ndarray] = dict(zip(misses, scores, strict=True))
        t2 = time.perf_counter()
        review_at = (
            np.array(
                [
                    options.thresholds.get(label, t)
                    for label, t in zip(LABELS, policy.review_at, strict=True)
                ]
            )
            if options.thresholds
            else None
        )
        now = _now()
        expires = int((now + timedelta(days=self.settings.text_retention_days)).timestamp())
        cache_expires = int((now + timedelta(days=self.settings.cache_ttl_days)).timestamp())
        records: list[PredictionRecord] = []
        first_seen: set[str] = set()
        options_fingerprint = options.fingerprint(policy)
        judging_s = 0.0
        for i, key in enumerate(cache_keys):
            is_hit = key in cached or key in first_seen
            first_seen.add(key)
            values = np.asarray(cached[key]) if key in cached else scored[key]
            found = prepared[i][0]
            judging = time.perf_counter()
            judged = policy.judge(scorer, model_texts[i], values, found, review_at, languages[i])
            judging_s += time.perf_counter() - judging
            created_at = _iso(now)
            records.append(
                PredictionRecord(
                    request_id=request_ids[i],
                    comment_text=texts[i] if options.store_text else None,
                    text_stored=options.store_text,
                    input_hash=hashes[i],
                    scores={
                        label: round(float(s), 6) for label, s in zip(LABELS, values, strict=True)
                    },
                    labels=judged.labels,
                    decision=judged.decision,
                    reasons=judged.reasons,
                    language=languages[i],
                    model_name=scorer.model_name,
                    model_version=version,
                    latency_ms=round((time.perf_counter() - started) * 1000, 3),
                    cached=is_hit,
                    created_at=created_at,
                    caller_id=caller_id,
                    expires_at=expires,
                    threshold_overrides=options.thresholds,
                    policy_id=policy.policy_id,
                    policy_version=policy.version,
                    term_matches=[
                        TermMatchRecord(term=m.term, list=m.list, begin=begin, end=end)
                        for m, begin, end in locate(texts[i], normalized[i], found)
                    ],
                    traffic_sample=traffic_sample_key(
                        request_ids[i], created_at, self.settings.traffic_sample_rate
                    ),
                    review_status="pending" if judged.decision == "review" else None,
                    fingerprint=_fingerprint(hashes[i], options_fingerprint),
                )
            )
        cache_writes: list[CacheWrite] = [
            (key, [float(s) for s in values], cache_expires) for key, values in scored.items()
        ]
        t3 = time.perf_counter()
        try:
            self.store.log(records, cache_writes)
            predictions = [_prediction(record) for record in records]
        except DuplicateRequest:
            predictions = self._replay(records)
        t4 = time.perf_counter()
        timings.model_s += preparing_s + (t2 - t1) + judging_s
        timings.store_s += (t1 - t0) + (t4 - t3)
        if options.explain:
            for prediction, text in zip(predictions, texts, strict=True):
                prediction.explanations = _explanations(scorer, text, prediction.labels)
        return predictions

    def _replay(self, records: list[PredictionRecord]) -> list[Prediction]:
        """The first response to a retried Idempotency-Key, rebuilt from the log."""
        stored = self.store.get_predictions([r.request_id for r in records])
        replayed = []
        for record in records:
            item = stored.get(record.request_id)
            if item is None or item.fingerprint != record.fingerprint:
                raise IdempotencyMismatch(
                    "Idempotency-Key was already used with a different request body"
                )
            replayed.append(_prediction(item))
        return replayed

    def detect_language(self, text: str) -> DetectedLanguage:
        """A comment's language, for a caller that must check it before predicting (and then
        hands it to ``predict``, which would otherwise detect it again)."""
        return detect_language(text)

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        """The six scores of each text, nothing logged: parts of a comment whose prediction
        is logged (Perspective's per-sentence span scores)."""
        if not texts:
            return []
        scores = self.model.get().score_many(texts)
        return [
            {label: round(float(s), 6) for label, s in zip(LABELS, row, strict=True)}
            for row in scores
        ]

    def suggest_scores(
        self,
        text: str,
        suggested: dict[str, float],
        caller_id: str,
        candidate_keys: list[str],
        new_key: str,
    ) -> bool:
        """Record the scores a caller says ``text`` should have had, as feedback on the
        prediction it refers to: the first of ``candidate_keys`` (idempotency keys) that has
        a logged prediction of this caller, else a new prediction logged now under
        ``new_key``. Labels left out keep what the model said. False when the same
        suggestion was already recorded."""
        ids = [request_id_for(caller_id, key) for key in candidate_keys]
        found = self.store.get_predictions(ids) if ids else {}
        prediction = next((found[i] for i in ids if i in found), None)
        if prediction is None:
            (answer,) = self.predict([text], PredictOptions(), caller_id, new_key)
            prediction = self.store.get_prediction(answer.request_id)
        predicted = sorted(prediction.labels)
        truth = sorted(
            {label for label in predicted if label not in suggested}
            | {label for label, value in suggested.items() if value >= SUGGESTION_POSITIVE_AT}
        )
        values = ",".join(f"{label}={suggested[label]}" for label in sorted(suggested))
        record = FeedbackRecord(
            request_id=prediction.request_id,
            source="perspective",
            correct=truth == predicted,
            true_labels=truth,
            predicted_labels=predicted,
            predicted_decision=prediction.decision,
            model_version=prediction.model_version,
            policy_id=prediction.policy_id,
            caller_id=caller_id,
            suggested_scores=dict(suggested),
            created_at=_iso(_now()),
            fingerprint=_fingerprint("suggested", values),
        )
        return self.store.add_feedback(record)

    def model_card(self) -> dict[str, Any]:
        """What a caller needs to interpret scores: thresholds, rule and held-out metrics."""
        scorer = self.model.get()
        meta = scorer.metadata
        metrics = {
            f"{split}_{name}": float(figures[name])
            for split, figures in meta.metrics.items()
            if isinstance(figures, dict)
            for name in ("mean_roc_auc", "macro_f1")
            if name in figures
        }
        return {
            "name": meta.model_name,
            "version": scorer.version or "unregistered",
            "labels": list(meta.labels),
            "thresholds": meta.thresholds,
            "block_thresholds": meta.block_thresholds,
            "decision_rule": meta.decision_rule,
            "created_at": _iso(meta.created_at),
            "metrics": metrics,
        }

    def feedback(
        self,
        request_id: str,
        correct: bool,
        true_labels: list[str] | None,
        notes: str | None,
        source: str,
        caller_id: str | None = None,
    ) -> bool:
        """Record feedback on a logged prediction; False when it was already recorded."""
        prediction = self.store.get_prediction(request_id)
        predicted = list(prediction.labels)
        if true_labels is None:
            true_labels = predicted if correct else ([] if predicted else None)
        record = FeedbackRecord(
            request_id=request_id,
            source=source,
            correct=correct,
            true_labels=sorted(true_labels) if true_labels is not None else None,
            predicted_labels=predicted,
            predicted_decision=prediction.decision,
            model_version=prediction.model_version,
            policy_id=prediction.policy_id,
            notes=notes,
            caller_id=caller_id,
            created_at=_iso(_now()),
            fingerprint=_fingerprint(
                str(correct), ",".join(sorted(true_labels or [])), notes or ""
            ),
        )
        return self.store.add_feedback(record)

    def prediction_status(self, request_id: str, caller_id: str) -> PredictionStatus:
        """A caller's prediction as logged, its final outcome, its feedback and its review
        history (the audit lines). Another caller's prediction is ``NotFound``."""
        prediction = self.store.get_prediction(request_id)
        if prediction.caller_id != caller_id:
            raise NotFound(f"no prediction with request_id {request_id}")
        return PredictionStatus(
            prediction,
            outcome_of(prediction),
            self.store.feedback_for(request_id),
            self.audit.history(request_id),
        )

    def reviews(
        self,
        status: ReviewStatus,
        limit: int,
        cursor: str | None,
        explain: bool,
        view: QueueView | None = None,
    ) -> ReviewPage:
        """One page of the review queue in the view's order (priority by default; see
        ``QueueView``), the queue's size (from the aggregates: seconds behind the log) and,
        for pending items, the oldest one's age; with ``explain`` the n-grams behind each
        flagged label (items whose text was not stored have none)."""
        view = view or QueueView()
        if view.moderator:
            view = QueueView(view.order, view.label, view.policy, view.moderator, self._epoch())
        items, next_cursor = self.store.reviews(status, limit, cursor, view)
        explanations: dict[str, Explanations] = {}
        if explain:
            scorer = self.model.get()
            explanations = {
                item.request_id: _explanations(scorer, item.comment_text, item.labels)
                for item in items
                if item.comment_text
            }
        count = self.review_counts.review_count(status)
        oldest = self.store.oldest_pending() if status == "pending" else None
        return ReviewPage(items, explanations, next_cursor, count, oldest)

    def _epoch(self) -> int:
        return int(self.clock().timestamp())

    def claim(self, request_id: str, moderator: str) -> AuditRecord:
        """Hold a pending item for ``moderator`` for REVIEW_LEASE_SECONDS (renewed when
        they claim it again); ``Conflict`` while someone else's lease runs."""
        now = self.clock()
        prediction = self.store.get_prediction(request_id)
        audit = AuditRecord(
            request_id=request_id,
            at=_iso(now),
            action="claim",
            moderator=moderator,
            policy_id=prediction.policy_id,
            lease_expires_at=int(now.timestamp()) + self.settings.review_lease_seconds,
        )
        self.store.claim(request_id, audit, self.settings.audit_table, int(now.timestamp()))
        return audit

    def default_reason(self, action: ReviewAction) -> str | None:
        """The reason a decision without one records: ``ok`` for an approval, else
        ``other`` (each only when it is a configured code)."""
        code = "ok" if action == "approve" else "other"
        return code if code in self.settings.reason_codes else None

    def decide_review(
        self,
        request_id: str,
        action: ReviewAction,
        true_labels: list[str] | None,
        moderator: str,
        notes: str | None,
        reason: str | None = None,
    ) -> tuple[ReviewDecision, bool]:
        """Close a pending review that no other moderator holds; returns the decision and
        whether the model was right. The decision, its feedback and its audit line are
        written together."""
        prediction = self.store.get_prediction(request_id)
        predicted = sorted(prediction.labels)
        if action == "approve":
            truth: list[str] = []
        elif action == "reject":
            truth = predicted
        else:
            truth = sorted(true_labels or [])
        now = self.clock()
        review = ReviewDecision(
            action=action,
            true_labels=truth,
            moderator=moderator,
            reason=reason or self.default_reason(action),
            notes=notes,
            decided_at=_iso(now),
        )
        feedback = FeedbackRecord(
            request_id=request_id,
            source="moderator",
            correct=truth == predicted,
            true_labels=truth,
            predicted_labels=predicted,
            predicted_decision=prediction.decision,
            model_version=prediction.model_version,
            policy_id=prediction.policy_id,
            moderator=moderator,
            notes=notes,
            created_at=review.decided_at,
            fingerprint=_fingerprint(action, ",".join(truth), notes or ""),
        )
        audit = AuditRecord(
            request_id=request_id,
            at=review.decided_at,
            action=action,
            moderator=moderator,
            reason=review.reason,
            true_labels=truth,
            policy_id=prediction.policy_id,
        )
        self.store.decide_review(
            review, feedback, audit, self.settings.audit_table, int(now.timestamp())
        )
        return review, feedback.correct

    def decide_many(
        self,
        request_ids: list[str],
        action: ReviewAction,
        true_labels: list[str] | None,
        moderator: str,
        notes: str | None,
        reason: str | None = None,
    ) -> list[BulkResult]:
        """The same decision on each item, each atomic on its own: one that is gone,
        decided or held by someone else is reported, and the others are decided."""
        results = []
        for request_id in dict.fromkeys(request_ids):
            try:
                review, _ = self.decide_review(
                    request_id, action, true_labels, moderator, notes, reason
                )
                results.append(BulkResult(request_id, "decided", review=review))
            except NotFound as exc:
                results.append(BulkResult(request_id, "not_found", str(exc)))
            except Conflict as exc:
                results.append(BulkResult(request_id, "conflict", str(exc)))
        return results

    def undo_review(self, request_id: str, moderator: str) -> AuditRecord:
        """Reopen ``moderator``'s own decision within REVIEW_UNDO_SECONDS of it: the item is
        pending again and held by them, its feedback is withdrawn, and the undo is in the
        audit log. Someone else's decision is ``Forbidden``; a late undo a ``Conflict``."""
        prediction = self.store.get_prediction(request_id)
        review = prediction.review
        if prediction.review_status != "decided" or review is None:
            raise Conflict(f"{request_id} has no decision to undo")
        if review.moderator != moderator:
            raise Forbidden(f"only {review.moderator}, who decided {request_id}, can undo it")
        now = self.clock()
        since = now - timedelta(seconds=self.settings.review_undo_seconds)
        if review.decided_at < _iso(since):
            raise Conflict(
                f"the undo window ({self.settings.review_undo_seconds} s) for {request_id} "
                "has passed"
            )
        lease = int(now.timestamp()) + self.settings.review_lease_seconds
        audit = AuditRecord(
            request_id=request_id,
            at=_iso(now),
            action="undo",
            moderator=moderator,
            reason=review.reason,
            true_labels=list(review.true_labels),
            policy_id=prediction.policy_id,
            lease_expires_at=lease,
        )
        self.store.reopen_review(prediction, audit, self.settings.audit_table, _iso(since), lease)
        return audit

    def audit_lines(self, first: date, last: date) -> Iterator[AuditRecord]:
        """Every audit line of a range of UTC days, oldest first (the CSV export)."""
        return self.audit.between(first, last)
