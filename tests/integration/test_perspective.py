"""The Perspective-compatible endpoints against moto tables, with the request and response
examples of Perspective's public API reference (methods.md, sample.md): same paths, same
shapes, same key handling, Google's error shape."""

import pytest

from api.perspective.schemas import AnalyzeCommentResponse
from moderation.labels import LABELS

ANALYZE = "/v1alpha1/comments:analyze?key=app-key"
SUGGEST = "/v1alpha1/comments:suggestscore?key=app-key"
ATTRIBUTES = ("TOXICITY", "SEVERE_TOXICITY", "PROFANITY", "THREAT", "INSULT", "IDENTITY_ATTACK")
DOCS_COMMENT = "What kind of idiot name is foo? Sorry, I like your name."


def assert_google_error(response, status: int, google_status: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "status", "details"}
    assert error["code"] == status and error["status"] == google_status and error["message"]
    return error


def test_the_documented_analyze_request_gets_the_documented_shape(client, stack):
    # GIVEN the request of Perspective's reference ("What kind of idiot name is foo?")
    body = {
        "comment": {"text": "what kind of idiot name is foo?"},
        "languages": ["en"],
        "requestedAttributes": {"TOXICITY": {}},
    }
    response = client.post(ANALYZE, json=body)
    # THEN the documented shape: a probability per requested attribute, languages echoed
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"attributeScores", "languages"}
    assert list(answer["attributeScores"]) == ["TOXICITY"]
    summary = answer["attributeScores"]["TOXICITY"]["summaryScore"]
    assert summary["type"] == "PROBABILITY" and 0.5 < summary["value"] <= 1
    assert answer["languages"] == ["en"]
    # AND it was logged and scored like /predict, text stored, under the caller's key
    (item,) = stack.items("prediction")
    assert item["scores"]["toxic"] == pytest.approx(summary["value"])
    assert item["comment_text"] == body["comment"]["text"] and item["caller_id"].startswith("key:")


def test_without_languages_the_language_is_detected_as_at_perspective(client, stack):
    # GIVEN a request that names no language
    english = {"comment": {"text": DOCS_COMMENT}, "requestedAttributes": {"TOXICITY": {}}}
    answer = client.post(ANALYZE, json=english).json()
    # THEN the detected language is in the answer, as Perspective gives it
    assert answer["detectedLanguages"] == ["en"] and answer["languages"] == ["en"]
    # WHEN the comment is in a language the model does not serve
    french = {
        "comment": {"text": "Tu es vraiment un idiot et personne ne t'aime"},
        "requestedAttributes": {"TOXICITY": {}},
    }
    error = assert_google_error(client.post(ANALYZE, json=french), 400, "INVALID_ARGUMENT")
    # THEN Perspective's error for it, and nothing of that call is logged
    assert "does not support request languages: fr" in error["message"]
    assert error["details"][0]["errorType"] == "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"
    assert len(stack.items("prediction")) == 1


def test_all_six_attributes_map_to_the_six_labels(client, stack):
    body = {
        "comment": {"text": "I will find you and kill you, you stupid fucking idiot"},
        "requestedAttributes": {name: {} for name in ATTRIBUTES},
        "clientToken": "comment-1",
    }
    answer = client.post(ANALYZE, json=body).json()
    (item,) = stack.items("prediction")
    mapping = dict(zip(ATTRIBUTES, LABELS, strict=True))
    for name, label in mapping.items():
        assert answer["attributeScores"][name]["summaryScore"]["value"] == pytest.approx(
            item["scores"][label]
        )
    assert answer["clientToken"] == "comment-1" and answer["languages"] == ["en"]


def test_span_annotations_score_each_sentence(client, stack):
    body = {
        "comment": {"text": DOCS_COMMENT},
        "requestedAttributes": {"TOXICITY": {}, "INSULT": {}},
        "spanAnnotations": True,
    }
    answer = client.post(ANALYZE, json=body).json()
    # the answer is exactly the documented shape (the route writes it as plain JSON)
    documented = AnalyzeCommentResponse.model_validate(answer)
    assert documented.model_dump(exclude_none=True) == answer
    scores = answer["attributeScores"]
    for name in ("TOXICITY", "INSULT"):
        spans = scores[name]["spanScores"]
        # the documented spans: [0, 31) "What kind of idiot name is foo?", then the apology
        assert [(s["begin"], s["end"]) for s in spans] == [(0, 31), (32, 56)]
        assert all(s["score"]["type"] == "PROBABILITY" for s in spans)
        assert spans[0]["score"]["value"] > spans[1]["score"]["value"]
    # spans are parts of one logged prediction, not predictions of their own
    assert len(stack.items("prediction")) == 1
    plain = client.post(ANALYZE, json={**body, "spanAnnotations": False}).json()
    assert "spanScores" not in plain["attributeScores"]["TOXICITY"]


