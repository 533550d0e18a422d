"""Each moderator UI page under Streamlit's AppTest, with the API substituted at its HTTP edge
(httpx.MockTransport answering like the moderation API)."""

import json

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from moderation.labels import LABELS
from tests.paths import REPO
from web import ui
from web.client import ApiClient
from web.settings import WebSettings

VIEWS = REPO / "web" / "views"
THRESHOLDS = dict(zip(LABELS, (0.4, 0.12, 0.1, 0.13, 0.27, 0.06), strict=True))
BLOCK = dict(zip(LABELS, (0.57, 1.0, 0.66, 0.98, 0.85, 0.99), strict=True))
INSULT_SCORES = dict(zip(LABELS, (0.97, 0.05, 0.6, 0.01, 0.9, 0.02), strict=True))


class FakeApi:
    """Answers like the API; records every request it got."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict | None]] = []
        self.queue = [self.item("r-1", "you are a fool", ["insult"]),
                      self.item("r-2", "not nice", ["toxic"])]  # fmt: skip
        self.failure: httpx.Response | Exception | None = None
        self.held: dict[str, str] = {}
        self.queries: list[dict[str, str]] = []
        self.decided: dict[str, dict] = {}

    @staticmethod
    def item(rid: str, text: str, labels: list[str]) -> dict:
        return {
            "request_id": rid, "comment_text": text, "labels": labels, "decision": "review",
            "scores": {**dict.fromkeys(LABELS, 0.01), **dict.fromkeys(labels, 0.5)},
            "model_version": "v1", "created_at": "2026-11-24T10:00:00.000Z",
            "review_status": "pending", "review": None,
            "explanations": {labels[0]: [{"ngram": text.split()[-1], "weight": 1.0,
                                          "spans": [[len(text) - len(text.split()[-1]),
                                                     len(text)]]}]},
        }  # fmt: skip

    def prediction(self, text: str) -> dict:
        return {
            "request_id": f"p-{len(self.calls('POST', '/predict'))}",
            "labels": ["toxic", "obscene", "insult"],
            "scores": INSULT_SCORES, "decision": "block", "model_version": "v1",
            "model_name": "tfidf-nblr", "cached": False, "latency_ms": 0.4,
            "explanations": {"toxic": [{"ngram": "idiot", "weight": 2.0,
                                        "spans": [[text.find("idiot"), text.find("idiot") + 5]]}]},
        }  # fmt: skip

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        if request.url.path == "/reviews":
            self.queries.append(dict(request.url.params))
        if isinstance(self.failure, Exception):
            raise self.failure
        if self.failure is not None:
            return self.failure
        path = request.url.path
        if path == "/model":
            card = {"name": "tfidf-nblr", "version": "v1", "thresholds": THRESHOLDS}
            return httpx.Response(200, json={**card, "block_thresholds": BLOCK})
        if path == "/predict":
            return httpx.Response(200, json=self.prediction(body["comment_text"]))
        if path == "/predict/batch":
            results = [self.prediction(text) for text in body["comments"]]
            return httpx.Response(200, json={"results": results, "model_version": "v1"})
        if path == "/feedback":
            return httpx.Response(201, json={"request_id": body["request_id"], "duplicate": False})
        if path == "/reviews" and request.method == "GET":
            return httpx.Response(200, json={"items": self.queue, "next_cursor": None,
                                             "count": len(self.queue),
                                             "oldest_created_at": "2026-11-24T10:00:00.000Z",
                                             "reasons": ["ok", "spam", "other"]})  # fmt: skip
        if path.startswith("/reviews/"):
            return self.review_work(path.split("/")[2:], body)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no route"}})

    def review_work(self, parts: list[str], body: dict) -> httpx.Response:
        """Claims (409 for an item in ``self.held``), decisions, bulk decisions, undo."""
        if parts == ["bulk"]:
            results = [{"request_id": rid, "status": "decided", "decided_at": "now"}
                       for rid in body["request_ids"]]  # fmt: skip
            self.queue = [i for i in self.queue if i["request_id"] not in body["request_ids"]]
            return httpx.Response(200, json={"decided": len(results), "results": results})
        rid = parts[0]
        if parts[1:] == ["claim"]:
            if rid in self.held:
                message = f"{rid} is claimed by {self.held[rid]} until 1800000000 (epoch seconds)"
                return httpx.Response(409, json={"error": {"code": "conflict", "message": message}})
            return httpx.Response(200, json={"request_id": rid, **body,
                                             "lease_expires_at": 4102444800})  # fmt: skip
        if parts[1:] == ["undo"]:
            self.queue.insert(0, self.decided.pop(rid))
            return httpx.Response(200, json={"request_id": rid, **body, "undone_at": "now",
                                             "review_status": "pending",
                                             "lease_expires_at": 4102444800})  # fmt: skip
        self.decided.update({i["request_id"]: i for i in self.queue if i["request_id"] == rid})
        self.queue = [i for i in self.queue if i["request_id"] != rid]
        reason = body.get("reason") or ("ok" if body["action"] == "approve" else "other")
        return httpx.Response(200, json={"request_id": rid, **body, "correct": False,
                                         "reason": reason, "true_labels": [],
                                         "decided_at": "now"})  # fmt: skip

    def calls(self, method: str, path: str) -> list[dict | None]:
        return [body for m, p, body in self.requests if (m, p) == (method, path)]


@pytest.fixture
def api(monkeypatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setenv("BATCH_SIZE", "2")
    st.cache_data.clear()
    st.cache_resource.clear()
    client = ApiClient(WebSettings(), transport=httpx.MockTransport(fake))
    monkeypatch.setattr(ui, "make_client", lambda: client)
    return fake


def run(view: str, **state) -> AppTest:
    app = AppTest.from_file(str(VIEWS / view), default_timeout=30)
    for key, value in state.items():
        app.session_state[key] = value
    return app.run()


def page_text(app: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "success", "info", "warning", "error")
             for e in getattr(app, kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


def test_check_shows_decision_labels_chart_and_highlighted_ngrams(api):
    # GIVEN the check page WHEN a comment is checked
    app = run("check.py")
    app.text_area[0].input("shut up you idiot")
    app.button[0].click().run()
    # THEN the decision, the labels over threshold, the chart and the marked n-gram show
    assert not app.exception
    text = page_text(app)
    assert "Decision: :red[BLOCK]" in text and "`toxic`, `obscene`, `insult`" in text
    assert len(app.get("plotly_chart")) == 1
    assert '<mark title="toxic">idiot</mark>' in app.get("html")[0].proto.body
    assert api.calls("POST", "/predict") == [{"comment_text": "shut up you idiot", "explain": True}]


def test_moving_thresholds_updates_the_decision_without_a_new_request(api):
    app = run("check.py")
    app.text_area[0].input("shut up you idiot")
    app.button[0].click().run()
    # WHEN the moderator raises one global threshold above every score
    app.toggle(key="use_global").set_value(True)
    app.slider(key="global").set_value(0.99).run()
    # THEN nothing is flagged any more, and the API was asked only once
    assert "Decision: :green[ALLOW]" in page_text(app)
    assert "Labels over threshold: none" in page_text(app)
    assert len(api.calls("POST", "/predict")) == 1
    # AND a per-label slider moves one label only
    app.toggle(key="use_global").set_value(False)
    app.slider(key="toxic").set_value(0.98).run()
    assert "`obscene`, `insult`" in page_text(app) and "`toxic`" not in page_text(app)


def test_a_correction_is_sent_as_feedback_and_confirmed(api):
    app = run("check.py")
    app.text_area[0].input("shut up you idiot")
    app.button[0].click().run()
    app.radio[0].set_value("Incorrect").run()
    app.multiselect[0].set_value(["insult"])
    notes = [t for t in app.text_input if t.label == "Note (optional)"][0]
    notes.input("only an insult")
    [b for b in app.button if b.label == "Submit feedback"][0].click().run()
    assert not app.exception
    assert api.calls("POST", "/feedback") == [
        {"request_id": "p-1", "correct": False, "true_labels": ["insult"],
         "notes": "only an insult"}
    ]  # fmt: skip
    assert "Feedback recorded" in page_text(app)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (httpx.ConnectError("refused"), "is unreachable"),
        (httpx.Response(503, json={"error": {"code": "model_unavailable",
                                             "message": "no model for 'production'"}},
                        headers={"retry-after": "30"}), "temporarily unavailable"),
    ],
)  # fmt: skip
def test_api_failures_show_a_clear_message_not_a_stack_trace(api, failure, message):
    api.failure = failure
    app = run("check.py")
    assert not app.exception
    assert any(message in e.value for e in app.error)


def test_review_queue_claims_the_first_item_and_approve_records_the_moderator(api):
    # GIVEN two pending items and a moderator who gave her name
    app = run("review.py", moderator_name="alice")
    assert not app.exception
    assert "**2 pending**, by priority" in page_text(app)
    assert any('<mark title="insult">fool</mark>' in h.proto.body for h in app.get("html"))
    # THEN the list leaves out what others hold, and the current item is claimed for her
    assert api.requests[0][1] == "/reviews"
    assert api.calls("POST", "/reviews/r-1/claim") == [{"moderator": "alice"}]
    assert "Claimed: held by you until" in page_text(app)
    # WHEN she approves it with a reason and a note
    app.selectbox(key="review_reason").set_value("spam")
    app.text_input(key="note-r-1").input("fine")
    app.button(key="review-approve").click().run()
    # THEN the API got her decision, and the page confirms and moves to the next item
    assert api.calls("POST", "/reviews/r-1") == [
        {"action": "approve", "moderator": "alice", "reason": "spam", "notes": "fine"}
    ]
    assert "Recorded: approve on r-1 by alice (reason spam)." in page_text(app)
    assert "**1 pending**" in page_text(app)
    assert api.calls("POST", "/reviews/r-2/claim") == [{"moderator": "alice"}]


def test_the_queue_leaves_out_others_holds_and_filters_lanes(api):
    app = run("review.py", moderator_name="alice")
    queue = {"status": "pending", "limit": "10", "explain": "true", "moderator": "alice"}
    assert api.queries[-1] == queue
    app.radio(key="review_order").set_value("oldest").run()
    assert api.queries[-1] == {**queue, "order": "oldest"}
    # a lane is always in priority order: "oldest" is not sent with a filter
    app.selectbox(key="review_label").set_value("insult")
    app.text_input(key="review_policy").input("kids").run()
    assert api.queries[-1] == {**queue, "label": "insult", "policy": "kids"}
    assert not app.exception


def test_next_and_previous_move_the_claim(api):
    app = run("review.py", moderator_name="alice")
    app.button(key="review-next").click().run()
    assert api.calls("POST", "/reviews/r-2/claim") == [{"moderator": "alice"}]
    assert app.checkbox(key="select-r-2").label.startswith("▶ ")
    app.button(key="review-previous").click().run()
    assert len(api.calls("POST", "/reviews/r-1/claim")) == 1  # her lease still runs


def test_an_item_another_holds_says_who_and_cannot_be_decided(api):
    api.held["r-1"] = "bob"
    app = run("review.py", moderator_name="alice")
    assert any("claimed by bob" in e.value for e in app.error)
    assert app.button(key="review-approve").disabled


def test_relabel_sends_the_chosen_labels(api):
    app = run("review.py", moderator_name="bob")
    app.button(key="review-next").click().run()
    app.multiselect(key="labels-r-2").set_value(["threat"])
    app.button(key="review-relabel").click().run()
    assert api.calls("POST", "/reviews/r-2") == [
        {"action": "relabel", "moderator": "bob", "true_labels": ["threat"]}
    ]


def test_bulk_decision_on_the_selected_items(api):
    app = run("review.py", moderator_name="alice")
    app.button(key="review-select").click().run()
    app.checkbox(key="select-r-2").check().run()
    app.button(key="review-bulk-reject").click().run()
    assert api.calls("POST", "/reviews/bulk") == [
        {"action": "reject", "moderator": "alice", "request_ids": ["r-1", "r-2"]}
    ]
    assert "Bulk reject: 2 decided." in page_text(app)
    assert "The review queue is empty" in page_text(app)


def test_undo_reopens_the_last_decision_and_selects_it(api):
    app = run("review.py", moderator_name="alice")
    app.button(key="review-approve").click().run()
    assert app.button(key="review-undo").disabled is False
    app.button(key="review-undo").click().run()
    assert api.calls("POST", "/reviews/r-1/undo") == [{"moderator": "alice"}]
    assert "Undone: r-1 is pending again and held by you." in page_text(app)
    assert app.checkbox(key="select-r-1").label.startswith("▶ ")
    assert app.button(key="review-undo").disabled


def test_without_a_name_decisions_are_disabled(api):
    app = run("review.py")
    assert "Enter your name in the sidebar" in page_text(app)
    assert app.button(key="review-approve").disabled
    assert api.calls("POST", "/reviews/r-1/claim") == []


def test_empty_queue_says_so(api):
    api.queue = []
    app = run("review.py", moderator_name="alice")
    assert "The review queue is empty" in page_text(app)
    assert app.sidebar.get("metric")[0].value == "0 pending"


def test_batch_upload_gives_a_table_and_a_download(api):
    app = run("batch.py")
    csv = b"id,comment_text\n1,you idiot\n2,thanks\n3,another idiot\n"
    app.get("file_uploader")[0].upload("comments.csv", csv, "text/csv")
    app.button[0].click().run()
    assert not app.exception
    # three comments in batches of BATCH_SIZE=2: two calls, one row each, in order
    assert [len(b["comments"]) for b in api.calls("POST", "/predict/batch")] == [2, 1]
    (frame,) = app.dataframe
    assert list(frame.value["comment_text"]) == ["you idiot", "thanks", "another idiot"]
    assert len(app.get("download_button")) == 1


def test_batch_with_a_bad_file_says_why(api):
    app = run("batch.py")
    app.get("file_uploader")[0].upload("comments.csv", b"\xff\xfe\x00", "text/csv")
    app.button[0].click().run()
    assert any("not UTF-8" in e.value for e in app.error)
    assert api.calls("POST", "/predict/batch") == []
