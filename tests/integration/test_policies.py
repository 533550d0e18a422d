"""Community policies through the API (moto's DynamoDB, the small trained model): the
contract of every endpoint and error, who may change and read them, and predictions
decided, logged and forecast under them."""

import hashlib

import pytest
from pydantic import SecretStr

from moderation.labels import LABELS

ADMIN_KEY = "test-admin-key"
ADMIN = {"x-api-key": ADMIN_KEY}
APP_KEY = "community-app-key"
APP = {"x-api-key": APP_KEY}
APP_KEY_ID = hashlib.sha256(APP_KEY.encode()).hexdigest()[:16]
OTHER = {"x-api-key": "another-app-key"}

#: a policy whose thresholds never flag, so only its terms decide (the model is small)
LENIENT = dict.fromkeys(LABELS, 1.0)
NEVER_BLOCK = dict.fromkeys(LABELS, "never")
KIDS = {
    "description": "children's forum",
    "thresholds": LENIENT,
    "block_thresholds": NEVER_BLOCK,
    "block_terms": ["fuck", "kill yourself"],
    "review_terms": ["idiot"],
    "allow_terms": ["Dick Smith"],
}


@pytest.fixture
def admin_settings(stack):
    return stack.settings.model_copy(update={"admin_api_key": SecretStr(ADMIN_KEY)})


@pytest.fixture
def api(stack, admin_settings, make_client):
    service = stack.service(settings=admin_settings)
    with make_client(service, admin_settings) as client:
        yield client


def put(api, policy_id, body, headers=ADMIN, **extra):
    return api.put(f"/policies/{policy_id}", json=body, headers={**headers, **extra})


def predict(api, text, policy_id=None, headers=ADMIN):
    body = {"comment_text": text} | ({"policy_id": policy_id} if policy_id else {})
    return api.post("/predict", json=body, headers=headers)


def bind(api, key_id, **binding):
    return api.put(f"/keys/{key_id}/policies", json=binding, headers=ADMIN)


def versions(api, policy_id):
    items = api.get(f"/policies/{policy_id}/versions", headers=ADMIN).json()["items"]
    return [v["version"] for v in items]


def test_an_admin_creates_replaces_reads_and_deletes_a_policy_keeping_every_version(api):
    # WHEN an admin creates a policy
    created = put(api, "kids", KIDS)
    # THEN it is stored as version 1, with an ETag
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and created.headers["ETag"] == '"1"'
    assert created.json()["block_thresholds"]["toxic"] == "never"
    # WHEN it is replaced with the ETag just read
    replaced = put(api, "kids", {**KIDS, "review_terms": ["idiot", "loser"]}, **{"If-Match": '"1"'})
    assert replaced.status_code == 200 and replaced.json()["version"] == 2
    # THEN reads see version 2, and both versions are kept with who wrote them
    read = api.get("/policies/kids", headers=ADMIN)
    assert read.json()["review_terms"] == ["idiot", "loser"] and read.headers["ETag"] == '"2"'
    history = api.get("/policies/kids/versions", headers=ADMIN).json()["items"]
    assert versions(api, "kids") == [2, 1]
    assert all(v["updated_by"].startswith("key:") and v["updated_at"] for v in history)
    assert [p["policy_id"] for p in api.get("/policies", headers=ADMIN).json()["items"]] == ["kids"]
    # WHEN it is deleted
    deleted = api.delete("/policies/kids", headers={**ADMIN, "If-Match": '"2"'})
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    # THEN it is gone from reads, its history stays, and re-creating it continues the versions
    assert api.get("/policies/kids", headers=ADMIN).status_code == 404
    assert api.get("/policies", headers=ADMIN).json()["items"] == []
    assert versions(api, "kids") == [3, 2, 1]
    assert put(api, "kids", KIDS).json()["version"] == 4


def test_a_stale_if_match_is_refused_with_412_and_nothing_is_saved(api):
    put(api, "news", {"description": "v1"})
    put(api, "news", {"description": "v2"}, **{"If-Match": '"1"'})
    # WHEN a second editor saves over version 1, which is no longer current
    stale = put(api, "news", {"description": "lost update"}, **{"If-Match": '"1"'})
    # THEN 412 in the API's error shape, and version 2 stands
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "precondition_failed"
    assert "ETag" in stale.json()["error"]["message"]
    assert api.get("/policies/news", headers=ADMIN).json()["description"] == "v2"
    # If-Match: * on a policy that does not exist is refused too
    assert put(api, "ghost", {}, **{"If-Match": "*"}).status_code == 412
    assert api.get("/policies/ghost", headers=ADMIN).status_code == 404