def test_score_threshold_leaves_out_attributes_below_it(client):
    body = {
        "comment": {"text": "you are an idiot"},
        "requestedAttributes": {
            "TOXICITY": {"scoreThreshold": 0.3},
            "THREAT": {"scoreThreshold": 0.9},
        },
    }
    scores = client.post(ANALYZE, json=body).json()["attributeScores"]
    assert list(scores) == ["TOXICITY"]
    nothing = {**body, "requestedAttributes": {"THREAT": {"scoreThreshold": 0.99}}}
    assert client.post(ANALYZE, json=nothing).json()["attributeScores"] == {}


def test_do_not_store_logs_the_hash_never_the_text(client, stack):
    body = {"comment": {"text": "private message, you fool"}, "requestedAttributes": {"INSULT": {}}}
    assert client.post(ANALYZE, json={**body, "doNotStore": True}).status_code == 200
    (item,) = stack.items("prediction")
    assert "comment_text" not in item and item["text_stored"] is False and item["input_hash"]


def test_the_documented_suggestscore_request_is_feedback_on_the_analyzed_prediction(client, stack):
    # GIVEN a comment analyzed with a client token
    text = "I guess it comes down a simple choice: Get busy living, or get busy dying."
    analyzed = {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}}
    client.post(ANALYZE, json={**analyzed, "clientToken": "comment-53922"})
    (prediction,) = stack.items("prediction")
    # WHEN the documented SuggestCommentScore arrives with the same token
    body = {
        "comment": {"text": text},
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0}}},
        "communityId": "/forum/movies",
        "clientToken": "comment-53922",
    }
    response = client.post(SUGGEST, json=body)
    # THEN the documented response, and feedback on that same prediction
    assert response.status_code == 200, response.text
    assert response.json() == {"clientToken": "comment-53922"}
    (feedback,) = stack.items("feedback")
    assert feedback["request_id"] == prediction["request_id"]
    assert feedback["source"] == "perspective" and feedback["suggested_scores"] == {"toxic": 0}
    assert "toxic" not in feedback["true_labels"]
    assert len(stack.items("prediction")) == 1
    # AND the same suggestion again counts once
    assert client.post(SUGGEST, json=body).status_code == 200
    assert len(stack.items("feedback")) == 1


def test_a_suggestion_without_an_analyzed_comment_logs_one_to_hold_it(client, stack):
    body = {
        "comment": {"text": "you absolute moron"},
        "attributeScores": {"INSULT": {"summaryScore": {"value": 1.0}}},
    }
    assert client.post(SUGGEST, json=body).status_code == 200
    (prediction,) = stack.items("prediction")
    (feedback,) = stack.items("feedback")
    assert feedback["request_id"] == prediction["request_id"]
    assert "insult" in feedback["true_labels"]


@pytest.mark.parametrize(
    ("body", "status", "google_status", "words"),
    [
        ({"comment": {"text": "hi"}, "requestedAttributes": {"FLIRTATION": {}}}, 400,
         "INVALID_ARGUMENT", "FLIRTATION"),
        ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}, "languages": ["de"]},
         400, "INVALID_ARGUMENT", "does not support request languages: de"),
        ({"comment": {"text": "hi"}, "requestedAttributes": {}}, 400, "INVALID_ARGUMENT",
         "requestedAttributes"),
        ({"comment": {"text": "   "}, "requestedAttributes": {"TOXICITY": {}}}, 400,
         "INVALID_ARGUMENT", "non-empty"),
        ({"comment": {"text": "x" * 10_001}, "requestedAttributes": {"TOXICITY": {}}}, 400,
         "INVALID_ARGUMENT", "too long"),
        ({"comment": {"text": 5}, "requestedAttributes": {"TOXICITY": {}}}, 400,
         "INVALID_ARGUMENT", "comment.text"),
        ({"comment": {"text": "hi", "type": "HTML"}, "requestedAttributes": {"TOXICITY": {}}},
         400, "INVALID_ARGUMENT", "comment.type"),
        ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreType": "RAW"}}},
         400, "INVALID_ARGUMENT", "scoreType"),
        ({"requestedAttributes": {"TOXICITY": {}}}, 400, "INVALID_ARGUMENT", "comment"),
        ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}, "colour": 1}, 400,
         "INVALID_ARGUMENT", "colour"),
    ],
)  # fmt: skip
def test_bad_analyze_requests_get_googles_error_shape_and_log_nothing(
    client, stack, body, status, google_status, words
):
    error = assert_google_error(client.post(ANALYZE, json=body), status, google_status)
    assert words in error["message"] or words in str(error["details"])
    assert stack.items() == []


