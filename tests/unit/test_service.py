"""The moderation service's rules with the tiny scorer and the in-memory prediction log
(tests/fakes.py): no data, no moto, milliseconds a test."""

import pytest

from moderation.errors import (
    Conflict,
    IdempotencyMismatch,
    InvalidCursor,
    ModelUnavailable,
    NotFound,
    StoreUnavailable,
)
from moderation.labels import LABELS
from moderation.service import ModerationService, PredictOptions
from moderation.settings import Settings
from tests.fakes import FixedModel, InMemoryPredictionLog, tiny_scorer

DEFAULTS = PredictOptions()


@pytest.fixture
def log() -> InMemoryPredictionLog:
    return InMemoryPredictionLog()


@pytest.fixture
def service(log: InMemoryPredictionLog) -> ModerationService:
    return ModerationService(FixedModel(tiny_scorer()), log, Settings(), log)


def test_every_answered_prediction_is_logged_with_its_decision(service, log):
    # WHEN a polite and a rude comment are scored in one batch
    polite, rude = service.predict(["hello there", "you idiot"], DEFAULTS, "caller")
    # THEN the answers are in input order and each one is in the log as answered
    assert polite.decision == "allow" and polite.labels == []
    assert rude.decision in ("review", "block") and {"toxic", "insult"} <= set(rude.labels)
    for answer in (polite, rude):
        record = log.predictions[answer.request_id]
        assert record.decision == answer.decision and record.labels == answer.labels
        assert record.caller_id == "caller" and record.model_version == "v1"
    assert log.predictions[rude.request_id].review_status == (
        "pending" if rude.decision == "review" else None
    )


def test_a_repeated_comment_is_a_cache_hit_with_the_same_scores(service):
    (first,) = service.predict(["You  IDIOT"], DEFAULTS, "caller")
    (again,) = service.predict(["you idiot"], DEFAULTS, "caller")
    assert not first.cached and again.cached
    assert again.scores == first.scores and again.request_id != first.request_id


def test_store_text_false_logs_the_hash_never_the_text(service, log):
    (answer,) = service.predict(["you idiot"], PredictOptions(store_text=False), "caller")
    record = log.predictions[answer.request_id]
    assert record.comment_text is None and not record.text_stored and len(record.input_hash) == 64


def test_threshold_overrides_change_the_decision_not_the_scores(service):
    (default,) = service.predict(["you idiot"], DEFAULTS, "caller")
    lenient = PredictOptions(thresholds=dict.fromkeys(LABELS, 1.0))
    (relaxed,) = service.predict(["you idiot"], lenient, "caller")
    assert relaxed.scores == default.scores
    assert relaxed.labels == [] and relaxed.decision in ("allow", "block")


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(service, log):
    (first,) = service.predict(["you idiot"], DEFAULTS, "caller", idempotency_key="k1")
    (retry,) = service.predict(["you idiot"], DEFAULTS, "caller", idempotency_key="k1")
    assert retry.request_id == first.request_id and len(log.predictions) == 1
    with pytest.raises(IdempotencyMismatch):
        service.predict(["hello"], DEFAULTS, "caller", idempotency_key="k1")
    # another caller's same key is another request
    (other,) = service.predict(["you idiot"], DEFAULTS, "someone else", idempotency_key="k1")
    assert other.request_id != first.request_id


def test_feedback_counts_once_and_contradicting_feedback_is_a_conflict(service):
    (answer,) = service.predict(["you idiot"], DEFAULTS, "caller")
    assert service.feedback(answer.request_id, True, None, None, source="api") is True
    assert service.feedback(answer.request_id, True, None, None, source="api") is False
    with pytest.raises(Conflict):
        service.feedback(answer.request_id, False, [], "wrong", source="api")
    with pytest.raises(NotFound):
        service.feedback("no-such-id", True, None, None, source="api")


def test_a_review_decision_closes_the_item_and_is_recorded_as_feedback(service, log):
    # GIVEN a comment sent to review (every label flagged, none blocking)
    flag_all = PredictOptions(thresholds=dict.fromkeys(LABELS, 0.0))
    (answer,) = service.predict(["hello there"], flag_all, "caller")
    assert answer.decision == "review"
    assert [i.request_id for i in service.reviews("pending", 10, None, False).items] == [
        answer.request_id
    ]
    # WHEN a moderator approves it
    review, correct = service.decide_review(answer.request_id, "approve", None, "alice", None)
    # THEN it leaves the queue, the model was wrong (it flagged), and it cannot be decided twice
    assert review.true_labels == [] and correct is False
    assert service.reviews("pending", 10, None, False).count == 0
    assert service.reviews("decided", 10, None, False).count == 1
    feedback = log.feedback[(answer.request_id, "moderator")]
    assert feedback.moderator == "alice" and feedback.correct is False
    with pytest.raises(Conflict):
        service.decide_review(answer.request_id, "reject", None, "bob", None)


def test_review_pages_explain_flagged_labels_and_refuse_foreign_cursors(service):
    flag_all = PredictOptions(thresholds=dict.fromkeys(LABELS, 0.0))
    ids = [p.request_id for p in service.predict(["hello", "you there"], flag_all, "c")]
    page = service.reviews("pending", 1, None, explain=True)
    assert len(page.items) == 1 and page.count == 2 and page.next_cursor
    assert set(page.explanations[page.items[0].request_id]) == set(page.items[0].labels)
    rest = service.reviews("pending", 1, page.next_cursor, explain=False)
    assert {page.items[0].request_id, rest.items[0].request_id} == set(ids)
    with pytest.raises(InvalidCursor):
        service.reviews("pending", 1, "not-ours", explain=False)


def test_health_names_what_is_missing():
    log = InMemoryPredictionLog()
    healthy = ModerationService(FixedModel(tiny_scorer()), log, Settings(), log)
    assert healthy.health().ok and healthy.health().model_version == "v1"
    no_model = ModerationService(FixedModel(problem="alias not set"), log, Settings(), log)
    assert not no_model.health().ok and no_model.health().model_problem == "alias not set"
    with pytest.raises(ModelUnavailable):
        no_model.predict(["hello"], DEFAULTS, "caller")
    down = InMemoryPredictionLog(reachable=False)
    store_down = ModerationService(FixedModel(tiny_scorer()), down, Settings(), down)
    assert not store_down.health().ok and not store_down.health().store_reachable
    with pytest.raises(StoreUnavailable):
        store_down.predict(["hello"], DEFAULTS, "caller")
