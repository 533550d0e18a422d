"""Faults a skeptical operator would inject: a store failing on a share of calls, and a bad
model promoted over a good one. (Aggregator redelivery, reordering, partial failures and
stream-runner restarts are in test_aggregator.py.)"""

import logging

from moderation.stores.registry import ModelRegistry
from tests.fakes import FlakyClient

COMMENTS = [
    "thanks for fixing the citation",
    "you are a complete idiot",
    "I disagree with this edit, see the talk page",
    "shut up, nobody asked you",
    "what a lovely photo of the bridge",
]


def test_with_a_third_of_store_calls_failing_no_unlogged_prediction_is_returned(stack, make_client):
    # GIVEN a store that fails a third of its calls
    flaky = FlakyClient(stack.dynamodb, 0.33)
    client = make_client(stack.service(flaky))
    answered: list[str] = []
    statuses = []
    # WHEN mixed traffic arrives: single comments, batches and feedback
    for i in range(45):
        if i % 3 == 2 and answered:
            response = client.post("/feedback", json={"request_id": answered[-1], "correct": True})
            statuses.append(response.status_code)
            assert response.status_code in (201, 503), response.text
            continue
        if i % 3 == 1:
            response = client.post("/predict/batch", json={"comments": COMMENTS[:3]})
            ids = [r["request_id"] for r in response.json().get("results", [])]
        else:
            response = client.post("/predict", json={"comment_text": COMMENTS[i % 5]})
            ids = [response.json()["request_id"]] if response.status_code == 200 else []
        statuses.append(response.status_code)
        # THEN each answer is a prediction or a clean 503 asking to retry, never a 500
        assert response.status_code in (200, 503), response.text
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "store_unavailable"
            assert response.headers["Retry-After"]
        answered += ids
    assert flaky.failed > 5 and 503 in statuses and 200 in statuses
    # AND every prediction that was returned is in the log, and nothing else is
    logged = sorted(i["request_id"] for i in stack.items("prediction"))
    assert logged == sorted(answered)
    # WHEN the store recovers THEN every request succeeds again
    flaky.share = 0.0
    for text in COMMENTS:
        assert client.post("/predict", json={"comment_text": text}).status_code == 200
    assert len(stack.items("prediction")) == len(answered) + len(COMMENTS)


def test_a_newly_promoted_model_is_picked_up_and_a_corrupt_one_is_refused(
    stack, trained, make_client, caplog
):
    # GIVEN the API serving v1, re-reading the alias on every request
    eager = stack.settings.model_copy(update={"model_refresh_seconds": 0.000001})
    client = make_client(stack.service(settings=eager))
    assert client.post("/predict", json={"comment_text": "hello"}).json()["model_version"] == "v1"
    registry = ModelRegistry(stack.settings.model_bucket, stack.s3)
    # WHEN v2 is promoted THEN the warm API serves it without a restart
    v2 = registry.register(trained.bundle_dir)
    registry.promote(v2.version, "production", force=True)
    assert client.post("/predict", json={"comment_text": "hi"}).json()["model_version"] == "v2"
    # WHEN v3 is promoted but its weights in S3 are corrupt
    v3 = registry.register(trained.bundle_dir)
    bucket = stack.settings.model_bucket
    stack.s3.put_object(Bucket=bucket, Key=v3.prefix + "arrays.npz", Body=b"not the model")
    registry.promote(v3.version, "production", force=True)
    with caplog.at_level(logging.ERROR):
        response = client.post("/predict", json={"comment_text": "hey there"})
    # THEN it is refused with a clear error in the log and v2 keeps serving
    assert response.status_code == 200 and response.json()["model_version"] == "v2"
    assert any("refused model v3" in r.getMessage() and "sha256" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model_version"] == "v2"
