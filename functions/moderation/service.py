"""The moderation domain service: score, cache, log, feedback, reviews.

Plain functions and classes over two ports (the model holder and the store); the API routes
only validate input, call these and shape the response.
"""

import hashlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from moderation.bundle import Scorer, load_bundle
from moderation.errors import (
    BundleError,
    IdempotencyMismatch,
    ModelUnavailable,
    RegistryError,
)
from moderation.labels import LABELS
from moderation.registry import ModelRegistry, RegistryEntry
from moderation.settings import Settings
from moderation.store import DuplicateRequest, PredictionStore
from moderation.text import normalize_text, text_hash

logger = logging.getLogger(__name__)
_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d7f4e-8a53-4f53-9d0e-2b1c1f6a9e11")


class ModelHolder:
    """Loads the served model once per container; after a failure, retries at most every
    ``retry_seconds`` so a model promoted later is picked up without a restart.

    A warm container re-reads the alias every ``model_refresh_seconds``: a newly promoted
    version is loaded and swapped in; one that fails to load (corrupt, mismatched) is refused
    with a logged error and the version already loaded keeps serving."""

    def __init__(
        self, settings: Settings, registry: ModelRegistry | None = None, retry_seconds: float = 30
    ) -> None:
        self.settings = settings
        self.registry = registry or ModelRegistry(settings.model_bucket)
        self.retry_seconds = retry_seconds
        self._scorer: Scorer | None = None
        self._error: str | None = None
        self._failed_at = 0.0
        self._checked_at = 0.0
        self._refused: str | None = None
        self._lock = threading.Lock()

    @property
    def target(self) -> str:
        return self.settings.model_version or self.settings.model_alias

    def get(self) -> Scorer:
        if self._scorer is not None:
            if self._refresh_due() and self._lock.acquire(blocking=False):
                try:
                    self._refresh()
                finally:
                    self._lock.release()
            return self._scorer
        with self._lock:
            if self._scorer is None and time.monotonic() - self._failed_at >= self.retry_seconds:
                self._load()
        if self._scorer is None:
            raise ModelUnavailable(self._error or "model not loaded")
        return self._scorer

    def _refresh_due(self) -> bool:
        every = self.settings.model_refresh_seconds
        return bool(every) and time.monotonic() - self._checked_at >= every

    def _download(self, entry: RegistryEntry) -> Scorer:
        folder = self.registry.download(entry, self.settings.model_cache_dir)
        return load_bundle(folder, entry.bundle_sha256, verified=True)

    def _load(self) -> None:
        try:
            entry = self.registry.resolve(self.target)
            self._scorer = self._download(entry)
            self._checked_at = time.monotonic()
            self._error = None
            logger.info("serving model %s %s", entry.model_name, entry.version)
        except (RegistryError, BundleError) as exc:
            self._error = f"no model for {self.target!r}: {exc}"
        except Exception as exc:  # noqa: BLE001 - S3 unreachable etc.: say why, never crash
            self._error = f"no model for {self.target!r}: {type(exc).__name__}: {exc}"
        if self._scorer is None:
            self._failed_at = time.monotonic()
            logger.error(self._error)

    def _refresh(self) -> None:
        self._checked_at = time.monotonic()
        current = self._scorer.version if self._scorer else None
        try:
            entry = self.registry.resolve(self.target)
        except Exception as exc:  # noqa: BLE001 - the registry is unreachable: keep serving
            logger.warning("could not re-read %r, still serving %s: %s", self.target, current, exc)
            return
        if entry.version in (current, self._refused):
            return
        try:
            scorer = self._download(entry)
        except Exception as exc:  # noqa: BLE001 - a bad bundle never replaces a good one
            self._refused = entry.version
            logger.error(
                "refused model %s behind %r (%s: %s); still serving %s",
                entry.version, self.target, type(exc).__name__, exc, current,
            )  # fmt: skip
            return
        self._scorer, self._refused = scorer, None
        logger.info("now serving model %s %s (was %s)", entry.model_name, entry.version, current)

    def status(self) -> tuple[Scorer | None, str | None]:
        try:
            return self.get(), None
        except ModelUnavailable as exc:
            return None, str(exc)


