"""Restart benchmark (``make bench-restart``) -> bench/results/restart.json.

``make run``'s own command (honcho on ``local/Procfile``, all five processes) on free
loopback ports, over a scratch state folder, serving a copy of the latest trained bundle:

1. start with an empty state (tables created, the model registered), log one prediction
   that goes to human review (the oldest item of the queue), stop as Ctrl-C does;
2. then for 1,000, 10,000 and 50,000 logged predictions in all (real test comments made
   unique by a numbered suffix, so every one is a cache miss and the state is the largest it
   can be, sent through ``POST /predict/batch``, 100 per call), once the stream runner has
   counted them: stop (SIGINT to the process group), start again and time it.

Each start is timed from launching honcho to ``GET /health`` answering 200, and to the stream
runner caught up (a probe prediction sent after /health counted in the aggregates). After
each restart it checks that the log holds every prediction answered, that the aggregates
equal a direct count of the log, that the review item is still the oldest in the queue and
that an earlier ``request_id`` still takes feedback (201). It records the size of the state
on disk, and, after 10,000 and 50,000 predictions, the time to draw the dashboard's 24-hour
view (``dashboard/app.py`` under Streamlit's AppTest against the stack's moto, caches cleared,
median of 3).

``python -m bench.restart --sizes 1000 10000`` measures fewer sizes.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import write_results
from local.processes import BIN, REPO, LocalStack, free_port, stack_env, wait_until

SIZES = (1_000, 10_000, 50_000)
DASHBOARD_SIZES = (10_000, 50_000)
BATCH = 100
TARGET_RESTART_S = 10.0
TARGET_RATIO = 1.5
TARGET_DASHBOARD_S = 3.0
APP = REPO / "dashboard" / "app.py"


class MakeRun:
    """``make run``'s honcho over a scratch state folder, on free ports."""

    def __init__(self, scratch: Path, artifacts: Path) -> None:
        self.state = scratch / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.env = stack_env(self.state, artifacts)
        ports = {name: str(free_port()) for name in ("API_PORT", "WEB_PORT", "DASHBOARD_PORT")}
        self.env |= ports | {"API_URL": f"http://127.0.0.1:{ports['API_PORT']}"}
        self.api = self.env["API_URL"]
        self.env_file = scratch / "bench.env"
        keys = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION", "AWS_ACCOUNT_ID_ENDPOINT_MODE", "MOTO_PORT",
                "LOCAL_STATE_DIR", "ARTIFACTS_DIR", "MODEL_CACHE_DIR", "PYTHONUNBUFFERED",
                "API_PORT", "WEB_PORT", "DASHBOARD_PORT", "API_URL")  # fmt: skip
        self.env_file.write_text("".join(f"{k}={self.env[k]}\n" for k in keys))
        self.log = scratch / "honcho.log"
        self.process: subprocess.Popen | None = None
        self.client = LocalStack(env=self.env, logs=self.state)

    def start(self) -> dict[str, float]:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(BIN / "honcho"), "-e", str(self.env_file), "-f", "local/Procfile", "start"],
            cwd=REPO, env=self.env, stdout=self.log.open("a"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_until(
            lambda: httpx.get(f"{self.api}/health", timeout=2).status_code == 200,
            "the API's /health", timeout=600, interval=0.05,
        )  # fmt: skip
        return {"health_s": round(time.perf_counter() - started, 2)}

    def stop(self) -> float:
        """Ctrl-C: SIGINT to the whole process group, then wait for honcho."""
        started = time.perf_counter()
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(120)
        return round(time.perf_counter() - started, 2)


def comments() -> list[str]:
    from moderation.settings import get_settings
    from training.data import SAMPLE_DIR, load_test

    loaded = load_test(get_settings().data_dir) or load_test(SAMPLE_DIR)
    frame = loaded[0]
    texts = frame["comment_text"].astype(str).str.strip()
    return [t[:2000] for t in texts if t]


def seed(api: str, texts: list[str], first: int, count: int) -> list[str]:
    """``count`` predictions through /predict/batch (BATCH per call, 2 callers at once),
    comment ``i`` (from ``first`` on) being ``texts[i % len] + " [i]"``; returns the request
    ids answered."""
    ids: list[str] = []
    lock = threading.Lock()

    def send(offset: int) -> None:
        size = min(BATCH, first + count - offset)
        batch = [f"{texts[i % len(texts)]} [{i}]" for i in range(offset, offset + size)]
        response = httpx.post(f"{api}/predict/batch", json={"comments": batch}, timeout=120)
        response.raise_for_status()
        with lock:
            ids.extend(r["request_id"] for r in response.json()["results"])

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(send, range(first, first + count, BATCH)))
    return ids


