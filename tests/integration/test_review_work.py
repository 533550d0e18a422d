"""Review work a team runs all day: priority order and lanes, claims with leases, reasons,
bulk decisions, undo, the audit log and its CSV export, and the prediction status lookup,
through the API against moto tables from template.yaml."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from moderation.labels import LABELS
from moderation.records import PredictionRecord
from tests.assertions import assert_error_shape
from tests.fakes import prediction_record, queued

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock(service):
    """The service's clock, moved by the test: ``clock.now += timedelta(...)``."""

    class Clock:
        now = T0

    service.clock = lambda: Clock.now
    return Clock


def ids(page) -> list[str]:
    return [item["request_id"] for item in page["items"]]


def test_the_queue_is_ordered_by_closeness_to_block_then_severity_then_age(client, service):
    # GIVEN items near block (0.93), further (0.71), and two at 0.72 of different severity
    queued(service, "old-mild", "2026-11-24T09:00:00.000Z", toxic=0.71)
    queued(service, "near-block", "2026-11-24T09:30:00.000Z", toxic=0.93)
    queued(service, "threat", "2026-11-24T09:50:00.000Z", toxic=0.6, threat=0.72)
    queued(service, "insult", "2026-11-24T09:40:00.000Z", toxic=0.6, insult=0.73)
    queued(service, "old-threat", "2026-11-24T09:10:00.000Z", toxic=0.6, threat=0.74)
    # WHEN the queue is read (priority is the default order), two at a time
    first = client.get("/reviews", params={"limit": 2}).json()
    rest = client.get("/reviews", params={"limit": 10, "cursor": first["next_cursor"]}).json()
    # THEN closest to block first; in one band the more severe, then the older
    assert ids(first) + ids(rest) == ["near-block", "old-threat", "threat", "insult", "old-mild"]
    assert first["oldest_created_at"] == "2026-11-24T09:00:00.000Z"
    assert first["reasons"] == ["ok", "spam", "harassment", "hate", "threat", "sexual", "other"]
    # AND oldest-first is still there for who wants it
    oldest = client.get("/reviews", params={"order": "oldest"}).json()
    assert ids(oldest)[0] == "old-mild"


def test_the_queue_filters_by_label_lane_and_policy(client, service):
    queued(service, "a", "2026-11-24T09:00:00.000Z", "forum", toxic=0.8, threat=0.6)
    queued(service, "b", "2026-11-24T09:01:00.000Z", "forum", toxic=0.9)
    queued(service, "c", "2026-11-24T09:02:00.000Z", None, toxic=0.7, threat=0.9)
    queued(service, "d", "2026-11-24T09:03:00.000Z", "kids", insult=0.6)
    # a label lane holds the items whose most severe flagged label it is
    assert ids(client.get("/reviews", params={"label": "threat"}).json()) == ["c", "a"]
    assert ids(client.get("/reviews", params={"label": "toxic"}).json()) == ["b"]
    assert ids(client.get("/reviews", params={"policy": "forum"}).json()) == ["b", "a"]
    both = client.get("/reviews", params={"policy": "forum", "label": "threat"}).json()
    assert ids(both) == ["a"]
    # a decided item leaves its lanes
    client.post("/reviews/a", json={"action": "approve", "moderator": "m"})
    assert ids(client.get("/reviews", params={"label": "threat"}).json()) == ["c"]
    bad = client.get("/reviews", params={"label": "threat", "status": "decided"})
    assert_error_shape(bad, 422, "invalid_request")
    assert_error_shape(client.get("/reviews", params={"label": "rude"}), 422)


def test_two_moderators_claiming_one_item_one_gets_409(client, service, clock):
    queued(service, "item", "2026-11-24T09:00:00.000Z", toxic=0.8)
    # WHEN alice claims it, then bob tries
    alice = client.post("/reviews/item/claim", json={"moderator": "alice"})
    bob = client.post("/reviews/item/claim", json={"moderator": "bob"})
    # THEN alice holds it for the lease; bob gets 409 and cannot decide it either
    assert alice.status_code == 200, alice.text
    assert alice.json()["lease_expires_at"] == int(T0.timestamp()) + 300
    assert_error_shape(bob, 409, "conflict")
    assert "alice" in bob.json()["error"]["message"]
    decide = client.post("/reviews/item", json={"action": "reject", "moderator": "bob"})
    assert_error_shape(decide, 409, "conflict")
    # AND bob's queue skips it while alice's shows it, marked as hers
    assert ids(client.get("/reviews", params={"moderator": "bob"}).json()) == []
    (mine,) = client.get("/reviews", params={"moderator": "alice"}).json()["items"]
    assert mine["lease_holder"] == "alice"
    # AND alice claiming again renews her lease
    clock.now += timedelta(seconds=100)
    again = client.post("/reviews/item/claim", json={"moderator": "alice"})
    assert again.json()["lease_expires_at"] == int(T0.timestamp()) + 400
    assert client.post("/reviews/item", json={"action": "approve", "moderator": "alice"}).is_success


