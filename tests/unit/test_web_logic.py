"""The moderator UI's plain functions: thresholds, highlighting, CSV, the API client."""

import json
from datetime import UTC, datetime

import httpx
import pytest

from moderation.labels import LABELS
from web import logic
from web.client import ApiClient, ApiError
from web.settings import WebSettings, load_settings

MODEL = dict(zip(LABELS, (0.4, 0.12, 0.1, 0.13, 0.27, 0.06), strict=True))
BLOCK = dict(zip(LABELS, (0.57, 1.0, 0.66, 0.98, 0.85, 0.99), strict=True))
SCORES = dict(zip(LABELS, (0.5, 0.01, 0.02, 0.01, 0.3, 0.01), strict=True))


def test_thresholds_default_to_the_model_and_a_global_value_overrides_all():
    assert logic.effective_thresholds(MODEL) == MODEL
    assert logic.effective_thresholds(MODEL, {"toxic": 0.9})["toxic"] == 0.9
    assert logic.effective_thresholds(MODEL, {"toxic": 0.9}, 0.2) == dict.fromkeys(LABELS, 0.2)


def test_moving_thresholds_changes_labels_and_decision_by_the_api_rule():
    assert logic.apply_thresholds(SCORES, MODEL, BLOCK) == (["toxic", "insult"], "review")
    assert logic.apply_thresholds(SCORES, dict.fromkeys(LABELS, 0.6), BLOCK) == ([], "allow")
    # a block threshold is never below the review threshold in force
    lowered = {**BLOCK, "toxic": 0.45}
    assert logic.apply_thresholds(SCORES, MODEL, lowered)[1] == "block"
    assert logic.apply_thresholds(SCORES, {**MODEL, "toxic": 0.55}, lowered)[1] == "review"


def test_highlight_marks_spans_and_escapes_the_comment():
    text = "<b>you</b> idiot & co"
    explanations = {"insult": [{"ngram": "idiot", "spans": [[11, 16]]}],
                    "toxic": [{"ngram": "idiot &", "spans": [[11, 18]]}]}  # fmt: skip
    html = logic.highlight(text, explanations)
    assert html.startswith("&lt;b&gt;you&lt;/b&gt; ")
    assert '<mark title="insult, toxic">idiot</mark><mark title="toxic"> &amp;</mark>' in html
    assert logic.highlight(text, None) == "&lt;b&gt;you&lt;/b&gt; idiot &amp; co"


def test_highlight_ignores_spans_outside_the_text():
    assert logic.highlight("abc", {"toxic": [{"spans": [[2, 10], [-3, 1]]}]}) == (
        '<mark title="toxic">a</mark>b<mark title="toxic">c</mark>'
    )


def test_score_chart_has_six_bars_and_each_threshold():
    figure = logic.scores_figure(SCORES, MODEL)
    bars, marks = figure.data
    assert list(bars.x) == list(LABELS) and list(marks.y) == [MODEL[x] for x in LABELS]
    assert bars.marker.color[0] == "crimson" and bars.marker.color[1] == "steelblue"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"id,comment_text\n1,hello\n2,\n3,\"multi\nline, with comma\"\n",
         ["hello", "multi\nline, with comma"]),
        (b"\xef\xbb\xbfText\nfirst\nsecond\n", ["first", "second"]),
        (b"body,score\nfirst,1\n", ["first"]),
    ],
)  # fmt: skip
def test_csv_reading_finds_the_comment_column(data, expected):
    assert logic.read_comments_csv(data) == expected


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"comment_text\n\n", "no comments"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"comment_text\n" + b"x\n" * 11, "at most 10"),
    ],
)
def test_csv_problems_are_said_plainly(data, problem):
    with pytest.raises(ValueError, match=problem):
        logic.read_comments_csv(data, max_rows=10)


