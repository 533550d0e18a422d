"""The moderation API through FastAPI's test client, against moto tables from template.yaml."""

import json

import pytest

from moderation.labels import LABELS
from tests.assertions import assert_error_shape
from tests.fakes import FailingWrites

INSULT = "shut up, you stupid idiot, nobody wants your edits"
POLITE = "I added a citation to the second paragraph."


def test_health_reports_model_and_store(client):
    body = client.get("/health").json()
    assert body == {
        "status": "ok",
        "model": "tfidf-nblr",
        "model_version": "v1",
        "reason": None,
        "store": "reachable",
    }


def test_without_a_model_health_says_why_and_predict_is_503(empty_stack, make_client):
    client = make_client(empty_stack.service())
    health = client.get("/health")
    assert health.status_code == 503
    assert "alias 'production' is not set" in health.json()["reason"]
    response = client.post("/predict", json={"comment_text": POLITE})
    assert_error_shape(response, 503, "model_unavailable")
    assert response.headers["Retry-After"]
    assert empty_stack.items() == []


def test_predict_returns_the_known_shape_and_logs_it(client, stack):
    response = client.post("/predict", json={"comment_text": INSULT}, headers={"x-api-key": "k1"})
    assert response.status_code == 200
    body = response.json()
    assert set(body["scores"]) == set(LABELS)
    assert all(0 <= s <= 1 for s in body["scores"].values())
    assert body["model_version"] == "v1" and body["cached"] is False
    assert body["decision"] in ("review", "block") and "insult" in body["labels"]
    (item,) = stack.items("prediction")
    assert item["request_id"] == body["request_id"]
    assert item["comment_text"] == INSULT
    assert item["scores"] == pytest.approx(body["scores"], abs=1e-6)
    assert item["labels"] == body["labels"] and item["decision"] == body["decision"]
    assert item["caller_id"].startswith("key:") and "k1" not in item["caller_id"]
    for field in ("input_hash", "model_name", "latency_ms", "created_at", "expires_at"):
        assert item[field]


def test_a_comment_in_another_language_goes_to_review_with_its_language(client, stack):
    # GIVEN a German insult, which the English model cannot judge
    text = "Du bist so ein dummer Mensch und ein Lügner"
    body = client.post("/predict", json={"comment_text": text}).json()
    # THEN it is routed by UNSUPPORTED_LANGUAGE_DECISION (review), with the language and why
    assert body["language"]["code"] == "de" and body["language"]["confidence"] >= 0.75
    assert body["decision"] == "review" and body["reasons"][-1] == "unsupported_language:de"
    (item,) = stack.items("prediction")
    assert item["language"]["code"] == "de" and item["review_status"] == "pending"
    # AND an English comment keeps the model's decision, its language given too
    english = client.post("/predict", json={"comment_text": INSULT}).json()
    assert english["language"]["code"] == "en" and english["decision"] in ("review", "block")
    assert not [r for r in english["reasons"] if r.startswith("unsupported")]


def test_store_text_false_logs_the_hash_never_the_text(client, stack):
    client.post("/predict", json={"comment_text": INSULT, "store_text": False})
    (item,) = stack.items("prediction")
    assert "comment_text" not in item and item["text_stored"] is False
    assert len(item["input_hash"]) == 64
    assert INSULT not in json.dumps(stack.dynamodb.scan(TableName=stack.settings.predictions_table))


def test_repeated_comment_is_served_from_cache_and_still_logged(client, stack):
    first = client.post("/predict", json={"comment_text": "You are an IDIOT"}).json()
    (written,) = stack.cache_items()
    second = client.post("/predict", json={"comment_text": "you are an   idiot"}).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["scores"] == second["scores"]
    assert first["request_id"] != second["request_id"]
    assert sorted(i["cached"] for i in stack.items("prediction")) == [False, True]
    (cache,) = stack.cache_items()
    assert cache["cache_key"].endswith("#v1") and "comment_text" not in cache
    # the hit read the cache and wrote nothing to it (the aggregates count hits)
    assert cache == written