def totals(stack: LocalStack) -> dict[str, int]:
    return stack.aggregate_totals(["requests", "feedback"])


def wait_counted(stack: LocalStack, requests: int, timeout: float = 3600) -> None:
    wait_until(lambda: totals(stack)["requests"] >= requests, "the aggregator", timeout, 0.25)


def state_size(state: Path) -> dict[str, float]:
    moto = sum(p.stat().st_size for p in state.glob("moto-*"))
    every = sum(p.stat().st_size for p in state.rglob("*") if p.is_file())
    return {"moto_state_mb": round(moto / 1e6, 1), "state_dir_mb": round(every / 1e6, 1)}


def draw_dashboard(env: dict[str, str], repeats: int = 3) -> dict:
    """The dashboard's 24-hour view (its default page) under AppTest, against the stack."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from moderation.settings import get_settings

    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_DEFAULT_REGION", "AWS_ACCOUNT_ID_ENDPOINT_MODE"):  # fmt: skip
        os.environ[name] = env[name]
    get_settings.cache_clear()
    runs = []
    for _ in range(repeats):
        st.cache_data.clear()
        st.cache_resource.clear()
        started = time.perf_counter()
        app = AppTest.from_file(str(APP), default_timeout=600).run()
        runs.append(time.perf_counter() - started)
        assert not app.exception, app.exception
        charts = len(app.get("plotly_chart"))
    caption = next((c.value for c in app.caption if " per " in c.value), "")
    return {
        "page_s_median": round(statistics.median(runs), 2),
        "page_s_runs": [round(r, 2) for r in runs],
        "charts": charts,
        "header": caption,
    }


def in_log(stack: LocalStack, request_ids: list[str]) -> int:
    """How many of ``request_ids`` have their prediction in the log (BatchGetItem, 100 at a
    time: a Scan of 50,000 items pages quadratically on moto)."""
    from moderation.settings import Settings

    client, table, found = stack.client("dynamodb"), Settings().predictions_table, 0
    for offset in range(0, len(request_ids), 100):
        keys = [
            {"pk": {"S": i}, "sk": {"S": "PREDICTION"}} for i in request_ids[offset : offset + 100]
        ]
        request = {table: {"Keys": keys, "ProjectionExpression": "pk"}}
        while request:
            response = client.batch_get_item(RequestItems=request)
            found += len(response["Responses"].get(table, []))
            request = response.get("UnprocessedKeys") or {}
    return found


def log_items(stack: LocalStack) -> int:
    """Every item of the prediction log (predictions and feedback), as the table counts it."""
    from moderation.settings import Settings

    table = stack.client("dynamodb").describe_table(TableName=Settings().predictions_table)
    return table["Table"]["ItemCount"]


def consistent(stack: LocalStack, predictions: int, timeout: float = 120) -> bool:
    """Whether the aggregates come to equal a direct count of the log (predictions and
    feedback: the table's item count) within ``timeout``."""
    try:
        wait_until(
            lambda: (counted := totals(stack))["requests"] == predictions
            and counted["requests"] + counted["feedback"] == log_items(stack),
            "the aggregates equal to the log", timeout, interval=1,
        )  # fmt: skip
    except TimeoutError:
        return False
    return True


def moto_lines(log: Path, offset: int) -> list[str]:
    """moto's own lines of honcho's log after ``offset``: what the stop and the start did."""
    text = log.read_text(errors="replace")[offset:]
    keep = ("snapshot moto-", "state loaded", "stopped", "SIGKILL", "unusable", "damaged")
    return [
        line.split("| ", 1)[-1].strip()
        for line in text.splitlines()
        if "moto.1" in line and any(k in line for k in keep)
    ]


def restart(run: MakeRun, answered: list[str], review_id: str, feedback_id: str) -> dict:
    """Stop, start, and check what the issue's 'done when' asks."""
    offset = run.log.stat().st_size
    stop_s = run.stop()
    size = state_size(run.state)
    started = time.perf_counter()
    timing = run.start()
    probe = httpx.post(f"{run.api}/predict", json={"comment_text": "a probe after restart"})
    probe.raise_for_status()
    answered.append(probe.json()["request_id"])
    wait_counted(run.client, len(answered), timeout=600)
    timing["caught_up_s"] = round(time.perf_counter() - started, 2)
    found = in_log(run.client, answered)
    queue_started = time.perf_counter()
    queue = httpx.get(
        f"{run.api}/reviews",
        params={"status": "pending", "order": "oldest", "limit": 1},
        timeout=120,
    ).json()
    queue_s = time.perf_counter() - queue_started
    feedback = httpx.post(
        f"{run.api}/feedback", json={"request_id": feedback_id, "correct": True}, timeout=30
    )
    result = {
        **timing,
        "stop_s": stop_s,
        **size,
        "predictions_answered": len(answered),
        "log_holds_every_answered": found == len(answered),
        "review_item_oldest_in_queue": [i["request_id"] for i in queue["items"]] == [review_id],
        "review_queue_first_page_s": round(queue_s, 2),
        "earlier_request_id_feedback_status": feedback.status_code,
        "aggregates_equal_log": consistent(run.client, len(answered)),
        "moto": moto_lines(run.log, offset),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    args = parser.parse_args()
    from moderation.settings import get_settings
    from training.register import latest_bundle

    bundle = latest_bundle(get_settings().artifacts_dir)
    texts = comments()
    scratch = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    shutil.copytree(bundle, scratch / "artifacts" / "bundles" / bundle.name)
    (scratch / "artifacts" / "bundles" / "LATEST").write_text(bundle.name)
    run = MakeRun(scratch, scratch / "artifacts")
    results: dict = {
        "setup": "make run's honcho (moto, bootstrap + API, stream runner, moderator UI, "
        "dashboard) on loopback; seeded through POST /predict/batch, 100 per call",
        "comments": f"{len(texts):,} real test comments, each made unique by a number",
    }
    try:
        first = run.start()
        forced = {"comment_text": "the oldest item in the review queue", "thresholds": {"toxic": 0}}
        review_id = httpx.post(f"{run.api}/predict", json=forced).json()["request_id"]
        answered = [review_id]
        wait_counted(run.client, len(answered))
        results["first_start"] = first
        results["empty"] = restart(run, answered, review_id, review_id)
        seeded = 0  # through /predict/batch (besides the review item and the probes)
        for size in args.sizes:
            started = time.perf_counter()
            ids = seed(run.api, texts, seeded, size - seeded)
            seeded += len(ids)
            answered += ids
            wait_counted(run.client, len(answered))
            seeded_s = time.perf_counter() - started
            print(f"{size:,} predictions logged and counted in {seeded_s:.0f}s", flush=True)
            results[str(size)] = {"seed_and_count_s": round(seeded_s, 1)}
            results[str(size)] |= restart(run, answered, review_id, ids[0])
            if size in DASHBOARD_SIZES:
                results[str(size)]["dashboard_24h"] = draw_dashboard(run.env)
    finally:
        if run.process and run.process.poll() is None:
            run.stop()
    sizes = [str(s) for s in args.sizes]
    empty = results["empty"]["health_s"]
    results["targets"] = {
        "restart_s_at_most": TARGET_RESTART_S,
        "largest_over_empty_at_most": TARGET_RATIO,
        "dashboard_24h_s_at_most": TARGET_DASHBOARD_S,
        "largest_over_empty": round(results[sizes[-1]]["health_s"] / empty, 2),
        "met": all(results[s]["health_s"] <= TARGET_RESTART_S for s in ["empty", *sizes])
        and results[sizes[-1]]["health_s"] / empty <= TARGET_RATIO
        and all(
            results[s]["dashboard_24h"]["page_s_median"] <= TARGET_DASHBOARD_S
            for s in sizes
            if "dashboard_24h" in results[s]
        ),
    }
    write_results("restart", results)
    if args.keep:
        print(f"kept {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
