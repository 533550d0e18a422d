"""Every fake the tests use, each standing at the edge of a real thing:

- record builders: valid log records with only the fields a test cares about spelled out;
- a tiny real ``Scorer`` (a hand-made eight-word bundle, numpy only) and a model holder
  serving it, so the service runs without training;
- ``InMemoryPredictionLog``: the prediction log's contract (conditional writes, duplicate
  requests, conflicts, the review queue) in a dict, so domain tests need neither moto nor AWS;
- fault injectors wrapping a real boto3 client or store (throttling, failing writes), and a
  Lambda cold start;
- the W&B server calls, recorded instead of sent;
- a webhook receiver on loopback (an app's endpoint), answering the statuses it is told.
"""

import json
import random
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from moderation.errors import Conflict, InvalidCursor, ModelUnavailable, NotFound, StoreUnavailable
from moderation.labels import LABELS
from moderation.model.bundle import BundleMetadata, FeatureSpec
from moderation.model.features import build_key_table, char_ngram_keys
from moderation.model.scorer import Scorer
from moderation.records import FeedbackRecord, PredictionRecord, ReviewDecision, ReviewStatus
from moderation.stores.prediction_log import CacheWrite, DuplicateRequest

# ---------------------------------------------------------------- records

NOW = "2026-11-24T10:00:00.000Z"


def prediction_record(**fields: Any) -> PredictionRecord:
    """A valid logged prediction; ``fields`` override the defaults."""
    values: dict[str, Any] = {
        "request_id": "r-1",
        "comment_text": "hello",
        "input_hash": "0" * 64,
        "scores": dict.fromkeys(LABELS, 0.01),
        "labels": [],
        "decision": "allow",
        "model_name": "tiny",
        "model_version": "v1",
        "latency_ms": 1.0,
        "cached": False,
        "created_at": NOW,
        "caller_id": "anonymous",
        "expires_at": 1_900_000_000,
        "fingerprint": "f",
    }
    return PredictionRecord(**(values | fields))


def feedback_record(**fields: Any) -> FeedbackRecord:
    """A valid feedback record; ``fields`` override the defaults."""
    values: dict[str, Any] = {
        "request_id": "r-1",
        "source": "api",
        "correct": True,
        "predicted_labels": [],
        "predicted_decision": "allow",
        "model_version": "v1",
        "created_at": NOW,
        "fingerprint": "f",
    }
    return FeedbackRecord(**(values | fields))


# ---------------------------------------------------------------- the model

#: word -> logit contribution per label (toxic, severe_toxic, obscene, threat, insult, hate)
TINY_WEIGHTS = {
    "idiot": (6.0, 0.5, 0.5, 0.0, 6.0, 0.0),
    "stupid": (5.0, 0.0, 0.5, 0.0, 4.0, 0.0),
    "kill": (4.0, 1.0, 0.0, 7.0, 0.0, 0.0),
    "fuck": (6.0, 2.0, 7.0, 0.0, 2.0, 0.0),
    "vermin": (3.0, 0.0, 0.0, 0.0, 1.0, 5.0),
    "you": (0.5, 0.0, 0.0, 0.0, 0.5, 0.0),
    "lovely": (-3.0, 0.0, 0.0, 0.0, -2.0, 0.0),
    "hello": (-2.0, 0.0, 0.0, 0.0, -1.0, 0.0),
}
TINY_CHARS = ("idi", "kil")
TINY_THRESHOLDS = dict.fromkeys(LABELS, 0.5)
TINY_BLOCK_THRESHOLDS = dict.fromkeys(LABELS, 0.9)