def test_results_table_keeps_upload_order_and_downloads_as_csv():
    results = [
        {"request_id": f"r{i}", "decision": d, "labels": labels, "scores": SCORES}
        for i, (d, labels) in enumerate([("allow", []), ("review", ["toxic", "insult"])])
    ]
    frame = logic.results_frame(["a", "b"], results)
    assert list(frame["comment_text"]) == ["a", "b"]
    assert list(frame["labels"]) == ["", "toxic, insult"]
    assert logic.to_csv(frame).decode().splitlines()[0].startswith("comment_text,decision,labels")
    assert list(logic.chunks(list("abcde"), 2)) == [["a", "b"], ["c", "d"], ["e"]]


def test_feedback_marks():
    assert logic.feedback_payload(["toxic"], True, None) == (True, ["toxic"])
    assert logic.feedback_payload(["toxic"], False, ["insult"]) == (False, ["insult"])
    assert logic.feedback_payload(["toxic"], False, []) == (False, [])
    with pytest.raises(ValueError, match="pick what is right"):
        logic.feedback_payload(["toxic"], False, ["toxic"])


def client_answering(status: int, body: dict | str, headers: dict | None = None) -> ApiClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return ApiClient(WebSettings(api_key="k-123"), transport=httpx.MockTransport(handler))


def error(code: str, message: str, details=()) -> dict:
    return {"error": {"code": code, "message": message, "details": list(details)}}


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (422, error("validation_error", "request body is invalid",
                    [{"field": "comment_text", "problem": "must not be empty"}]),
         None, "refused the request (422): request body is invalid (comment_text: must not"),
        (401, error("unauthorized", "an API key is required"), None, "check API_KEY"),
        (503, error("model_unavailable", "no model"), {"retry-after": "30"},
         "temporarily unavailable: no model. Try again in 30 s"),
        (429, error("throttled", "slow down"), None, "Too many requests"),
        (500, "<html>oops</html>", None, "refused the request (500): Internal Server Error"),
    ],
)  # fmt: skip
def test_api_errors_become_messages_for_the_page(status, body, headers, expected):
    with pytest.raises(ApiError) as caught:
        client_answering(status, body, headers).predict("hello")
    assert expected in caught.value.message and caught.value.status == status


def test_unreachable_api_and_timeouts_say_what_to_check():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    def slow(request):
        raise httpx.ReadTimeout("slow", request=request)

    for handler, expected in ((refuse, "unreachable"), (slow, "did not answer within")):
        api = ApiClient(WebSettings(), transport=httpx.MockTransport(handler))
        with pytest.raises(ApiError, match=expected):
            api.reviews()


def test_the_key_is_sent_and_health_accepts_503():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["key"] = request.headers.get("x-api-key")
        return httpx.Response(503, json={"status": "unavailable"})

    api = ApiClient(WebSettings(api_key="k-123"), transport=httpx.MockTransport(handler))
    assert api.health() == {"status": "unavailable"} and seen["key"] == "k-123"


def test_settings_come_from_the_environment_then_streamlit_secrets(monkeypatch):
    monkeypatch.delenv("API_URL", raising=False)
    secrets = {"api_url": "https://mod.example.com", "api_key": "s3cret", "other": 1}
    loaded = load_settings(secrets)
    assert str(loaded.api_url) == "https://mod.example.com/"
    assert loaded.api_key.get_secret_value() == "s3cret" and "s3cret" not in repr(loaded)
    monkeypatch.setenv("API_URL", "http://127.0.0.1:9999")
    assert str(load_settings(secrets).api_url) == "http://127.0.0.1:9999/"


