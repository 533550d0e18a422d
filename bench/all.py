"""Every benchmark in one run (``python -m bench.all``, ``make bench``) -> bench/results/.

Runs each benchmark module in its own subprocess, in order (bench.model trains for a few
minutes), carries on past a failure, then writes bench/results/summary.md from the JSON
results: the headline figures of each benchmark and the side-by-side comparison as ratios.
BENCH_RUN_STARTED tells later modules (bench.compare) which results belong to this run.
Exit status 1 when any benchmark failed.

    python -m bench.all [--skip bench.model ...] [--only bench.compare ...] [--summary-only]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import RESULTS

REPO = Path(__file__).resolve().parents[1]
# in order: bench.api and bench.compare use the bundle; bench.compare reuses bench.api's results
MODULES = [
    "bench.model",
    "bench.api",
    "bench.aggregator",
    "bench.cost",
    "bench.stream_sim",
    "bench.package",
    "bench.dashboard",
    "bench.load",
    "bench.compare",
]


def available(module: str) -> bool:
    return (REPO / (module.replace(".", "/") + ".py")).is_file()


def run_all(modules: list[str], started: str) -> list[dict]:
    runs = []
    for module in modules:
        print(f"\n===== {module}", flush=True)
        begin = time.perf_counter()
        rc = subprocess.run(
            [sys.executable, "-m", module],
            cwd=REPO,
            env={**os.environ, "BENCH_RUN_STARTED": started},
        ).returncode
        runs.append({"module": module, "rc": rc, "wall_s": round(time.perf_counter() - begin, 1)})
        print(f"===== {module}: exit {rc} in {runs[-1]['wall_s']} s", flush=True)
    return runs


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _x(value: float) -> str:
    return f"{value:.2g}x" if value < 10 else f"{value:.0f}x"


def _model(r: dict) -> list[tuple[str, str]]:
    single, quality = r["single_comment"], r["quality"]
    return [
        ("training", f"{r['training']['wall_s']} s, peak RSS {r['training']['peak_rss_mb']} MB"),
        ("bundle", f"{r['bundle']['size_mb']} MB, load {r['bundle']['load_fresh_process_s']} s"),
        (
            "lean scorer, one comment",
            f"p50 {single['lean']['p50_ms']} ms, p99 {single['lean']['p99_ms']} ms",
        ),
        ("batch of 100", f"{r['batch_of_100_throughput_per_s']['lean']} comments/s"),
        ("parity with scikit-learn", f"{r['parity_max_abs_diff']:.1e}"),
        (
            "mean ROC-AUC",
            f"validation {quality['validation_mean_roc_auc']:.4f}, "
            f"test {quality['test_mean_roc_auc']:.4f}",
        ),
    ]


def _api(r: dict) -> list[tuple[str, str]]:
    miss = r["cache_miss"]
    return [
        (
            "cache miss",
            f"total p50 {miss['total']['p50_ms']} ms = model {miss['model']['p50_ms']} + store "
            f"{miss['store']['p50_ms']} + rest {miss['rest']['p50_ms']} ms",
        ),
        ("cache hit", f"total p50 {r['cache_hit']['total']['p50_ms']} ms"),
        ("cold start", f"{r['cold_start']['total_s']} s"),
        ("peak memory", f"{r['peak_rss_mb_after_200_requests']} MB"),
        (
            "deployment",
            f"{r['deployment']['unzipped_mb']} MB unzipped, {r['deployment']['zipped_mb']} MB",
        ),
    ]


def _aggregator(r: dict) -> list[tuple[str, str]]:
    read = r["read_24h_minute_resolution"]
    return [
        ("handler", f"{r['handler']['records_per_s']} records/s"),
        ("24 h read, 200k vs 10k predictions", f"ratio {read['ratio_200k_over_10k']}"),
    ]


def _package(r: dict) -> list[tuple[str, str]]:
    return [("Lambda zip", f"{r['unzipped_mb']} MB unzipped, {r['zipped_mb']} MB zipped")]


def _generic(r: dict, limit: int = 12) -> list[tuple[str, str]]:
    """Numeric leaves of a result this summary has no specific view of."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            rows.append((prefix, str(value)))

    walk("", {k: v for k, v in r.items() if k not in ("measured_at", "machine")})
    return rows[:limit]


VIEWS = {"model": _model, "api": _api, "aggregator": _aggregator, "package": _package}