def tiny_scorer(version: str | None = "v1") -> Scorer:
    """A real ``Scorer`` over a hand-made bundle: eight words and two char n-grams. "you
    idiot" is flagged (insult, toxic), "hello" is not, "I will kill you" blocks."""
    words = list(TINY_WEIGHTS)
    word_coef = np.array([TINY_WEIGHTS[w] for w in words])
    char_coef = np.array([[1.0, 0, 0, 0, 1.0, 0], [0.5, 0, 0, 1.0, 0, 0]])
    keys = np.array([char_ngram_keys(g, len(g), len(g))[0] for g in TINY_CHARS], dtype=np.uint64)
    table_keys, table_values, bits = build_key_table(keys)
    arrays = {
        "idf": np.ones(len(words) + len(TINY_CHARS)),
        "coef": np.vstack([word_coef, char_coef]).astype(np.float32),
        "intercept": np.full(len(LABELS), -3.0),
        "char_table_keys": table_keys,
        "char_table_values": table_values,
    }
    metadata = BundleMetadata(
        model_name="tiny",
        version=version,
        thresholds=TINY_THRESHOLDS,
        block_thresholds=TINY_BLOCK_THRESHOLDS,
        features=FeatureSpec(
            word_ngram_range=(1, 1),
            char_ngram_range=(3, 3),
            n_word=len(words),
            n_char=len(TINY_CHARS),
            char_table_bits=bits,
        ),
        created_at=datetime(2026, 11, 24, tzinfo=UTC),
    )
    return Scorer(metadata, arrays, words, "\n".join(TINY_CHARS))


class FixedModel:
    """Stands in for ``ModelHolder``: serves one scorer, or none (``problem``)."""

    def __init__(self, scorer: Scorer | None = None, problem: str | None = None) -> None:
        self.scorer, self.problem = scorer, problem

    def get(self) -> Scorer:
        if self.scorer is None:
            raise ModelUnavailable(self.problem or "model not loaded")
        return self.scorer

    def status(self) -> tuple[Scorer | None, str | None]:
        return (self.scorer, None) if self.scorer else (None, self.problem or "not loaded")


# ---------------------------------------------------------------- the prediction log


class InMemoryPredictionLog:
    """``PredictionLog``'s contract in memory: a prediction is written once (a repeated
    request id is ``DuplicateRequest`` and writes nothing), feedback once per source (the
    same again is a no-op, different feedback a ``Conflict``), a review decided once."""

    def __init__(self, reachable: bool = True) -> None:
        self.predictions: dict[str, PredictionRecord] = {}
        self.feedback: dict[tuple[str, str], FeedbackRecord] = {}
        self.cache: dict[str, list[float]] = {}
        self.reachable = reachable

    def _up(self) -> None:
        if not self.reachable:
            raise StoreUnavailable("prediction store unavailable (fake)")

    def ping(self) -> bool:
        return self.reachable

    def cached_scores(self, cache_keys: list[str]) -> dict[str, list[float]]:
        if not self.reachable:
            return {}
        return {k: self.cache[k] for k in cache_keys if k in self.cache}

    def log(self, predictions: list[PredictionRecord], cache_writes: list[CacheWrite]) -> None:
        self._up()
        if any(p.request_id in self.predictions for p in predictions):
            raise DuplicateRequest
        self.predictions |= {p.request_id: p for p in predictions}
        for key, scores, _expires in cache_writes:
            self.cache[key] = scores

    def get_predictions(self, request_ids: list[str]) -> dict[str, PredictionRecord]:
        self._up()
        return {rid: self.predictions[rid] for rid in request_ids if rid in self.predictions}

    def get_prediction(self, request_id: str) -> PredictionRecord:
        self._up()
        if request_id not in self.predictions:
            raise NotFound(f"no prediction with request_id {request_id}")
        return self.predictions[request_id]

    def add_feedback(self, feedback: FeedbackRecord) -> bool:
        self._up()
        key = (feedback.request_id, feedback.source)
        existing = self.feedback.get(key)
        if existing is None:
            self.feedback[key] = feedback
            return True
        if existing.fingerprint == feedback.fingerprint:
            return False
        raise Conflict(f"different feedback from {feedback.source} is already recorded")

    def reviews(
        self, status: ReviewStatus, limit: int, cursor: str | None = None, queue: Any = None
    ) -> tuple[list[PredictionRecord], str | None]:
        """Oldest first (the fake has no priority index)."""
        self._up()
        queue = sorted(
            (p for p in self.predictions.values() if p.review_status == status),
            key=lambda p: p.created_at,
        )
        start = 0
        if cursor:
            if not cursor.isdigit():
                raise InvalidCursor("is not a cursor this API issued")
            start = int(cursor)
        page = queue[start : start + limit]
        more = start + limit < len(queue)
        return page, str(start + limit) if more else None

    def review_count(self, status: ReviewStatus) -> int:
        """The fake is its own review counter (in production: the aggregates)."""
        return sum(p.review_status == status for p in self.predictions.values())

    def oldest_pending(self) -> str | None:
        pending = [p.created_at for p in self.predictions.values() if p.review_status == "pending"]
        return min(pending, default=None)

    def decide_review(
        self, review: ReviewDecision, feedback: FeedbackRecord, *_audit: Any, **_now: Any
    ) -> None:
        """As the store's, less the audit line and the lease check."""
        self._up()
        prediction = self.get_prediction(feedback.request_id)
        if prediction.review_status != "pending":
            raise Conflict(f"{feedback.request_id} is not pending review")
        if (feedback.request_id, feedback.source) in self.feedback:
            raise Conflict(f"{feedback.request_id} is not pending review")
        self.predictions[feedback.request_id] = prediction.model_copy(
            update={"review_status": "decided", "review": review}
        )
        self.feedback[(feedback.request_id, feedback.source)] = feedback