def test_a_lease_expires_by_itself(client, service, clock):
    queued(service, "item", "2026-11-24T09:00:00.000Z", toxic=0.8)
    assert client.post("/reviews/item/claim", json={"moderator": "alice"}).is_success
    clock.now += timedelta(seconds=299)
    assert client.post("/reviews/item/claim", json={"moderator": "bob"}).status_code == 409
    # WHEN alice's five minutes are over, with nothing run in between
    clock.now += timedelta(seconds=2)
    # THEN bob sees the item and can claim it
    assert ids(client.get("/reviews", params={"moderator": "bob"}).json()) == ["item"]
    assert client.post("/reviews/item/claim", json={"moderator": "bob"}).status_code == 200
    assert client.post("/reviews/item/claim", json={"moderator": "alice"}).status_code == 409


def test_a_decision_takes_a_configured_reason_code_and_a_note(client, service):
    queued(service, "item", "2026-11-24T09:00:00.000Z", toxic=0.8)
    bad = client.post("/reviews/item", json={"action": "reject", "moderator": "m", "reason": "x"})
    assert_error_shape(bad, 422, "invalid_request")
    assert bad.json()["error"]["details"][0]["field"] == "reason"
    body = {"action": "reject", "moderator": "m", "reason": "harassment", "notes": "repeat"}
    decided = client.post("/reviews/item", json=body).json()
    assert decided["reason"] == "harassment" and decided["action"] == "reject"


def test_bulk_decisions_decide_each_selected_item_and_report_the_rest(client, service, stack):
    for n in range(3):
        queued(service, f"i{n}", f"2026-11-24T09:0{n}:00.000Z", toxic=0.8)
    client.post("/reviews/i2/claim", json={"moderator": "bob"})
    # WHEN alice approves i0, i1, i2 and an unknown id in one request
    body = {"action": "approve", "moderator": "alice", "reason": "ok"}
    response = client.post("/reviews/bulk", json=body | {"request_ids": ["i0", "i1", "i2", "zz"]})
    # THEN the two free items are decided; bob's and the unknown one are reported
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["decided"] == 2
    assert [(r["request_id"], r["status"]) for r in result["results"]] == [
        ("i0", "decided"),
        ("i1", "decided"),
        ("i2", "conflict"),
        ("zz", "not_found"),
    ]
    moderator_feedback = [f["pk"] for f in stack.items("feedback")]
    assert sorted(moderator_feedback) == ["i0", "i1"]
    empty = client.post("/reviews/bulk", json=body | {"request_ids": []})
    assert_error_shape(empty, 422)


def test_undo_inside_the_window_reopens_and_keeps_the_aggregates_right(
    client, service, stack, clock, drain_stream
):
    # GIVEN a real prediction sent to review and counted
    made = client.post("/predict", json={"comment_text": "a b c", "thresholds": {"toxic": 0.0}})
    rid = made.json()["request_id"]
    assert made.json()["decision"] == "review"
    drain_stream()
    assert client.get("/reviews").json()["count"] == 1
    client.post(f"/reviews/{rid}", json={"action": "approve", "moderator": "alice"})
    drain_stream()
    assert client.get("/reviews").json()["count"] == 0
    # WHEN alice undoes it two minutes later
    clock.now += timedelta(seconds=120)
    undone = client.post(f"/reviews/{rid}/undo", json={"moderator": "alice"})
    # THEN it is pending again, held by her, its feedback withdrawn, counted back in
    assert undone.status_code == 200, undone.text
    assert stack.items("feedback") == []
    drain_stream()
    page = client.get("/reviews", params={"moderator": "bob"}).json()
    assert page["count"] == 1 and ids(page) == []  # held by alice
    # AND when she decides again, the counters count one decision, not two
    clock.now += timedelta(seconds=5)
    client.post(f"/reviews/{rid}", json={"action": "reject", "moderator": "alice"})
    drain_stream()
    lifetime = stack.service().review_counts.lifetime("ALL", ("review_out", "feedback"))
    assert lifetime == {"review_out": 1, "feedback": 1}
    assert client.get("/reviews").json()["count"] == 0
    history = client.get(f"/predictions/{rid}").json()["history"]
    assert [line["action"] for line in history] == ["approve", "undo", "reject"]


