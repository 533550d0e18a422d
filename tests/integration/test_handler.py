"""The Lambda handler (Mangum + Powertools) invoked with the API Gateway events in events/."""

import json

import pytest

from local.lambda_context import LambdaContext
from moderation.labels import LABELS
from tests.paths import EVENTS, load_event


@pytest.fixture
def invoke(stack):
    from api.handler import handler

    def call(event: dict) -> tuple[int, dict]:
        response = handler(event, LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    return call


def test_every_api_event_is_valid_json_for_sam_local_invoke():
    names = sorted(p.name for p in EVENTS.glob("api_*.json"))
    assert len(names) == 11  # one per endpoint
    for name in names:
        event = load_event(name)
        assert event["httpMethod"] in ("GET", "POST", "PUT")
        keyless = name in ("api_health.json", "api_perspective_discovery.json")
        assert keyless or event["requestContext"]["identity"]["apiKeyId"]


def test_health_event(invoke):
    status, body = invoke(load_event("api_health.json"))
    assert status == 200 and body["model_version"] == "v1"


def test_model_event(invoke, scorer):
    status, body = invoke(load_event("api_model.json"))
    assert status == 200 and body["version"] == "v1"
    assert body["thresholds"] == scorer.metadata.thresholds


def test_predict_event_logs_with_the_gateway_caller(invoke, stack):
    status, body = invoke(load_event("api_predict.json"))
    assert status == 200 and body["explanations"] is not None
    (item,) = stack.items("prediction")
    assert item["caller_id"] == "key:demo-key-id"


def test_batch_feedback_and_review_events(invoke, stack):
    status, batch = invoke(load_event("api_predict_batch.json"))
    assert status == 200 and len(batch["results"]) == 3
    target = batch["results"][1]["request_id"]
    status, feedback = invoke(load_event("api_feedback.json", target))
    assert status == 201 and feedback["duplicate"] is False
    status, _ = invoke(load_event("api_feedback.json", target))
    assert status == 201 and len(stack.items("feedback")) == 1

    # a polite comment with every threshold at 0 is flagged on every label but blocks on
    # none: it waits for review, whatever the batch's comments got
    flagged = load_event("api_predict.json")
    body = {"comment_text": "thanks for the citation", "thresholds": dict.fromkeys(LABELS, 0.0)}
    flagged["body"] = json.dumps(body)
    status, review = invoke(flagged)
    assert status == 200 and review["decision"] == "review"

    status, queue = invoke(load_event("api_reviews_list.json"))
    assert status == 200
    pending = [i["request_id"] for i in queue["items"]]
    assert review["request_id"] in pending
    status, decided = invoke(load_event("api_review_decide.json", review["request_id"]))
    assert status == 200 and decided["moderator"] == "alice"
    status, queue = invoke(load_event("api_reviews_list.json"))
    assert review["request_id"] not in [i["request_id"] for i in queue["items"]]
    status, missing = invoke(load_event("api_review_decide.json", "no-such-request"))
    assert status == 404 and missing["error"]["code"] == "not_found"


def test_lambda_refuses_a_call_without_a_key_identity(invoke, monkeypatch, stack):
    from moderation.settings import get_settings

    monkeypatch.setenv("REQUIRE_API_KEY", "true")
    get_settings.cache_clear()
    event = load_event("api_predict.json")
    event["requestContext"]["identity"].pop("apiKeyId")
    event["headers"].pop("x-api-key")
    event["multiValueHeaders"].pop("x-api-key")
    try:
        status, body = invoke(event)
    finally:
        get_settings.cache_clear()
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert stack.items() == []


def test_perspective_events_analyze_suggest_and_discover(invoke, stack):
    status, analyzed = invoke(load_event("api_perspective_analyze.json", "1"))
    assert status == 200, analyzed
    assert set(analyzed["attributeScores"]) == {"TOXICITY", "INSULT"}
    assert len(analyzed["attributeScores"]["TOXICITY"]["spanScores"]) == 2
    status, suggested = invoke(load_event("api_perspective_suggestscore.json", "1"))
    assert status == 200 and suggested == {"clientToken": "comment-1"}
    (prediction,) = stack.items("prediction")
    (feedback,) = stack.items("feedback")
    assert feedback["request_id"] == prediction["request_id"]
    assert prediction["caller_id"] == "key:demo-key-id"
    status, document = invoke(load_event("api_perspective_discovery.json"))
    assert status == 200
    assert document["rootUrl"] == "https://abc123.execute-api.us-east-1.amazonaws.com/prod/"


def test_a_policy_write_is_an_admin_request_only_from_the_admin_keys_id(invoke, monkeypatch, stack):
    from moderation.settings import get_settings

    # GIVEN the API's admin key ids (on AWS, the AdminApiKey's id)
    monkeypatch.setenv("ADMIN_API_KEY_IDS", "admin-key-id, another-admin")
    get_settings.cache_clear()
    try:
        # WHEN another key's identity sends the policy PUT  THEN refused, nothing saved
        event = load_event("api_policy_put.json")
        event["requestContext"]["identity"]["apiKeyId"] = "third-party-app"
        status, body = invoke(event)
        assert status == 403 and body["error"]["code"] == "forbidden"
        # WHEN the admin key's identity sends it  THEN it is created
        status, body = invoke(load_event("api_policy_put.json"))
        assert status == 201 and body["version"] == 1
        assert body["updated_by"] == "key:admin-key-id"
        # the x-api-key header value is not what counts on AWS: the identity is
        event = load_event("api_policy_put.json")
        event["requestContext"]["identity"]["apiKeyId"] = "third-party-app"
        event["headers"]["x-api-key"] = event["multiValueHeaders"]["x-api-key"][0]
        assert invoke(event)[0] == 403
    finally:
        get_settings.cache_clear()