def comparison_table(r: dict) -> list[str]:
    systems, rel, api = r["systems"], r["ratios_vs_lean"], r["api"]
    ours = systems["lean"]
    names = {
        "lean": "this system, lean scorer",
        "sklearn": "same model, scikit-learn",
        "profanity": "alt-profanity-check",
    }
    lines = [
        f"Same {r['comments']} real test comments, one run, same machine "
        f"({r['machine']}); ratios are the peer's figure over ours (lean scorer: "
        f"p50 {ours['single_comment']['p50_ms']} ms, p99 {ours['single_comment']['p99_ms']} ms, "
        f"{ours['batch_of_100_per_s']:.0f} comments/s, {ours['peak_rss_mb']:.0f} MB, "
        f"cold start {ours['cold_start_s']} s, dependencies {ours['installed_dependencies_mb']} "
        f"MB). Ratios above 1 mean slower, larger or heavier than ours, except throughput, "
        f"where above 1 means the peer scores more comments per second.",
        "",
        "| system | mean ROC-AUC | toxic ROC-AUC | p50 | p99 | throughput (batches of 100) "
        "| peak memory | cold start | installed dependencies |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in systems.items():
        mean = f"{s['mean_roc_auc']:.4f}" if s["mean_roc_auc"] is not None else "n/a (one score)"
        if name == "lean":
            cells = ["1x"] * 6
        else:
            q = rel[name]
            cells = [
                _x(q[k])
                for k in (
                    "p50",
                    "p99",
                    "throughput",
                    "peak_memory",
                    "cold_start",
                    "installed_dependencies",
                )
            ]
        lines.append(
            f"| {names.get(name, name)} | {mean} | {s['toxic_roc_auc']:.4f} | "
            + " | ".join(cells)
            + " |"
        )
    miss = api["single_comment_cache_miss_ms"]
    lines += [
        "",
        f"This system's API (Lambda handler in-process, moto store over loopback, cache miss): "
        f"p50 {miss['p50_ms']} ms ({_x(rel['api']['p50_vs_lean_scorer'])} the scorer alone; "
        f"model + handler {api['single_comment_without_store_p50_ms']} ms, the rest is the "
        f"store), p99 {miss['p99_ms']} ms, cold start {api['cold_start_s']} s (with the S3 model "
        f"fetch), deployment {api['deployment_unzipped_mb']} MB unzipped.",
        "",
        f"Parity, scikit-learn vs lean scores: max abs difference "
        f"{r['sklearn_vs_lean_max_abs_diff']:.1e}. Load average during the run: "
        f"{r['method']['load_average_before_after']}.",
    ]
    return lines


def write_summary(started: str | None, runs: list[dict]) -> Path:
    lines = ["# Benchmark summary", ""]
    if started:
        lines += [f"Run started {started}.", ""]
    if runs:
        lines += ["| benchmark | exit | wall |", "|---|---|---|"]
        lines += [f"| `{r['module']}` | {r['rc']} | {r['wall_s']} s |" for r in runs]
        lines.append("")
    for name in ("model", "api", "aggregator", "package", "dashboard", "load"):
        result = _load(name)
        if result is None:
            continue
        stale = bool(started) and result["measured_at"] < started
        lines.append(
            f"## {name}"
            + (" (not re-measured in this run)" if stale else "")
            + f"\n\nmeasured {result['measured_at']}, `bench/results/{name}.json`\n"
        )
        lines += ["| figure | value |", "|---|---|"]
        try:
            rows = VIEWS.get(name, _generic)(result)
        except (KeyError, TypeError):
            rows = _generic(result)
        lines += [f"| {k} | {v} |" for k, v in rows]
        lines.append("")
    compare = _load("compare")
    if compare is not None:
        stale = bool(started) and compare["measured_at"] < started
        lines.append(
            "## side-by-side comparison"
            + (" (not re-measured in this run)" if stale else "")
            + f"\n\nmeasured {compare['measured_at']}, `bench/results/compare.json`\n"
        )
        lines += comparison_table(compare)
        lines.append("")
    path = RESULTS / "summary.md"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", action="append", default=[], help="module to leave out")
    parser.add_argument("--only", action="append", default=[], help="run only these modules")
    parser.add_argument("--summary-only", action="store_true", help="rewrite summary.md only")
    args = parser.parse_args()
    runs: list[dict] = []
    started = None
    if not args.summary_only:
        named = [m if m.startswith("bench.") else f"bench.{m}" for m in args.only]
        skipped = {m if m.startswith("bench.") else f"bench.{m}" for m in args.skip}
        modules = [m for m in (named or MODULES) if m not in skipped]
        missing = [m for m in modules if not available(m)]
        for module in missing:
            print(f"{module}: no such file, skipped")
        started = datetime.now(UTC).isoformat(timespec="seconds")
        runs = run_all([m for m in modules if m not in missing], started)
    path = write_summary(started, runs)
    print(f"\nsummary written to {path}")
    print(path.read_text())
    failed = [r["module"] for r in runs if r["rc"] != 0]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