def test_malformed_json_and_wrong_content_type_are_googles_400(client, stack):
    malformed = client.post(
        ANALYZE, content=b'{"comment": {', headers={"Content-Type": "application/json"}
    )
    assert_google_error(malformed, 400, "INVALID_ARGUMENT")
    as_text = client.post(ANALYZE, content=b"hi", headers={"Content-Type": "text/plain"})
    assert_google_error(as_text, 400, "INVALID_ARGUMENT")
    assert stack.items() == []


def test_a_key_is_required_when_configured_and_taken_from_the_query(stack, service, make_client):
    strict = stack.settings.model_copy(update={"require_api_key": True})
    body = {"comment": {"text": "hello"}, "requestedAttributes": {"TOXICITY": {}}}
    with make_client(service, strict) as client:
        refused = client.post("/v1alpha1/comments:analyze", json=body)
        assert_google_error(refused, 401, "UNAUTHENTICATED")
        assert client.post(ANALYZE, json=body).status_code == 200
    (item,) = stack.items("prediction")
    assert item["caller_id"].startswith("key:")


def test_a_store_outage_is_googles_503_unavailable(stack, make_client):
    from tests.fakes import FailingWrites

    client = make_client(stack.service(FailingWrites(stack.dynamodb, failures=1)))
    body = {"comment": {"text": "hello"}, "requestedAttributes": {"TOXICITY": {}}}
    response = client.post(ANALYZE, json=body)
    assert_google_error(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"] and stack.items() == []


def test_analyze_calls_are_counted_in_the_aggregates(client, stack, drain_stream):
    from moderation.stores.aggregates import AggregateStore

    body = {"comment": {"text": "you are an idiot"}, "requestedAttributes": {"TOXICITY": {}}}
    for token in ("a", "b", "c"):
        client.post(ANALYZE, json={**body, "clientToken": token})
    assert drain_stream() == 3
    totals = AggregateStore(stack.settings.aggregates_table, stack.dynamodb).lifetime(
        "ALL", ["requests", "cache_hits"]
    )
    assert totals == {"requests": 3, "cache_hits": 2}


def test_the_discovery_document_points_at_this_deployment(client):
    document = client.get("/$discovery/rest?version=v1alpha1&key=app-key").json()
    assert document["rootUrl"] == "http://testserver/" and document["name"] == "commentanalyzer"
    methods = document["resources"]["comments"]["methods"]
    assert methods["analyze"]["path"] == "v1alpha1/comments:analyze"
    assert methods["suggestscore"]["httpMethod"] == "POST"
    assert "AnalyzeCommentRequest" in document["schemas"]
    missing = client.get("/$discovery/rest?version=v2")
    assert_google_error(missing, 404, "NOT_FOUND")


def test_the_discovery_document_carries_api_gateways_stage_prefix(stack):
    import json

    from api.handler import handler
    from local.lambda_context import LambdaContext
    from tests.paths import load_event

    event = load_event("api_health.json")
    event.update(path="/$discovery/rest", resource="/{root}/rest")
    event["queryStringParameters"] = {"version": "v1alpha1"}
    event["multiValueQueryStringParameters"] = {"version": ["v1alpha1"]}
    event["requestContext"]["path"] = "/prod/$discovery/rest"
    response = handler(event, LambdaContext())
    assert response["statusCode"] == 200, response["body"]
    host = event["headers"]["Host"]
    assert json.loads(response["body"])["rootUrl"] == f"https://{host}/prod/"
