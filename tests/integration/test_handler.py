"""The Lambda handler (Mangum + Powertools) invoked with the API Gateway events in events/."""

import json
from dataclasses import dataclass

import pytest

from tests.conftest import EVENTS


@dataclass
class LambdaContext:
    function_name: str = "toxic-moderation-api"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"


def load_event(name: str, request_id: str | None = None) -> dict:
    text = (EVENTS / name).read_text()
    if request_id:
        text = text.replace("REQUEST_ID", request_id)
    return json.loads(text)


@pytest.fixture
def invoke(stack):
    from api.handler import handler

    def call(event: dict) -> tuple[int, dict]:
        response = handler(event, LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    return call


def test_every_api_event_is_valid_json_for_sam_local_invoke():
    names = sorted(p.name for p in EVENTS.glob("api_*.json"))
    assert len(names) == 7  # one per endpoint
    for name in names:
        event = load_event(name)
        assert event["httpMethod"] in ("GET", "POST")
        assert event["requestContext"]["identity"]["apiKeyId"]


def test_health_event(invoke):
    status, body = invoke(load_event("api_health.json"))
    assert status == 200 and body["model"]["version"] == "v1"


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

    status, queue = invoke(load_event("api_reviews_list.json"))
    assert status == 200
    pending = [i["request_id"] for i in queue["items"]]
    if pending:
        status, decided = invoke(load_event("api_review_decide.json", pending[0]))
        assert status == 200 and decided["moderator"] == "alice"
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