def test_policy_writes_need_an_admin_key(api):
    for headers in (APP, {}):
        refused = put(api, "kids", KIDS, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "forbidden"
    assert api.delete("/policies/kids", headers=APP).status_code == 403
    assert api.post("/policies/kids:preview", json=KIDS, headers=APP).status_code == 403
    assert api.put(f"/keys/{APP_KEY_ID}/policies", json={}, headers=APP).status_code == 403
    assert api.get("/policies/kids", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"thresholds": {"rudeness": 0.5}}, "thresholds.rudeness", "Input should be"),
        ({"thresholds": {"toxic": 1.5}}, "thresholds.toxic", "less than or equal to 1"),
        ({"thresholds": {"toxic": -0.1}}, "thresholds.toxic", "greater than or equal to 0"),
        (
            {"thresholds": {"insult": 0.6}, "block_thresholds": {"insult": 0.4}},
            "block_thresholds",
            "insult (0.4) is below thresholds.insult (0.6)",
        ),
        ({"block_terms": ["x" * 65]}, "block_terms.0", "at most 64 characters"),
        ({"block_terms": ["   "]}, "block_terms.0", "must not be blank"),
        (
            {"block_terms": [f"w{i}" for i in range(2000)], "allow_terms": ["a"] * 1001},
            "allow_terms",
            "at most 3000 terms",
        ),
        ({"unsupported_language": "delete"}, "unsupported_language", "Input should be"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"webhook": {"url": "not a url", "secret": "s" * 16}}, "webhook.url", "URL"),
        ({"webhook": {"url": "https://a.example", "secret": "short"}}, "webhook.secret", "16"),
    ],
)
def test_bad_policies_are_a_422_naming_the_field_and_nothing_is_saved(api, body, field, words):
    answer = put(api, "kids", body)
    assert answer.status_code == 422, answer.text
    details = answer.json()["error"]["details"]
    assert any(d["field"] == field and words in d["problem"] for d in details), details
    assert api.get("/policies/kids", headers=ADMIN).status_code == 404


def test_a_policy_id_outside_the_pattern_is_a_422(api):
    assert put(api, "bad:id", KIDS).status_code in (404, 405, 422)
    assert put(api, "-leading-dash", KIDS).status_code == 422


def test_callers_read_and_use_only_the_policies_bound_to_their_key(api):
    put(api, "kids", KIDS)
    put(api, "gaming", {"description": "gaming chat"})
    # GIVEN the app's key bound to "kids" (its default)
    bound = api.put(
        f"/keys/{APP_KEY_ID}/policies",
        json={"default_policy": "kids", "policies": ["kids"]},
        headers=ADMIN,
    )
    assert bound.status_code == 200, bound.text
    # THEN it reads "kids" only; another key reads nothing; unknown and unbound look alike
    assert [p["policy_id"] for p in api.get("/policies", headers=APP).json()["items"]] == ["kids"]
    assert api.get("/policies/kids", headers=APP).status_code == 200
    assert api.get("/policies/gaming", headers=APP).status_code == 404
    assert api.get("/policies/kids", headers=OTHER).status_code == 404
    assert api.get("/policies", headers=OTHER).json()["items"] == []
    assert api.get("/keys/me/policies", headers=APP).json()["default_policy"] == "kids"
    # a webhook secret is never read back
    put(api, "kids", {**KIDS, "webhook": {"url": "https://hooks.example/x", "secret": "s" * 20}})
    webhook = api.get("/policies/kids", headers=APP).json()["webhook"]
    assert webhook == {
        "url": "https://hooks.example/x",
        "events": ["review.decided"],
        "secret_set": True,
    }
    # AND a predict naming a policy it may not use is a 404, as if it did not exist
    refused = predict(api, "hi", "gaming", headers=APP)
    assert refused.status_code == 404 and "gaming" in refused.json()["error"]["message"]
    # binding a key to a policy that does not exist is refused
    assert bind(api, APP_KEY_ID, policies=["nope"]).status_code == 404


def test_a_prediction_under_a_policy_names_it_gives_reasons_and_spans_and_is_logged(api, stack):
    put(api, "kids", KIDS)
    text = "Dick Smith says: f.u.c.k off, you 1d10t."
    # WHEN a comment is scored under the policy
    answer = predict(api, text, "kids")
    body = answer.json()
    # THEN the block term decides, and the response says which rule fired and where
    assert answer.status_code == 200, answer.text
    assert body["decision"] == "block"
    assert body["policy"] == {"id": "kids", "version": 1}
    assert 'block_term:"fuck"' in body["reasons"] and 'review_term:"idiot"' in body["reasons"]
    assert 'allow_term:"Dick Smith"' in body["reasons"]
    spans = {m["term"]: text[m["begin"] : m["end"]] for m in body["term_matches"]}
    assert spans == {"Dick Smith": "Dick Smith", "fuck": "f.u.c.k", "idiot": "1d10t"}
    # AND the log records the policy, its version and the matches
    (logged,) = stack.items("prediction")
    assert logged["policy_id"] == "kids" and logged["policy_version"] == 1
    assert {m["term"] for m in logged["term_matches"]} == {"Dick Smith", "fuck", "idiot"}
    # a review term alone sends to review; nothing matched under lenient thresholds allows
    review = predict(api, "you idiot", "kids")
    assert review.json()["decision"] == "review"
    fine = predict(api, "Scunthorpe is lovely", "kids")
    assert fine.json()["decision"] == "allow" and fine.json()["term_matches"] == []