def test_a_batch_writes_its_new_scores_to_the_cache_in_one_call(stack, make_client):
    calls = []

    class Recording:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(stack.dynamodb, name)

    client = make_client(stack.service(Recording()))
    texts = [f"comment number {i} for the cache" for i in range(20)]
    assert client.post("/predict/batch", json={"comments": texts}).status_code == 200
    assert calls.count("batch_write_item") == 1 and "update_item" not in calls
    assert len(stack.cache_items()) == 20
    calls.clear()
    assert client.post("/predict/batch", json={"comments": texts}).status_code == 200
    assert "batch_write_item" not in calls  # every comment a hit: the cache is not rewritten


def test_threshold_overrides_and_explanations(client):
    everything = dict.fromkeys(LABELS, 0.0)
    body = client.post("/predict", json={"comment_text": POLITE, "thresholds": everything}).json()
    assert body["labels"] == list(LABELS) and body["decision"] != "allow"
    explained = client.post("/predict", json={"comment_text": INSULT, "explain": True}).json()
    assert set(explained["explanations"]) == set(explained["labels"])
    spans = [s for items in explained["explanations"].values() for i in items for s in i["spans"]]
    assert any("idiot" in INSULT[a:b].lower() for a, b in spans)


def test_batch_answers_in_input_order_and_logs_each(client, stack):
    comments = [POLITE, INSULT, POLITE, "have a nice day"]
    body = client.post("/predict/batch", json={"comments": comments}).json()
    assert len(body["results"]) == 4
    assert [r["cached"] for r in body["results"]] == [False, False, True, False]
    assert body["results"][0]["scores"] == body["results"][2]["scores"]
    assert body["results"][1]["scores"]["insult"] > body["results"][0]["scores"]["insult"]
    logged = {i["request_id"]: i for i in stack.items("prediction")}
    assert [logged[r["request_id"]]["comment_text"] for r in body["results"]] == comments


def test_feedback_is_recorded_once(client, stack):
    request_id = client.post("/predict", json={"comment_text": INSULT}).json()["request_id"]
    payload = {"request_id": request_id, "correct": False, "true_labels": ["toxic"]}
    first = client.post("/feedback", json=payload)
    again = client.post("/feedback", json=payload)
    assert first.status_code == again.status_code == 201
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    (feedback,) = stack.items("feedback")
    assert feedback["true_labels"] == ["toxic"] and feedback["model_version"] == "v1"
    changed = client.post("/feedback", json={**payload, "true_labels": ["threat"]})
    assert_error_shape(changed, 409, "conflict")


def test_feedback_on_unknown_request_is_404(client, stack):
    response = client.post("/feedback", json={"request_id": "nope", "correct": True})
    assert_error_shape(response, 404, "not_found")
    assert stack.items() == []


def test_review_queue_oldest_first_and_decisions_leave_it(client, stack, drain_stream):
    # GIVEN three predictions forced into review (thresholds at 0, blocks impossible)
    ids = []
    for text in ("first comment", "second comment", "third comment"):
        body = client.post(
            "/predict", json={"comment_text": text, "thresholds": {"toxic": 0.0}}
        ).json()
        if body["decision"] == "review":
            ids.append(body["request_id"])
    assert len(ids) == 3
    drain_stream()  # the queue's size comes from the aggregates
    oldest = {"order": "oldest"}
    page = client.get("/reviews", params={"status": "pending", "limit": 2, **oldest}).json()
    assert [i["request_id"] for i in page["items"]] == ids[:2] and page["count"] == 3
    rest = client.get("/reviews", params={"cursor": page["next_cursor"], **oldest}).json()
    assert [i["request_id"] for i in rest["items"]] == ids[2:]
    # WHEN a moderator approves the oldest
    decided = client.post(f"/reviews/{ids[0]}", json={"action": "approve", "moderator": "alice"})
    assert decided.status_code == 200 and decided.json()["true_labels"] == []
    # THEN it leaves the queue, is recorded as feedback, and cannot be decided twice
    drain_stream()
    pending = client.get("/reviews", params=oldest).json()
    assert [i["request_id"] for i in pending["items"]] == ids[1:] and pending["count"] == 2
    (feedback,) = stack.items("feedback")
    assert feedback["source"] == "moderator" and feedback["moderator"] == "alice"
    assert feedback["correct"] is False
    again = client.post(f"/reviews/{ids[0]}", json={"action": "reject", "moderator": "bob"})
    assert_error_shape(again, 409)
    unknown = client.post("/reviews/missing", json={"action": "approve", "moderator": "bob"})
    assert_error_shape(unknown, 404)