def test_the_policy_page_sends_only_what_the_admin_set_and_never_for_never_block():
    frame = logic.policy_thresholds_frame(
        {"thresholds": {"insult": 0.6}, "block_thresholds": {"obscene": "never", "toxic": 0.9}}
    )
    assert frame.set_index("label").loc["obscene", "never block"]
    frame.loc[frame["label"] == "threat", "review at"] = 0.2
    body = logic.policy_body(
        frame, "  gaming chat ", "slur one\n\n  slur   two\nslur one", "", "Dick Smith", "review"
    )
    assert body["thresholds"] == {"threat": 0.2, "insult": 0.6}
    assert body["block_thresholds"] == {"toxic": 0.9, "obscene": "never"}
    assert body["block_terms"] == ["slur one", "slur two"] and body["review_terms"] == []
    assert body["allow_terms"] == ["Dick Smith"] and body["description"] == "gaming chat"
    assert body["unsupported_language"] == "review"
    default = logic.policy_body(
        logic.policy_thresholds_frame(None), "", "", "", "", "model default"
    )
    assert default["thresholds"] == {} and default["unsupported_language"] is None


def test_the_forecast_table_puts_the_current_policy_beside_the_candidate():
    figures = {"allow": 4, "review": 1, "block": 0, "review_inflow_per_day": 0.5}
    frame = logic.forecast_frame({"current": figures, "candidate": {**figures, "block": 2}})
    blocked = frame.set_index("figure").loc["blocked"]
    assert (blocked["current"], blocked["candidate"]) == (0, 2)


# ---------------------------------------------------------------- review queue
def test_the_shortcut_legend_names_every_key_and_avoids_streamlits_own():
    legend = logic.shortcut_legend()
    for what, key in logic.REVIEW_SHORTCUTS.items():
        assert f"`{key}` {what}" in legend
    # Streamlit keeps C and R (rerun) for itself
    assert not {k.split("+")[-1].upper() for k in logic.REVIEW_SHORTCUTS.values()} & {"C", "R"}


def test_lanes_are_always_in_priority_order():
    assert logic.queue_query(logic.ALL_LABELS, " ", "oldest") == {
        "label": None, "policy": None, "order": "oldest"}  # fmt: skip
    assert logic.queue_query("insult", "", "oldest")["order"] == "priority"
    assert logic.queue_query(logic.ALL_LABELS, " kids ", "oldest") == {
        "label": None, "policy": "kids", "order": "priority"}  # fmt: skip


def test_the_cursor_stays_on_its_item_or_takes_the_next_one_in_its_place():
    ids = ["a", "b", "c"]
    assert logic.current_item(ids, "b", 0) == ("b", 1)
    # "b" was decided: the item now in its place is current
    assert logic.current_item(["a", "c"], "b", 1) == ("c", 1)
    assert logic.current_item(["a"], "c", 2) == ("a", 0)
    assert logic.current_item([], "a", 0) == (None, 0)
    assert logic.current_item(ids, None, 0) == ("a", 0)


def test_next_and_previous_stop_at_the_ends():
    ids = ["a", "b", "c"]
    assert logic.step(ids, "a", 1) == "b" and logic.step(ids, "c", 1) == "c"
    assert logic.step(ids, "b", -1) == "a" and logic.step(ids, "a", -1) == "a"
    assert logic.step(ids, "gone", 1) == "b" and logic.step([], None, 1) is None


def test_a_claim_is_renewed_only_near_its_end_or_for_another_item_or_moderator():
    lease = {"request_id": "a", "moderator": "alice", "lease_expires_at": 1_000}
    assert not logic.needs_claim(lease, "a", "alice", now=900)
    assert logic.needs_claim(lease, "a", "alice", now=950)  # less than a minute left
    assert logic.needs_claim(lease, "b", "alice", now=900)
    assert logic.needs_claim(lease, "a", "bob", now=900)
    assert logic.needs_claim(None, "a", "alice", now=0)


def test_the_oldest_age_reads_in_the_largest_useful_units():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert logic.age_text("2026-11-24T11:59:30.000Z", now) == "30 s"
    assert logic.age_text("2026-11-24T11:56:00Z", now) == "4 min"
    assert logic.age_text("2026-11-24T09:55:00.000Z", now) == "2 h 5 min"
    assert logic.age_text("2026-11-21T09:00:00.000Z", now) == "3 d 3 h"
    assert logic.age_text(None, now) == "-"