# ---------------------------------------------------------------- fault injectors

DYNAMODB_CALLS = ("put_item", "transact_write_items", "batch_get_item", "get_item", "query")


def throttled(operation: str, code: str = "ThrottlingException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, operation)


class FailingWrites:
    """A real DynamoDB client whose next ``failures`` writes fail (throughput exceeded)."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real, self.failures = real, failures

    def _maybe_fail(self, operation: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise throttled(operation, "ProvisionedThroughputExceededException")

    def put_item(self, **kwargs: Any) -> Any:
        self._maybe_fail("PutItem")
        return self.real.put_item(**kwargs)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self._maybe_fail("TransactWriteItems")
        return self.real.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class FlakyClient:
    """A real DynamoDB client failing a share of its calls at random (throttling), as the
    SDK would surface it after its own retries."""

    def __init__(self, real: Any, share: float, seed: int = 5) -> None:
        self.real, self.share, self.random = real, share, random.Random(seed)
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.real, name)
        if name not in DYNAMODB_CALLS:
            return call

        def maybe_failing(**kwargs: Any) -> Any:
            if self.random.random() < self.share:
                self.failed += 1
                raise throttled(name)
            return call(**kwargs)

        return maybe_failing


class FlakyAggregates:
    """The aggregate store failing its next ``failures`` batch writes, at the edge of the
    handler."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real, self.failures = real, failures

    def apply_batch(self, *args: Any) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("throttled")
        return self.real.apply_batch(*args)

    def __getattr__(self, name: str) -> Any:  # model records and reads go to the real store
        return getattr(self.real, name)


# ---------------------------------------------------------------- Lambda containers


def forget_container_state() -> None:
    """A cold start of the aggregator: its container-lifetime store, registry and memory of
    recorded model versions are dropped."""
    from aggregator import counting

    for factory in (counting.get_aggregates, counting.get_registry, counting.get_model_recorder):
        factory.cache_clear()


# ---------------------------------------------------------------- W&B


class FakeServerRegistry:
    """Records the W&B server calls (link to the registered model, move an alias)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def link(self, entry: Any, uri: str) -> None:
        self.calls.append(("link", entry.version, uri))

    def set_alias(self, entry: Any, alias: str) -> None:
        self.calls.append(("alias", entry.version, alias))


# ---------------------------------------------------------------- review items


def queued(service, request_id: str, created_at: str, policy_id: str | None = None, **scores):
    """A pending review item logged as the predict path logs one (its scores given)."""
    values = dict.fromkeys(LABELS, 0.05) | scores
    labels = [label for label, score in values.items() if score >= 0.5]
    record = prediction_record(
        request_id=request_id,
        scores=values,
        labels=labels,
        decision="review",
        review_status="pending",
        created_at=created_at,
        policy_id=policy_id,
        policy_version=1 if policy_id else None,
    )
    service.store.log([record])
    return record


# ---------------------------------------------------------------- webhooks


class Receiver:
    """An app's webhook endpoint on loopback: answers each request with the next status
    of ``statuses`` (then 200), and keeps what it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event_ids(self) -> list[str]:
        return [json.loads(body)["id"] for _, body in self.got]
