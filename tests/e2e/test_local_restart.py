"""The local stack's state across restarts, as processes (``local/processes.py``): stopped as
Ctrl-C stops it and started again, every logged prediction, its review item and the
aggregates are still there and the stream runner neither skips nor repeats a record; moto
killed with SIGKILL in the middle of traffic loses no prediction that was answered."""

import threading

import httpx
import pytest

from local.moto_server import moto_status
from local.processes import start_stack, wait_until

pytestmark = pytest.mark.slow

FORCED_REVIEW = {"toxic": 0.0}


def batch(stack, first: int, size: int) -> list[str]:
    comments = [f"restart test comment number {i}, a perfectly civil remark" for i in
                range(first, first + size)]  # fmt: skip
    response = httpx.post(f"{stack.api_url}/predict/batch", json={"comments": comments}, timeout=60)
    response.raise_for_status()
    return [r["request_id"] for r in response.json()["results"]]


def pending_reviews(stack) -> list[str]:
    page = httpx.get(f"{stack.api_url}/reviews", params={"status": "pending", "limit": 100})
    return [item["request_id"] for item in page.json()["items"]]


@pytest.fixture(scope="module")
def stack_home(tmp_path_factory, trained, session_env):
    return tmp_path_factory.mktemp("restarted-stack"), session_env / "artifacts"


def test_stop_and_start_keeps_the_log_the_queue_and_the_counts(stack_home):
    state, artifacts = stack_home
    # GIVEN a stack that logged a prediction sent to review and 300 more, all counted
    stack = start_stack(state, artifacts, with_ui=False)
    try:
        queued = httpx.post(
            f"{stack.api_url}/predict",
            json={"comment_text": "is this one fine?", "thresholds": FORCED_REVIEW},
        ).json()
        assert queued["decision"] == "review"
        logged = [queued["request_id"]] + [i for n in range(3) for i in batch(stack, n * 100, 100)]
        stack.wait_for_aggregator(timeout=120)
        before = stack.aggregate_totals(["requests", "feedback", "review_in"])
    finally:
        # WHEN it is stopped as Ctrl-C stops it, and started again on the same state
        stack.stop()
    stack = start_stack(state, artifacts, with_ui=False)
    try:
        # THEN it serves, every prediction is in the log, the review item still waits
        assert httpx.get(f"{stack.api_url}/health").status_code == 200
        assert {p["pk"] for p in stack.items("prediction", ["pk"])} == set(logged)
        assert queued["request_id"] in pending_reviews(stack)
        # ... a request id logged before the restart still takes feedback
        feedback = httpx.post(
            f"{stack.api_url}/feedback", json={"request_id": logged[1], "correct": True}
        )
        assert feedback.status_code == 201
        # ... and the stream runner goes on from where it was: the aggregates equal a direct
        # count of the log, before and after new traffic (nothing skipped, nothing twice)
        assert stack.aggregate_totals(["requests", "feedback", "review_in"]) == before
        batch(stack, 300, 50)
        stack.wait_for_aggregator(timeout=120)
        assert stack.aggregate_totals(["requests"]) == {"requests": len(logged) + 50}
        assert "state loaded" in stack.log("moto")
    finally:
        stack.stop()


def test_kill_9_of_moto_mid_traffic_loses_no_answered_prediction(stack_home, tmp_path):
    state, artifacts = tmp_path, stack_home[1]
    stack = start_stack(state, artifacts, with_ui=False, MOTO_SNAPSHOT_WRITES="20")
    answered: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        first = 0
        while not stop.is_set():
            try:
                answered.extend(batch(stack, first, 10))
            except httpx.HTTPError:
                pass  # moto is down: the API answers 503, nothing is promised
            first += 10

    sender = threading.Thread(target=traffic)
    try:
        # GIVEN predictions flowing through the API (and moto taking snapshots meanwhile)
        sender.start()
        wait_until(lambda: len(answered) >= 300, "300 answered predictions", 120)
        # WHEN moto is killed without warning, and started again while traffic goes on
        stack.kill("moto")
        stack.start_moto()
        seen = len(answered)
        wait_until(lambda: len(answered) >= seen + 50, "traffic after the restart", 120)
    finally:
        stop.set()
        sender.join(timeout=60)
    try:
        # THEN every prediction that was answered is in the log, once
        logged = [p["pk"] for p in stack.items("prediction", ["pk"])]
        assert set(answered) <= set(logged) and len(logged) == len(set(logged))
        # ... moto rebuilt its state from a snapshot and the journal after it, and the stream
        # runner, which never stopped, catches up with the log
        loaded = moto_status(stack.env["AWS_ENDPOINT_URL"])["load"]
        assert loaded["snapshot"] and loaded["damaged_records"] == 0
        stack.wait_for_aggregator(timeout=180)
    finally:
        stack.stop()