def test_model_card_gives_the_thresholds_and_rule_a_caller_needs(client, scorer):
    card = client.get("/model")
    assert card.status_code == 200
    body = card.json()
    assert body["thresholds"] == pytest.approx(scorer.metadata.thresholds)
    assert body["block_thresholds"] == pytest.approx(scorer.metadata.block_thresholds)
    assert body["labels"] == list(LABELS) and "block if any label" in body["decision_rule"]
    assert 0.5 < body["metrics"]["validation_mean_roc_auc"] <= 1.0


def test_review_queue_with_explanations_shows_the_ngrams_behind_each_label(client):
    # GIVEN a mildly rude comment forced into review (a block never queues)
    for text in ("that edit was silly", "your argument is weak and lame", "please stop this"):
        body = client.post("/predict", json={"comment_text": text, "thresholds": {"toxic": 0.0}})
        if body.json()["decision"] == "review":
            break
    assert body.json()["decision"] == "review", body.json()["scores"]
    # WHEN the queue is read with explain=true
    page = client.get("/reviews", params={"explain": "true"}).json()
    (item,) = [i for i in page["items"] if i["comment_text"] == text]
    # THEN each flagged label has n-grams whose spans point into the stored text
    assert item["explanations"]["toxic"], "no n-gram explains the flagged label"
    for entry in item["explanations"]["toxic"]:
        for start, end in entry["spans"]:
            assert text[start:end].lower() == entry["ngram"]
    assert client.get("/reviews").json()["items"][0]["explanations"] is None


def test_idempotency_key_returns_first_response_without_second_log(client, stack):
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/predict", json={"comment_text": INSULT}, headers=headers).json()
    retry = client.post("/predict", json={"comment_text": INSULT}, headers=headers).json()
    assert retry == first
    assert len(stack.items("prediction")) == 1
    other = client.post("/predict", json={"comment_text": POLITE}, headers=headers)
    assert_error_shape(other, 422, "idempotency_key_reused")
    batch_headers = {"Idempotency-Key": "batch-7"}
    body = {"comments": [POLITE, INSULT]}
    assert (
        client.post("/predict/batch", json=body, headers=batch_headers).json()
        == client.post("/predict/batch", json=body, headers=batch_headers).json()
    )
    assert len(stack.items("prediction")) == 3


def test_store_failure_answers_503_and_nothing_unlogged_is_returned(stack, make_client):
    failing = FailingWrites(stack.dynamodb, failures=1)
    client = make_client(stack.service(failing))
    response = client.post("/predict", json={"comment_text": INSULT})
    assert_error_shape(response, 503, "store_unavailable")
    assert response.headers["Retry-After"]
    assert stack.items() == []
    recovered = client.post("/predict", json={"comment_text": INSULT})
    assert recovered.status_code == 200
    assert [i["request_id"] for i in stack.items("prediction")] == [recovered.json()["request_id"]]
    # a batch fails whole: no prediction of it is logged
    failing.failures = 1
    batch = client.post("/predict/batch", json={"comments": [POLITE, INSULT, "third"]})
    assert_error_shape(batch, 503, "store_unavailable")
    assert len(stack.items("prediction")) == 1


