"""Model benchmark (``make bench-model``) -> bench/results/model.json.

Trains on the full data folder (DATA_DIR) and the extra sources beside it, then measures the
bundle and both scorers on the same 2,000 real test comments. Targets (2-core machine):
training < 10 min, bundle <= 60 MB, load < 0.5 s in a fresh process, lean single-comment
p50 < 0.3 ms and p99 < 1.5 ms, batch >= 4,000 comments/s, mean ROC-AUC on test_scored
>= 0.974 (goal 0.980).
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import peak_rss_mb, percentiles_ms, timed, write_results
from moderation.model.bundle import load_bundle
from moderation.settings import get_settings
from moderation.text import normalize_text
from training.data import default_extra_dir, load_test
from training.model import Hyperparameters
from training.train import train

LOAD_SNIPPET = """
import time, json, sys
t0 = time.perf_counter()
from moderation.model.bundle import load_bundle
t1 = time.perf_counter()
scorer = load_bundle(__import__('pathlib').Path(sys.argv[1]))
t2 = time.perf_counter()
scorer.score('hello there')
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_score_s": t3 - t2}))
"""


LATENCY_SNIPPET = """
import json, sys, time
from pathlib import Path
from moderation.model.bundle import load_bundle
from moderation.text import normalize_text
scorer = load_bundle(Path(sys.argv[1]))
texts = json.loads(Path(sys.argv[2]).read_text())
for i in range(50):  # warm-up on comments outside the measured set
    scorer.score(f"warm-up comment number {i}, nothing to see")
normalize_text.cache_clear()  # every measured comment is new to the scorer, as in serving
single = []
for text in texts:
    start = time.perf_counter()
    scorer.score(text)
    single.append(time.perf_counter() - start)
batches = [texts[i : i + 100] for i in range(0, len(texts), 100)]
passes = []
for _ in range(3):
    start = time.perf_counter()
    for batch in batches:
        scorer.score_many(batch)
    passes.append(time.perf_counter() - start)
print(json.dumps({"single_s": single, "batch_pass_s": passes}))
"""


def lean_latency_fresh_process(bundle_dir: Path, texts: list[str]) -> dict[str, list[float]]:
    """The lean scorer as serving runs it: in a fresh process (a Lambda container), not in
    this one, whose 4 GB training heap adds garbage-collector pauses. Each comment scored
    alone (``single_s``), then three passes over the comments in batches of 100
    (``batch_pass_s``, ``/predict/batch``'s largest)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(texts, handle)
    out = subprocess.run(
        [sys.executable, "-c", LATENCY_SNIPPET, str(bundle_dir), handle.name],
        capture_output=True,
        text=True,
        check=True,
    )
    Path(handle.name).unlink()
    return json.loads(out.stdout)


def per_comment(fn, texts: list[str]) -> list[float]:
    times = []
    for text in texts:
        start = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    settings = get_settings()
    out_dir = Path("bench/scratch/bundles")
    result, train_seconds = timed(
        train,
        settings.data_dir,
        out_dir,
        Hyperparameters(),
        track=False,
        extra_dir=default_extra_dir(settings.data_dir),
    )
    train_peak = peak_rss_mb()
    bundle_bytes = sum(p.stat().st_size for p in result.bundle_dir.iterdir())

    loads = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", LOAD_SNIPPET, str(result.bundle_dir)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(3)
    ]
    scorer = load_bundle(result.bundle_dir)
    test_frame, _ = load_test(settings.data_dir)
    texts = test_frame["comment_text"].head(2000).tolist()
    lean = lean_latency_fresh_process(result.bundle_dir, texts)
    lean_batch = min(lean["batch_pass_s"])  # the best pass: the least disturbed by the machine
    pipeline = result.pipeline
    sklearn = per_comment(lambda t: pipeline.predict_proba([normalize_text(t)]), texts)
    batches = [texts[i : i + 100] for i in range(0, len(texts), 100)]
    _, sk_batch = timed(
        lambda: [pipeline.predict_proba([normalize_text(t) for t in b]) for b in batches]
    )
    lean_scores = scorer.score_many(texts)
    sk_scores = pipeline.predict_proba([normalize_text(t) for t in texts])
    write_results(
        "model",
        {
            "data_dir": str(settings.data_dir),
            "training": {
                "wall_s": round(train_seconds, 1),
                "peak_rss_mb": train_peak,
                "target_wall_s": 600,
            },
            "bundle": {
                "size_mb": round(bundle_bytes / 1e6, 2),
                "target_mb": 60,
                "load_fresh_process_s": round(float(np.median([x["load_s"] for x in loads])), 3),
                "import_s": round(float(np.median([x["import_s"] for x in loads])), 3),
                "target_load_s": 0.5,
            },
            "single_comment": {
                "comments": len(texts),
                "lean": percentiles_ms(lean["single_s"]),
                "lean_measured_in": "a fresh process, as serving runs it",
                "sklearn": percentiles_ms(sklearn),
                "targets": {"lean_p50_ms": 0.3, "lean_p99_ms": 1.5},
            },
            "batch_of_100_throughput_per_s": {
                "lean": round(len(texts) / lean_batch, 1),
                "lean_measured_in": "a fresh process, best of three passes",
                "sklearn": round(len(texts) / sk_batch, 1),
                "target_lean": 4000,
            },
            "parity_max_abs_diff": float(np.abs(lean_scores - sk_scores).max()),
            "quality": {
                "validation_mean_roc_auc": result.metrics["validation"]["mean_roc_auc"],
                "test_mean_roc_auc": result.metrics["test"]["mean_roc_auc"],
                "validation_extra_roc_auc": result.metrics.get("validation_extra", {}).get(
                    "per_source"
                ),
                "test_per_label_roc_auc": {
                    k: v["roc_auc"] for k, v in result.metrics["test"]["per_label"].items()
                },
                "floor_test_mean_roc_auc": 0.974,
                "target_test_mean_roc_auc": 0.980,
            },
            "hyperparameters": pipeline.hp.as_dict(),
        },
    )


if __name__ == "__main__":
    main()
