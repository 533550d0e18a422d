"""Load test (``make bench-load``) -> bench/results/load.json.

Starts the local stack (training/stack.py: moto server, API under uvicorn with one worker,
stream runner) serving the latest trained bundle, then drives it with locust, headless and
in-process, on loopback only, at a few concurrency levels, each bounded in requests and in
time. Traffic: real test-set comments with Zipf-like repetition (popular comments come back,
so the cache matters), batches of 2-20 and feedback on earlier predictions.

Afterwards it checks what a skeptical operator would: every prediction the API accepted is
in the log exactly once (and nothing else is), and the aggregates agree with a direct count
of the log per decision, per label, for cache hits and for feedback.
"""

# locust patches the standard library with gevent: it must be imported first
from locust import HttpUser, constant, task  # isort: skip
from locust.env import Environment  # isort: skip
from locust.exception import StopUser  # isort: skip

import random
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import gevent

from bench.common import write_results
from local.processes import start_stack
from moderation.labels import DECISIONS, LABELS
from moderation.settings import get_settings
from training.data import load_test

LEVELS = [(1, 300, 20), (4, 800, 25), (16, 1200, 30)]  # users, max requests, max seconds
SEED = 11


class Traffic:
    """Shared by every simulated user: what to send, and what the API accepted."""

    def __init__(self, comments: list[str]) -> None:
        self.comments = comments
        self.random = random.Random(SEED)
        self.weights = [1 / (rank + 1) ** 1.1 for rank in range(len(comments))]
        self.accepted: list[str] = []
        self.feedback_sent = 0
        self.lock = threading.Lock()
        self.sent = 0
        self.limit = 0

    def pick(self, k: int = 1) -> list[str]:
        return self.random.choices(self.comments, weights=self.weights, k=k)

    def take_slot(self) -> None:
        with self.lock:
            if self.sent >= self.limit:
                raise StopUser()
            self.sent += 1


TRAFFIC: Traffic


class ModerationUser(HttpUser):
    wait_time = constant(0)

    @task(14)
    def predict(self) -> None:
        TRAFFIC.take_slot()
        with self.client.post(
            "/predict", json={"comment_text": TRAFFIC.pick()[0]}, name="/predict",
            catch_response=True,
        ) as response:  # fmt: skip
            if response.status_code == 200:
                TRAFFIC.accepted.append(response.json()["request_id"])
                response.success()
            else:
                response.failure(f"{response.status_code}")

    @task(3)
    def batch(self) -> None:
        TRAFFIC.take_slot()
        texts = TRAFFIC.pick(TRAFFIC.random.randint(2, 20))
        with self.client.post(
            "/predict/batch", json={"comments": texts}, name="/predict/batch",
            catch_response=True,
        ) as response:  # fmt: skip
            if response.status_code == 200:
                TRAFFIC.accepted.extend(r["request_id"] for r in response.json()["results"])
                response.success()
            else:
                response.failure(f"{response.status_code}")

    @task(3)
    def feedback(self) -> None:
        if not TRAFFIC.accepted:
            return
        TRAFFIC.take_slot()
        request_id = TRAFFIC.random.choice(TRAFFIC.accepted)
        correct = TRAFFIC.random.random() < 0.8
        body = {"request_id": request_id, "correct": correct,
                "true_labels": None if correct else ["toxic"]}  # fmt: skip
        with self.client.post(
            "/feedback", json=body, name="/feedback", catch_response=True
        ) as response:
            # 201 new; 409 when a different verdict for the same prediction was already given
            if response.status_code in (201, 409):
                TRAFFIC.feedback_sent += (
                    response.status_code == 201 and not response.json()["duplicate"]
                )
                response.success()
            else:
                response.failure(f"{response.status_code}")


