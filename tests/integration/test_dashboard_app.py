"""The dashboard rendered by Streamlit's AppTest against moto tables (created from
template.yaml) that the aggregator handler filled from the real stream of real API traffic."""

import hashlib
from datetime import date
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from moderation.policies import PolicyRules
from moderation.stores.policies import KeyBinding, PolicyStore

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
SECTIONS = ["Traffic", "Latency", "Target drift", "Live accuracy", "Review queue"]
COMMENTS = [
    "thanks for fixing the citation in the second paragraph",
    "you are a stupid idiot and everyone hates you",
    "I disagree with this edit, see the talk page",
    "shut up, moron",
    "great article, well sourced",
    "go to hell you worthless piece of garbage",
]


@pytest.fixture
def traffic(client, stack, drain_stream) -> dict:
    """Real predictions (single, batch, cached repeats), feedback with and without true
    labels, and a review queue with one item decided and two pending; then aggregated."""
    ids = [client.post("/predict", json={"comment_text": c}).json()["request_id"] for c in COMMENTS]
    client.post("/predict", json={"comment_text": COMMENTS[1]})  # a cache hit
    client.post("/predict/batch", json={"comments": COMMENTS[:3]})
    client.post("/feedback", json={"request_id": ids[0], "correct": True})
    client.post("/feedback", json={"request_id": ids[1], "correct": True})
    client.post(
        "/feedback", json={"request_id": ids[2], "correct": False, "true_labels": ["toxic"]}
    )
    forced = {"toxic": 0.0}
    queued = [
        client.post("/predict", json={"comment_text": t, "thresholds": forced}).json()
        for t in ("hmm, maybe", "not sure about this one", "borderline remark")
    ]
    assert {q["decision"] for q in queued} == {"review"}
    decided = client.post(
        f"/reviews/{queued[0]['request_id']}", json={"action": "approve", "moderator": "m"}
    )
    assert decided.status_code in (200, 201)
    assert drain_stream() > 0
    feedback = stack.items("feedback")
    return {
        "predictions": len(stack.items("prediction")),
        "pending": client.get("/reviews", params={"status": "pending"}).json()["count"],
        "correct": sum(bool(f["correct"]) for f in feedback),
        "feedback": len(feedback),
    }


def run_app() -> AppTest:
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(APP), default_timeout=60)
    return app.run()


def metric(app: AppTest, label: str) -> str:
    (found,) = [m for m in app.metric if m.label == label]
    return found.value


def test_every_section_renders_the_counted_traffic(traffic):
    # GIVEN real API traffic counted by the aggregator  WHEN the dashboard opens (last day)
    app = run_app()
    # THEN every section renders without an error, with the numbers the log holds
    assert not app.exception
    assert [h.value for h in app.header] == SECTIONS
    assert metric(app, "Requests") == f"{traffic['predictions']:,}" == "13"
    assert metric(app, "Pending review (end)") == str(traffic["pending"]) == "2"
    assert metric(app, "Accuracy") == f"{traffic['correct'] / traffic['feedback']:.1%}"
    assert not [i.value for i in app.info if "no data in this range" in i.value]
    # each chart says what it shows; drift is measured against v1's bundle reference
    assert len(app.get("plotly_chart")) == 8
    assert len(app.caption) >= 8 + 1
    assert not [w.value for w in app.warning if "No bundle reference" in w.value]
    assert app.sidebar.selectbox[0].options == ["All versions", "v1"]


def test_the_version_filter_shows_that_version_and_its_reference(traffic):
    # GIVEN the dashboard  WHEN the monitoring team picks v1
    app = run_app()
    app.sidebar.selectbox[0].select("v1").run()
    # THEN the figures are v1's (all traffic here) and the page names the version
    assert not app.exception
    assert metric(app, "Requests") == f"{traffic['predictions']:,}"
    assert any("· v1 ·" in c.value for c in app.caption)


def test_an_empty_range_says_so_instead_of_failing(traffic):
    # GIVEN counted traffic, all of it today  WHEN a custom range in 2020 is chosen
    app = run_app()
    app.sidebar.radio[0].set_value("Custom").run()
    app.sidebar.date_input[0].set_value((date(2020, 1, 1), date(2020, 1, 2))).run()
    # THEN every section says there is no data, and nothing fails
    assert not app.exception
    assert metric(app, "Requests") == "0"
    empty = [i.value for i in app.info if i.value.startswith("no data in this range")]
    assert len(empty) == len(SECTIONS)
    assert not app.get("plotly_chart")


def test_an_unreadable_table_is_an_error_message_not_a_crash(session_env):
    from moto import mock_aws

    # GIVEN an AWS account without the aggregate table (a stack still starting)
    with mock_aws():
        # WHEN the dashboard opens
        app = run_app()
    # THEN it says the table cannot be read, instead of a traceback
    assert not app.exception
    assert any("aggregate table cannot be read" in e.value for e in app.error)
    assert app.sidebar.selectbox[0].options == ["All versions"]


def test_the_last_day_is_drawn_per_hour_and_the_last_hour_per_minute(traffic):
    # GIVEN counted traffic  WHEN the dashboard opens on its default range, the last day
    app = run_app()
    # THEN it is drawn per hour (minute buckets only up to 6 h), with every request counted
    assert not app.exception
    assert any(" per hour " in c.value for c in app.caption)
    assert metric(app, "Requests") == f"{traffic['predictions']:,}"
    # ... and the last hour per minute, with the same count
    app.sidebar.radio[0].set_value("Last hour").run()
    assert any(" per minute " in c.value for c in app.caption)
    assert metric(app, "Requests") == f"{traffic['predictions']:,}"


def test_the_policy_filter_shows_the_traffic_decided_under_that_policy(client, stack, drain_stream):
    # GIVEN a community app whose key defaults to the "kids" policy, and other traffic
    store = PolicyStore(stack.settings.policies_table, stack.dynamodb)
    store.put("kids", PolicyRules(block_terms=["idiot"]), "key:admin")
    key = "kids-forum-app"
    key_id = hashlib.sha256(key.encode()).hexdigest()[:16]
    store.bind(KeyBinding(key_id=key_id, default_policy="kids"))
    for text in COMMENTS[:3]:
        answer = client.post("/predict", json={"comment_text": text}, headers={"x-api-key": key})
        assert answer.json()["policy"]["id"] == "kids"
    for text in COMMENTS[3:]:
        client.post("/predict", json={"comment_text": text})
    drain_stream()
    # WHEN the monitoring team picks the policy
    app = run_app()
    assert app.sidebar.selectbox[1].options == ["All traffic", "kids"]
    assert metric(app, "Requests") == "6"
    app.sidebar.selectbox[1].select("kids").run()
    # THEN the figures count only the predictions made under it
    assert not app.exception
    assert metric(app, "Requests") == "3"
    assert any("policy kids" in c.value for c in app.caption)
