"""Aggregation catch-up on the local stack (``make bench-catch-up``) ->
bench/results/catch_up.json.

5,000 predictions through ``POST /predict/batch`` (50 calls of 100 real comments), then the
time from the last answer until the aggregates count every one of them (the local stream
runner calls the same handler Lambda does, a batch of up to 1,000 at a time).
Target: within 20 s.
"""

import shutil
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import write_results
from local.processes import start_stack
from moderation.settings import get_settings
from training.data import SAMPLE_DIR, load_test

PREDICTIONS, BATCH = 5000, 100


def main() -> None:
    texts = [t for t in load_test(SAMPLE_DIR)[0]["comment_text"] if t.strip()]
    scratch = Path(tempfile.mkdtemp(prefix="bench-catch-up-"))
    # the latest trained bundle (``make train``), else one trained first
    stack = start_stack(scratch / "state", get_settings().artifacts_dir, with_ui=False)
    try:
        started = time.perf_counter()
        with httpx.Client(base_url=stack.api_url, timeout=60) as client:
            for offset in range(0, PREDICTIONS, BATCH):
                # distinct texts: a batch's repeats would be cache hits, counted the same
                comments = [f"{texts[(offset + i) % len(texts)][:2000]} #{offset + i}"
                            for i in range(BATCH)]  # fmt: skip
                response = client.post("/predict/batch", json={"comments": comments})
                response.raise_for_status()
        answered = time.perf_counter()
        while stack.aggregate_totals(["requests"])["requests"] < PREDICTIONS:
            time.sleep(0.2)
        counted = time.perf_counter()
        logged = stack.count("prediction")
        results = {
            "predictions": PREDICTIONS,
            "logged": logged,
            "counted": stack.aggregate_totals(["requests"])["requests"],
            "sending_s": round(answered - started, 1),
            "counted_within_s_of_last_answer": round(counted - answered, 1),
            "target_s": 20,
        }
        write_results("catch_up", results)
    finally:
        stack.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