def run_level(api_url: str, users: int, max_requests: int, max_seconds: int) -> dict:
    TRAFFIC.sent, TRAFFIC.limit = 0, max_requests
    environment = Environment(user_classes=[ModerationUser], host=api_url)
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=users)
    started = time.monotonic()
    while TRAFFIC.sent < max_requests and time.monotonic() - started < max_seconds:
        gevent.sleep(0.1)
    runner.quit()
    total = environment.stats.total
    seconds = max(total.last_request_timestamp - total.start_time, 1e-9)
    return {
        "users": users,
        "requests": total.num_requests,
        "errors": total.num_failures,
        "requests_per_s": round(total.num_requests / seconds, 1),
        "p50_ms": total.get_response_time_percentile(0.50),
        "p95_ms": total.get_response_time_percentile(0.95),
        "p99_ms": total.get_response_time_percentile(0.99),
        "by_endpoint": {
            name: {
                "requests": entry.num_requests,
                "errors": entry.num_failures,
                "p50_ms": entry.get_response_time_percentile(0.5),
                "p99_ms": entry.get_response_time_percentile(0.99),
            }
            for (name, _), entry in environment.stats.entries.items()
        },  # fmt: skip
    }


def verify(stack, accepted: list[str]) -> dict:
    """The log holds each accepted prediction exactly once; the aggregates match the log."""
    stack.wait_for_aggregator(timeout=600)
    predictions = stack.items("prediction", ["request_id", "decision", "labels", "cached"])
    feedback = stack.items("feedback", ["request_id"])
    logged = Counter(p["request_id"] for p in predictions)
    direct = {"requests": len(predictions), "feedback": len(feedback),
              "cache_hits": sum(bool(p.get("cached")) for p in predictions)}  # fmt: skip
    direct |= {f"decision_{d}": sum(p["decision"] == d for p in predictions) for d in DECISIONS}
    direct |= {f"pos_{label}": sum(label in p["labels"] for p in predictions) for label in LABELS}
    counted = stack.aggregate_totals(list(direct))
    return {
        "accepted_predictions": len(accepted),
        "accepted_unique": len(set(accepted)),
        "logged_predictions": len(predictions),
        "logged_more_than_once": sum(n > 1 for n in logged.values()),
        "accepted_missing_from_log": len(set(accepted) - set(logged)),
        "logged_not_accepted": len(set(logged) - set(accepted)),
        "aggregates": counted,
        "direct_count": direct,
        "aggregates_match_log": counted == direct,
    }


def main() -> None:
    global TRAFFIC
    settings = get_settings()
    frame = load_test(settings.data_dir)[0]
    comments = frame["comment_text"][frame["comment_text"].str.len().between(1, 5000)]
    TRAFFIC = Traffic(comments.sample(n=1500, random_state=SEED).tolist())
    with tempfile.TemporaryDirectory() as scratch:
        stack = start_stack(Path(scratch), settings.artifacts_dir.resolve(), with_ui=False)
        try:
            levels = [run_level(stack.api_url, *level) for level in LEVELS]
            checks = verify(stack, TRAFFIC.accepted)
        finally:
            stack.stop()
    results = {
        "setup": "local stack on loopback: API = uvicorn, 1 worker; moto server; stream runner; "
        "locust in-process (gevent), same 2-core machine",
        "traffic": "real test_scored comments, Zipf(1.1) repetition over 1,500; 70% /predict, "
        "15% /predict/batch (2-20), 15% /feedback",
        "levels": levels,
        "consistency": checks,
    }
    path = write_results("load", results)
    print(
        f"{'users':>5} {'requests':>8} {'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6} {'errors':>6}"
    )
    for level in levels:
        print(f"{level['users']:>5} {level['requests']:>8} {level['requests_per_s']:>7} "
              f"{level['p50_ms']:>6} {level['p95_ms']:>6} {level['p99_ms']:>6} "
              f"{level['errors']:>6}")  # fmt: skip
    print(
        f"log: {checks['logged_predictions']} predictions for {checks['accepted_unique']} "
        f"accepted; duplicates {checks['logged_more_than_once']}, missing "
        f"{checks['accepted_missing_from_log']}; aggregates match log: "
        f"{checks['aggregates_match_log']}"
    )
    print(f"written to {path}")
    if not checks["aggregates_match_log"] or checks["accepted_missing_from_log"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