@dataclass(frozen=True)
class PredictOptions:
    thresholds: dict[str, float] | None = None
    explain: bool = False
    store_text: bool = True

    def fingerprint(self) -> str:
        return json.dumps(
            {"t": self.thresholds or {}, "s": self.store_text}, sort_keys=True, default=str
        )


@dataclass
class Prediction:
    request_id: str
    scores: dict[str, float]
    labels: list[str]
    decision: str
    model_name: str
    model_version: str
    cached: bool
    latency_ms: float
    explanations: dict[str, list[dict[str, Any]]] | None = None


@dataclass
class Timings:
    """Where a request's time went (the API benchmark splits latency with these)."""

    model_s: float = 0.0
    store_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _explanations(scorer: Scorer, text: str, labels: list[str]) -> dict[str, list[dict]]:
    return {
        label: [item.model_dump() for item in items]
        for label, items in scorer.explain(text, labels).items()
    }


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class ModerationService:
    def __init__(self, model: ModelHolder, store: PredictionStore, settings: Settings) -> None:
        self.model = model
        self.store = store
        self.settings = settings

    def predict(
        self,
        texts: list[str],
        options: PredictOptions,
        caller_id: str,
        idempotency_key: str | None = None,
        timings: Timings | None = None,
    ) -> list[Prediction]:
        """Score comments (cache first), log every one, and only then return them."""
        started = time.perf_counter()
        timings = timings if timings is not None else Timings()
        scorer = self.model.get()
        version = scorer.version or "unregistered"
        normalized = [normalize_text(text) for text in texts]
        hashes = [text_hash(n) for n in normalized]
        cache_keys = [f"{h}#{version}" for h in hashes]
        if idempotency_key:
            request_ids = [
                str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{caller_id}:{idempotency_key}:{i}"))
                for i in range(len(texts))
            ]
        else:
            request_ids = [str(uuid.uuid4()) for _ in texts]

        t0 = time.perf_counter()
        cached = self.store.cached_scores(cache_keys)
        t1 = time.perf_counter()
        # one pass for a batch's misses; a lone comment takes the cheaper single path
        misses = {k: t for k, t in zip(cache_keys, normalized, strict=True) if k not in cached}
        if len(misses) > 1:
            scores = scorer.score_many_normalized(list(misses.values()))
        else:
            scores = [scorer.score_normalized(text) for text in misses.values()]
        scored: dict[str, np.ndarray] = dict(zip(misses, scores, strict=True))
        t2 = time.perf_counter()
        override = (
            np.array(
                [
                    options.thresholds.get(label, t)
                    for label, t in zip(LABELS, scorer.thresholds, strict=True)
                ]
            )
            if options.thresholds
            else None
        )
        now = _now()
        expires = int((now + timedelta(days=self.settings.text_retention_days)).timestamp())
        cache_expires = int((now + timedelta(days=self.settings.cache_ttl_days)).timestamp())
        predictions, records, cache_hits = [], [], {}
        first_seen: set[str] = set()
        options_fingerprint = options.fingerprint()
        for i, key in enumerate(cache_keys):
            is_hit = key in cached or key in first_seen
            first_seen.add(key)
            values = np.asarray(cached[key]) if key in cached else scored[key]
            labels, decision = scorer.decide(values, override)
            scores = {label: round(float(s), 6) for label, s in zip(LABELS, values, strict=True)}
            latency_ms = round((time.perf_counter() - started) * 1000, 3)
            prediction = Prediction(
                request_id=request_ids[i],
                scores=scores,
                labels=labels,
                decision=decision,
                model_name=scorer.model_name,
                model_version=version,
                cached=is_hit,
                latency_ms=latency_ms,
            )
            predictions.append(prediction)
            records.append(
                {
                    "type": "prediction",
                    "request_id": request_ids[i],
                    "comment_text": texts[i] if options.store_text else None,
                    "text_stored": options.store_text,
                    "input_hash": hashes[i],
                    "scores": scores,
                    "labels": labels,
                    "decision": decision,
                    "model_name": scorer.model_name,
                    "model_version": version,
                    "latency_ms": latency_ms,
                    "cached": is_hit,
                    "created_at": _iso(now),
                    "caller_id": caller_id,
                    "expires_at": expires,
                    "threshold_overrides": options.thresholds,
                    "review_status": "pending" if decision == "review" else None,
                    "fingerprint": _fingerprint(hashes[i], options_fingerprint),
                }
            )
            cache_hits[key] = cache_hits.get(key, 0) + (1 if key in cached else 0)
        cache_writes = [
            (
                key,
                [float(s) for s in (cached[key] if key in cached else scored[key])],
                hits,
                cache_expires,
            )
            for key, hits in cache_hits.items()
        ]
        t3 = time.perf_counter()
        try:
            self.store.log(records, cache_writes)
        except DuplicateRequest:
            predictions = self._replay(records)
        t4 = time.perf_counter()
        timings.model_s += t2 - t1
        timings.store_s += (t1 - t0) + (t4 - t3)
        if options.explain:
            for prediction, text in zip(predictions, texts, strict=True):
                prediction.explanations = _explanations(scorer, text, prediction.labels)
        return predictions

    def explain_reviews(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Review items with the n-grams behind each flagged label (served model; items whose
        text was not stored have none)."""
        scorer = self.model.get()
        return [
            {**item, "explanations": _explanations(scorer, item["comment_text"], item["labels"])}
            if item.get("comment_text")
            else item
            for item in items
        ]

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

    def _replay(self, records: list[dict[str, Any]]) -> list[Prediction]:
        """The first response to a retried Idempotency-Key, rebuilt from the log."""
        stored = self.store.get_predictions([r["request_id"] for r in records])
        replayed = []
        for record in records:
            item = stored.get(record["request_id"])
            if item is None or item.get("fingerprint") != record["fingerprint"]:
                raise IdempotencyMismatch(
                    "Idempotency-Key was already used with a different request body"
                )
            replayed.append(
                Prediction(
                    request_id=item["request_id"],
                    scores={label: float(item["scores"][label]) for label in LABELS},
                    labels=list(item["labels"]),
                    decision=item["decision"],
                    model_name=item["model_name"],
                    model_version=item["model_version"],
                    cached=bool(item["cached"]),
                    latency_ms=float(item["latency_ms"]),
                )
            )
        return replayed

    def feedback(
        self,
        request_id: str,
        correct: bool,
        true_labels: list[str] | None,
        notes: str | None,
        source: str,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Record feedback on a logged prediction; False when it was already recorded."""
        prediction = self.store.get_prediction(request_id)
        predicted = list(prediction["labels"])
        if true_labels is None:
            true_labels = predicted if correct else ([] if predicted else None)
        record = {
            "type": "feedback",
            "request_id": request_id,
            "source": source,
            "correct": correct,
            "true_labels": sorted(true_labels) if true_labels is not None else None,
            "predicted_labels": predicted,
            "predicted_decision": prediction["decision"],
            "model_version": prediction["model_version"],
            "notes": notes,
            "created_at": _iso(_now()),
            "fingerprint": _fingerprint(
                str(correct), ",".join(sorted(true_labels or [])), notes or ""
            ),
            **(extra or {}),
        }
        return self.store.add_feedback(request_id, record)

    def decide_review(
        self,
        request_id: str,
        action: str,
        true_labels: list[str] | None,
        moderator: str,
        notes: str | None,
    ) -> dict[str, Any]:
        prediction = self.store.get_prediction(request_id)
        predicted = sorted(prediction["labels"])
        if action == "approve":
            truth: list[str] = []
        elif action == "reject":
            truth = predicted
        else:
            truth = sorted(true_labels or [])
        review = {
            "action": action,
            "true_labels": truth,
            "moderator": moderator,
            "notes": notes,
            "decided_at": _iso(_now()),
        }
        feedback = {
            "type": "feedback",
            "request_id": request_id,
            "source": "moderator",
            "correct": truth == predicted,
            "true_labels": truth,
            "predicted_labels": predicted,
            "predicted_decision": prediction["decision"],
            "model_version": prediction["model_version"],
            "moderator": moderator,
            "notes": notes,
            "created_at": review["decided_at"],
            "fingerprint": _fingerprint(action, ",".join(truth), notes or ""),
        }
        self.store.decide_review(request_id, review, feedback)
        return {**review, "request_id": request_id, "correct": feedback["correct"]}
