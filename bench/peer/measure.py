"""Measures one scorer in a fresh process; bench/compare.py runs it once per system.

The same harness runs every system, each with its own interpreter (.venv for this project's
scorers, .venv-peer for alt-profanity-check), so it is plain Python with nothing imported
before the clock starts but argparse, json and time, and it adds nothing to the memory it
reports. Usage (from the repository root):

    python bench/peer/measure.py --system lean|sklearn|profanity --model PATH
        --texts TEXTS.json --out RESULT.json [--cold-only]

``--cold-only`` stops after the cold start (import + model load + first score); otherwise it
goes on: 50 warm-up comments (not timed), then every comment alone (single-comment latency),
then three passes over the comments in batches of 100 (throughput; the scores of the first
pass are returned for ROC-AUC), then peak RSS, then the installed size of what it imported.
"""

import argparse
import json
import time

START = time.perf_counter()
WARM_UP = 50
BATCH = 100
PASSES = 3


def load(system: str, model: str):
    """(score one comment, score a list) for a system; raw comments in, probabilities out."""
    if system == "lean":
        from pathlib import Path

        from moderation.model.bundle import load_bundle

        scorer = load_bundle(Path(model))
        return scorer.score, scorer.score_many
    if system == "sklearn":
        import joblib

        from moderation.text import normalize_text

        pipeline = joblib.load(model)
        return (
            lambda text: pipeline.predict_proba([normalize_text(text)])[0],
            lambda texts: pipeline.predict_proba([normalize_text(t) for t in texts]),
        )
    if system == "profanity":
        from profanity_check import predict_prob  # loads its model at import

        return (lambda text: predict_prob([text])[0]), predict_prob
    raise SystemExit(f"unknown system {system!r}")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """VmHWM, this process's own peak RSS. Not ru_maxrss: Linux carries that over from the
    parent at fork, so a child of a large process would report the parent's size."""
    return _status_mb("VmHWM")


def installed_size() -> dict:
    """Installed bytes of every distribution this process imported (files as their RECORD
    lists them), plus the .py files of modules loaded from the working tree (editable code).
    The standard library, pip and setuptools are not counted."""
    import os
    import sys
    from importlib import metadata

    top = {name.split(".")[0] for name in list(sys.modules)}
    owners = metadata.packages_distributions()
    # pip and setuptools: imported by the venv's startup .pth hook, not by the system
    names = sorted(
        {dist for module in top for dist in owners.get(module, [])} - {"pip", "setuptools"}
    )
    sizes = {}
    for name in names:
        files = metadata.distribution(name).files or []
        total = 0
        for file in files:
            path = file.locate()
            if os.path.isfile(path):
                total += os.path.getsize(path)
        sizes[name] = total
    cwd = os.getcwd() + os.sep
    local = 0
    for name, module in list(sys.modules.items()):
        path = "" if name == "__main__" else getattr(module, "__file__", None) or ""
        if path.startswith(cwd) and os.sep + "site-packages" + os.sep not in path:
            local += os.path.getsize(path)
    return {
        "total_mb": round((sum(sizes.values()) + local) / 1e6, 1),
        "distributions_mb": {k: round(v / 1e6, 2) for k, v in sorted(sizes.items())},
        "working_tree_code_mb": round(local / 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--texts", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cold-only", action="store_true")
    args = parser.parse_args()
    with open(args.texts, encoding="utf-8") as handle:
        texts = json.load(handle)

    t0 = time.perf_counter()
    one, many = load(args.system, args.model)
    t1 = time.perf_counter()
    one(texts[0])
    t2 = time.perf_counter()
    result = {
        "system": args.system,
        "cold_start": {
            "import_and_load_s": t1 - t0,
            "first_score_s": t2 - t1,
            "total_s": t2 - t0,
            "interpreter_to_first_score_s": t2 - START,
        },
        "rss_after_load_and_first_score_mb": rss_mb(),
    }
    if not args.cold_only:
        for text in texts[:WARM_UP]:
            one(text)
        single = []
        for text in texts:
            start = time.perf_counter()
            one(text)
            single.append(time.perf_counter() - start)
        batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
        passes, scores = [], None
        for _ in range(PASSES):
            start = time.perf_counter()
            out = [many(batch) for batch in batches]
            passes.append(time.perf_counter() - start)
            if scores is None:
                scores = [[float(x) for x in row] for part in out for row in _rows(part)]
        result |= {
            "single_s": single,
            "batch_pass_s": passes,
            "scores": scores,
            "peak_rss_mb": peak_rss_mb(),
            "rss_end_mb": rss_mb(),
            "installed": installed_size(),
        }
    else:
        result["peak_rss_mb"] = peak_rss_mb()
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def _rows(part):
    """Rows of a batch's scores: (n, 6) arrays for ours, a flat array of n for the peer."""
    return [row if hasattr(row, "__len__") else [row] for row in part]


if __name__ == "__main__":
    main()