def test_undo_outside_the_window_or_of_someone_elses_decision_is_refused(client, service, clock):
    queued(service, "item", "2026-11-24T09:00:00.000Z", toxic=0.8)
    client.post("/reviews/item", json={"action": "approve", "moderator": "alice"})
    assert_error_shape(client.post("/reviews/item/undo", json={"moderator": "bob"}), 403)
    clock.now += timedelta(seconds=301)
    late = client.post("/reviews/item/undo", json={"moderator": "alice"})
    assert_error_shape(late, 409, "conflict")
    assert "undo window" in late.json()["error"]["message"]
    never = client.post("/reviews/none/undo", json={"moderator": "alice"})
    assert_error_shape(never, 404)


def test_every_decision_undo_and_lease_is_in_the_audit_export(client, service, stack, clock):
    queued(service, "item", "2026-11-24T09:00:00.000Z", toxic=0.8)
    client.post("/reviews/item/claim", json={"moderator": "=cmd|' /C calc'!A0"})
    clock.now += timedelta(seconds=400)
    client.post("/reviews/item/claim", json={"moderator": "alice"})
    client.post("/reviews/item", json={"action": "reject", "moderator": "alice", "reason": "spam"})
    client.post("/reviews/item/undo", json={"moderator": "alice"})
    # WHEN the day is exported
    response = client.get("/reviews/audit.csv", params={"from": "2026-11-24"})
    # THEN each line says who, what, when and why, and no cell is a spreadsheet formula
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["action"], r["moderator"], r["reason"]) for r in rows] == [
        ("claim", "'=cmd|' /C calc'!A0", ""),
        ("claim", "alice", ""),
        ("reject", "alice", "spam"),
        ("undo", "alice", "spam"),
    ]
    assert rows[2]["at"] == "2026-11-24T10:06:40.000Z" and rows[2]["request_id"] == "item"
    # AND the audit log outlives the prediction (TTL expiry deletes only the prediction)
    stack.dynamodb.delete_item(
        TableName=stack.settings.predictions_table,
        Key={"pk": {"S": "item"}, "sk": {"S": "PREDICTION"}},
    )
    again = client.get("/reviews/audit.csv", params={"from": "2026-11-23", "to": "2026-11-24"})
    assert len(list(csv.DictReader(io.StringIO(again.text)))) == 4
    assert "comment" not in again.text.split("\n")[0]
    backwards = client.get("/reviews/audit.csv", params={"from": "2026-11-24", "to": "2026-11-01"})
    assert_error_shape(backwards, 422)


def test_prediction_status_gives_the_outcome_with_its_reason_and_the_feedback(client, service):
    made = client.post("/predict", json={"comment_text": "thanks for the fix"}).json()
    status = client.get(f"/predictions/{made['request_id']}")
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["comment_text"] == "thanks for the fix" and body["decision"] == made["decision"]
    assert body["outcome"]["source"] == "model" and body["outcome"]["decision"] == "allow"
    assert body["review_status"] is None and body["feedback"] == [] and body["history"] == []
    client.post("/feedback", json={"request_id": made["request_id"], "correct": True})
    (feedback,) = client.get(f"/predictions/{made['request_id']}").json()["feedback"]
    assert feedback["source"] == "api" and feedback["correct"] is True


def test_prediction_status_of_a_review_waits_then_says_what_the_moderator_decided(client):
    text = {"comment_text": "hidden words", "store_text": False, "thresholds": {"toxic": 0.0}}
    rid = client.post("/predict", json=text).json()["request_id"]
    pending = client.get(f"/predictions/{rid}").json()
    assert pending["review_status"] == "pending" and pending["outcome"] is None
    assert pending["comment_text"] is None and pending["text_stored"] is False
    body = {"action": "reject", "moderator": "alice", "reason": "spam"}
    client.post(f"/reviews/{rid}", json=body)
    decided = client.get(f"/predictions/{rid}").json()
    assert decided["review_status"] == "decided"
    outcome = decided["outcome"]
    assert outcome["source"] == "moderator" and outcome["reason"] == "spam"
    assert outcome["decision"] == "block" and outcome["decided_at"]
    assert [f["source"] for f in decided["feedback"]] == ["moderator"]


def test_prediction_status_is_only_the_callers(client, stack, make_client):
    rid = client.post("/predict", json={"comment_text": "mine"}).json()["request_id"]
    other = client.get(f"/predictions/{rid}", headers={"x-api-key": "someone-else"})
    assert_error_shape(other, 404, "not_found")
    assert_error_shape(client.get("/predictions/nope"), 404, "not_found")


def test_queue_records_carry_their_priority_and_lanes():
    record = PredictionRecord.model_validate(
        prediction_record(
            request_id="x", labels=["toxic", "threat"], decision="review", review_status="pending"
        ).model_dump()
        | {"scores": dict.fromkeys(LABELS, 0.1) | {"toxic": 0.9, "threat": 0.6}}
    )
    assert record.lead_label == "threat"
    assert record.review_label_queue.startswith("pending#threat#")
    assert record.review_policy_queue is None
    assert record.review_priority.startswith("81#6#")