def test_a_keys_default_policy_applies_when_a_request_names_none(api):
    put(api, "kids", KIDS)
    bind(api, APP_KEY_ID, default_policy="kids")
    answer = api.post("/predict/batch", json={"comments": ["k1ll yourself", "hello"]}, headers=APP)
    results = answer.json()["results"]
    assert [r["decision"] for r in results] == ["block", "allow"]
    assert all(r["policy"] == {"id": "kids", "version": 1} for r in results)
    # a key without a binding gets the model's defaults and no policy
    assert predict(api, "hello", headers=OTHER).json()["policy"] is None


def test_never_block_keeps_a_label_at_review_and_thresholds_apply(api):
    # GIVEN a policy that flags everything but never blocks
    flag_all = dict.fromkeys(LABELS, 0.0)
    put(api, "gaming", {"thresholds": flag_all, "block_thresholds": NEVER_BLOCK})
    answer = predict(api, "you are a fucking idiot", "gaming")
    assert answer.json()["decision"] == "review"
    assert not any(r.startswith("block:") for r in answer.json()["reasons"])


def test_a_policy_change_applies_to_the_next_request_of_this_container(api):
    put(api, "kids", KIDS)
    first = predict(api, "what a loser", "kids")
    assert first.json()["decision"] == "allow"
    put(api, "kids", {**KIDS, "block_terms": ["loser"]})
    second = predict(api, "what a loser", "kids")
    assert second.json()["decision"] == "block" and second.json()["policy"]["version"] == 2


def test_perspective_community_id_selects_the_policy_and_an_unknown_one_is_ignored(api, stack):
    put(api, "kids", KIDS)
    request = {
        "comment": {"text": "kill yourself"},
        "requestedAttributes": {"TOXICITY": {}},
        "communityId": "kids",
    }
    assert api.post("/v1alpha1/comments:analyze", json=request, headers=ADMIN).status_code == 200
    unknown = {**request, "communityId": "some forum: not a policy"}
    assert api.post("/v1alpha1/comments:analyze", json=unknown, headers=ADMIN).status_code == 200
    logged = sorted(stack.items("prediction"), key=lambda i: i["created_at"])
    assert [i.get("policy_id") for i in logged] == ["kids", None]
    assert logged[0]["decision"] == "block"


def test_the_forecast_compares_a_candidate_with_the_current_policy_on_logged_traffic(api):
    # GIVEN the current policy and some logged traffic, one item reviewed by a moderator
    put(api, "kids", KIDS)
    comments = ["what a loser", "hello friend", "you idiot", "have a nice day", "loser!"]
    for text in comments:
        predict(api, text, "kids")
    queued = api.get("/reviews", headers=ADMIN).json()["items"]
    (idiot,) = [item for item in queued if item["comment_text"] == "you idiot"]
    decision = {"action": "reject", "moderator": "m"}
    api.post(f"/reviews/{idiot['request_id']}", json=decision, headers=ADMIN)
    # WHEN an admin previews blocking "loser" too
    candidate = {**KIDS, "block_terms": [*KIDS["block_terms"], "loser"]}
    answer = api.post("/policies/kids:preview", json=candidate, headers=ADMIN, params={"days": 2})
    forecast = answer.json()
    # THEN the counts under both, what changed, and quality where moderators decided
    assert answer.status_code == 200, answer.text
    assert forecast["current_version"] == 1
    assert forecast["sample"]["items"] == 5 and forecast["sample"]["days"] == 2

    def counts(side):
        return tuple(forecast[side][decision] for decision in ("allow", "review", "block"))

    assert counts("current") == (4, 1, 0)
    assert counts("candidate") == (2, 1, 2)
    assert forecast["changed"] == {"allow->block": 2}
    assert forecast["sample"]["labelled_by_moderators"] == 1
    assert forecast["current"]["precision"] == 1.0 and forecast["candidate"]["recall"] == 1.0
    # review inflow per day: 1 review among 5 sampled over 2 days (every prediction sampled)
    assert forecast["current"]["review_inflow_per_day"] == pytest.approx(0.5)


def test_an_unknown_policy_is_a_404_and_nothing_is_logged(api, stack):
    answer = predict(api, "hi", "nope")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert stack.items("prediction") == []