def test_a_lease_says_who_holds_the_item_while_it_runs():
    item = {"lease_holder": "bob", "lease_expires_at": 1_800_000_000}
    assert logic.lease_text(item, "alice", now=1_799_999_000) == "held by bob until 08:00:00 UTC"
    assert logic.lease_text(item, "bob", now=1_799_999_000).startswith("held by you")
    assert logic.lease_text(item, "alice", now=1_800_000_000) is None
    assert logic.lease_text({"lease_holder": None}, "alice", now=0) is None


def test_a_queue_row_is_one_short_line():
    item = {"lead_label": "insult", "scores": {"toxic": 0.4, "insult": 0.93},
            "comment_text": "you  are\na " + "very " * 20 + "fool"}  # fmt: skip
    line = logic.item_line(item, width=20)
    assert line.startswith("insult 0.93 · you are a very") and line.endswith("…")
    assert "\n" not in line
    assert "(text not stored)" in logic.item_line({**item, "comment_text": None})


def test_the_highlight_targets_streamlits_class_for_the_current_row():
    assert logic.css_key("review-a b/1") == "st-key-review-a-b-1"
    css = logic.highlight_css("r.1")
    assert ".st-key-review-r-1 {" in css and ".st-key-review-current" in css
    assert "<" not in logic.highlight_css('x"><script>')[7:-8]


def test_a_bulk_summary_says_what_was_refused_and_why():
    answer = {"decided": 1, "results": [
        {"request_id": "a", "status": "decided"},
        {"request_id": "b", "status": "conflict", "message": "b is claimed by bob"}]}  # fmt: skip
    line, decided = logic.bulk_summary("approve", answer)
    assert line == "Bulk approve: 1 decided, 1 not (b: b is claimed by bob)."
    assert decided == ["a"]


def test_review_work_calls_one_endpoint_each_with_only_what_was_given():
    seen: list[tuple[str, str, dict, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, dict(request.url.params), request.content))
        return httpx.Response(200, json={"ok": True})

    api = ApiClient(WebSettings(), transport=httpx.MockTransport(handler))
    api.reviews(5, order="oldest", moderator="alice")
    api.reviews(5, label="insult", policy="kids")
    api.claim_review("r-1", "alice")
    api.decide_review("r-1", "reject", "alice", reason="spam")
    api.decide_reviews(["r-1", "r-2"], "approve", "alice", notes="fine")
    api.undo_review("r-1", "alice")
    assert [(m, p) for m, p, _, _ in seen] == [
        ("GET", "/reviews"), ("GET", "/reviews"), ("POST", "/reviews/r-1/claim"),
        ("POST", "/reviews/r-1"), ("POST", "/reviews/bulk"), ("POST", "/reviews/r-1/undo"),
    ]  # fmt: skip
    base = {"status": "pending", "limit": "5", "explain": "true"}
    assert seen[0][2] == {**base, "order": "oldest", "moderator": "alice"}
    assert seen[1][2] == {**base, "label": "insult", "policy": "kids"}
    bodies = [json.loads(content) for _, _, _, content in seen[2:]]
    assert bodies == [
        {"moderator": "alice"},
        {"action": "reject", "moderator": "alice", "reason": "spam"},
        {"action": "approve", "moderator": "alice", "notes": "fine", "request_ids": ["r-1", "r-2"]},
        {"moderator": "alice"},
    ]


def test_a_claim_someone_else_holds_is_an_error_naming_them():
    body = error("conflict", "r-1 is claimed by bob until 1800000000 (epoch seconds)")
    with pytest.raises(ApiError) as caught:
        client_answering(409, body).claim_review("r-1", "alice")
    assert caught.value.status == 409 and "claimed by bob" in caught.value.message