LONG = "a" * 10_001


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "field"),
    [
        ("/predict", {"comment_text": ""}, None, 422, "comment_text"),
        ("/predict", {"comment_text": "  \n\t "}, None, 422, "comment_text"),
        ("/predict", {"comment_text": LONG}, None, 422, "comment_text"),
        ("/predict", {"comment_text": 42}, None, 422, "comment_text"),
        ("/predict", {}, None, 422, "comment_text"),
        ("/predict", {"comment_text": "hi", "colour": "red"}, None, 422, "colour"),
        ("/predict", {"comment_text": "hi", "thresholds": {"rude": 0.5}}, None, 422, "thresholds"),
        ("/predict", {"comment_text": "hi", "thresholds": {"toxic": 2}}, None, 422, "thresholds"),
        ("/predict", {"comment_text": "hi", "explain": "yes"}, None, 422, "explain"),
        ("/predict", b'{"comment_text": "hi"', None, 400, None),
        ("/predict", b'{"comment_text": "caf\xe9"}', None, 400, None),
        ("/predict", b"comment_text=hi", {"Content-Type": "text/plain"}, 415, None),
        ("/predict", {"comment_text": "x" * 140_000}, None, 413, None),
        ("/predict/batch", {"comments": []}, None, 422, "comments"),
        ("/predict/batch", {"comments": ["ok"] * 101}, None, 422, "comments"),
        ("/predict/batch", {"comments": ["ok", ""]}, None, 422, "comments"),
        ("/predict/batch", {"comments": "ok"}, None, 422, "comments"),
        ("/feedback", {"request_id": "x"}, None, 422, "correct"),
        (
            "/feedback",
            {"request_id": "x", "correct": True, "true_labels": ["rude"]},
            None,
            422,
            None,
        ),
        ("/reviews/x", {"action": "relabel", "moderator": "a"}, None, 422, "true_labels"),
        ("/reviews/x", {"action": "ban", "moderator": "a"}, None, 422, "action"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_writes_nothing(
    client, stack, path, body, headers, status, field
):
    if isinstance(body, bytes):
        response = client.post(
            path, content=body, headers=headers or {"Content-Type": "application/json"}
        )
    else:
        response = client.post(path, json=body, headers=headers)
    error = assert_error_shape(response, status)
    if field:
        fields = [d["field"] or "" for d in error["error"]["details"]]
        assert any(f.startswith(field) for f in fields), error
    assert stack.items() == []


def test_deeply_nested_json_is_a_clean_4xx(client, stack):
    body = b'{"comment_text": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500
    assert stack.items() == []


def test_api_key_is_required_when_configured(stack, service, make_client):
    strict = stack.settings.model_copy(update={"require_api_key": True})
    with make_client(service, strict) as client:
        refused = client.post("/predict", json={"comment_text": POLITE})
        assert_error_shape(refused, 401, "unauthorized")
        accepted = client.post(
            "/predict", json={"comment_text": POLITE}, headers={"x-api-key": "k"}
        )
        assert accepted.status_code == 200
        assert client.get("/health").status_code == 200


def test_comment_text_never_appears_in_logs(client, caplog):
    from moderation.log import logger

    secret = "zebra-unique-phrase you are a moron"
    with caplog.at_level("DEBUG"):
        client.post("/predict", json={"comment_text": secret, "explain": True})
        client.post("/predict/batch", json={"comments": [secret]})
        client.post(
            "/predict", content=b"{" + secret.encode(), headers={"Content-Type": "application/json"}
        )
    # every line as production writes it (Powertools' JSON formatter), every logger
    lines = [logger.registered_formatter.format(record) for record in caplog.records]
    assert any('"decision"' in line and '"request_id"' in line for line in lines)
    assert not [line for line in lines if "zebra-unique-phrase" in line]


def test_the_review_queue_pages_oldest_first_across_its_index_shards(client, stack):
    from moderation.records import REVIEW_SHARDS

    # GIVEN 25 predictions in review, spread over the index's shards
    forced = {"thresholds": {"toxic": 0.0}}
    ids = [
        client.post("/predict", json={"comment_text": f"queued comment {i}", **forced}).json()[
            "request_id"
        ]
        for i in range(25)
    ]
    shards = {i["review_queue"] for i in stack.items("prediction")}
    assert len(shards) > REVIEW_SHARDS // 2 and all(s.startswith("pending#") for s in shards)
    # WHEN the queue is read 4 at a time
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 4, "order": "oldest"} | ({"cursor": cursor} if cursor else {})
        page = client.get("/reviews", params=params).json()
        seen += [i["request_id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    # THEN every item comes once, oldest first, in ceil(25 / 4) pages
    created = {i["request_id"]: i["created_at"] for i in stack.items("prediction")}
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert [created[r] for r in seen] == sorted(created[r] for r in seen)
    assert pages == 7
    # AND a decided item moves to the decided partition
    client.post(f"/reviews/{seen[0]}", json={"action": "approve", "moderator": "m"})
    decided = client.get("/reviews", params={"status": "decided", "order": "oldest"})
    decided = decided.json()["items"]
    assert [i["request_id"] for i in decided] == [seen[0]]
