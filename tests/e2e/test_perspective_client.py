"""A real Perspective client written by someone else (google-api-python-client), built from
this service's discovery document exactly as Perspective's docs show, with only the URL
changed, against the local stack."""

import pytest
from googleapiclient import discovery
from googleapiclient.errors import HttpError


@pytest.fixture
def perspective(local_stack):
    # Perspective's own snippet, with only discoveryServiceUrl pointing here
    return discovery.build(
        "commentanalyzer",
        "v1alpha1",
        developerKey="app-key",
        discoveryServiceUrl=f"{local_stack.api_url}/$discovery/rest?version=v1alpha1",
        static_discovery=False,
    )


def test_google_client_analyzes_and_suggests_through_this_service(perspective, local_stack):
    analyze_request = {
        "comment": {"text": "friendly greetings from python, you idiot"},
        "requestedAttributes": {"TOXICITY": {}, "INSULT": {}},
        "clientToken": "e2e-1",
    }
    response = perspective.comments().analyze(body=analyze_request).execute()
    toxicity = response["attributeScores"]["TOXICITY"]["summaryScore"]
    assert toxicity["type"] == "PROBABILITY" and 0 <= toxicity["value"] <= 1
    assert set(response["attributeScores"]) == {"TOXICITY", "INSULT"}
    assert response["clientToken"] == "e2e-1"

    suggestion = {
        "comment": analyze_request["comment"],
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.0}}},
        "clientToken": "e2e-1",
    }
    assert perspective.comments().suggestscore(body=suggestion).execute() == {
        "clientToken": "e2e-1"
    }
    # the suggestion is feedback on the analyzed prediction, both in the log
    feedback = [f for f in local_stack.items("feedback") if f.get("source") == "perspective"]
    predictions = {p["request_id"] for p in local_stack.items("prediction", ["request_id"])}
    assert feedback and feedback[-1]["request_id"] in predictions


def test_google_client_raises_googles_error_for_an_unknown_attribute(perspective):
    bad = {"comment": {"text": "hello"}, "requestedAttributes": {"FLIRTATION": {}}}
    with pytest.raises(HttpError) as raised:
        perspective.comments().analyze(body=bad).execute()
    assert raised.value.resp.status == 400
    assert "FLIRTATION" in raised.value.reason
