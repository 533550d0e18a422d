"""Side-by-side comparison (``python -m bench.compare``) -> bench/results/compare.json.

On the same 2,000 real test comments (the first 2,000 rows of test_scored, as bench/model.py
takes them), in one run on this machine, three scorers are measured by the same harness
(bench/peer/measure.py), each in fresh processes of its own interpreter:

- ``lean``: this system's scorer, the latest trained bundle (artifacts/bundles/LATEST) loaded
  by moderation.model.bundle, numpy only, as the Lambda runs it;
- ``sklearn``: the same model as a scikit-learn pipeline (training.model.ToxicityPipeline, the
  object training fits and bench/model.py times). Training saves only the lean bundle, not the
  pipeline, and retraining takes minutes and 4 GB, so the pipeline is rebuilt from the bundle:
  the two TfidfVectorizers get the bundle's vocabularies and IDF, and the NB scaling, weights
  and Platt calibration are the bundle's folded matrix (ratio 1, identity calibration); the
  stacked word-vector model gets the bundle's folded layers (``_folded_vector_model``). It
  computes exactly what the trained pipeline computes (parity is checked below), and it is
  pickled with joblib as one would ship it, without ``stop_words_`` as scikit-learn advises:
  if anything, kinder to scikit-learn than pickling the fitted object as trained;
- ``profanity``: alt-profanity-check 1.9.1 (one score, compared with the ``toxic`` label),
  in its own virtual environment .venv-peer (created here if missing).

Both scikit-learn systems run in .venv-peer: scikit-learn 1.9.1 (the version training uses,
checked) with only its own dependencies, as a deployment of either would install them. In
.venv scikit-learn would also import pandas and pyarrow, only because they are installed there
for training (+0.5 s import, +250 MB), which would flatter this system.

This system's API comes from bench/api.py in the same run: its results are reused when
bench.all ran it moments ago (BENCH_RUN_STARTED), otherwise ``python -m bench.api`` runs first.

Cold start = import + model load + first score, median of 3 fresh processes per system, run
round-robin. Latency = each comment scored alone after 50 warm-up comments, in a fresh process.
Throughput = 2,000 comments in batches of 100, median of 3 passes, same process. Peak memory =
ru_maxrss of that process after all of it. Installed size = the installed files of every
distribution the process imported (plus working-tree code), the model files counted apart.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from bench.common import RESULTS, percentiles_ms, write_results
from moderation.labels import LABELS
from moderation.model.bundle import ARRAYS_FILE, CHAR_VOCAB_FILE, VOCAB_FILE, read_metadata
from moderation.settings import get_settings
from training.data import load_test
from training.register import latest_bundle

REPO = Path(__file__).resolve().parents[1]
SCRATCH = REPO / "bench" / "scratch" / "compare"
PEER_VENV = REPO / ".venv-peer"
PEER_REQUIREMENT = "alt-profanity-check==1.9.1"
WORKER = REPO / "bench" / "peer" / "measure.py"
N_COMMENTS = 2000
COLD_RUNS = 3
SYSTEMS = {
    "lean": "this system's lean scorer (numpy, bundle)",
    "sklearn": "the same model as a scikit-learn pipeline",
    "profanity": "alt-profanity-check 1.9.1 (one score vs the toxic label)",
}


def test_comments(data_dir: Path, n: int = N_COMMENTS) -> tuple[list[str], np.ndarray]:
    """The comments bench/model.py measures: the first ``n`` rows of the held-out test file in
    file order (deterministic, no sampling), with their six labels."""
    loaded = load_test(data_dir)
    if loaded is None:
        raise SystemExit(f"{data_dir}: no test_scored.csv (or test.csv + test_labels.csv)")
    frame = loaded[0].head(n)
    return frame["comment_text"].tolist(), frame[list(LABELS)].to_numpy()


def rebuild_sklearn_pipeline(bundle_dir: Path, target: Path) -> dict:
    """The training pipeline with its fitted state restored from the bundle, pickled."""
    import joblib

    from training.model import Hyperparameters, ToxicityPipeline

    metadata = read_metadata(bundle_dir)
    fields = Hyperparameters.__dataclass_fields__
    hp = Hyperparameters(
        **{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in metadata.hyperparameters.items()
            if k in fields
        }
    )
    pipeline = ToxicityPipeline(hp)
    with np.load(bundle_dir / ARRAYS_FILE, allow_pickle=False) as npz:
        idf, coef, intercept = npz["idf"], npz["coef"], npz["intercept"]
    words = (bundle_dir / VOCAB_FILE).read_text(encoding="utf-8").split("\n")
    chars = (bundle_dir / CHAR_VOCAB_FILE).read_text(encoding="utf-8").split("\n")
    for vectorizer, terms, weights in (
        (pipeline.word_vectorizer, words, idf[: len(words)]),
        (pipeline.char_vectorizer, chars, idf[len(words) :]),
    ):
        vectorizer.vocabulary_ = dict(zip(terms, range(len(terms)), strict=True))
        vectorizer.idf_ = weights
    pipeline.ratios = [np.ones(coef.shape[0]) for _ in LABELS]
    pipeline.weights = [coef[:, j].astype(np.float64) for j in range(len(LABELS))]
    pipeline.intercepts = intercept.astype(np.float64)
    pipeline.calibration = np.tile([1.0, 0.0], (len(LABELS), 1))
    if metadata.features.word_vectors:
        pipeline.vector_model, pipeline.blend = _folded_vector_model(bundle_dir, hp)
    joblib.dump(pipeline, target)
    return {"pickle_mb": round(target.stat().st_size / 1e6, 2)}


def _folded_vector_model(bundle_dir: Path, hp) -> tuple:
    """The stacked word-vector model as training fits it, from the bundle's folded layers:
    standardisation already in the first layer (mean 0, scale 1), each label's hidden units
    as one network, the blend weight and calibration in the output layer (blend 1)."""
    from types import SimpleNamespace

    from training.model import WordVectorModel
    from training.word_vectors import WordVectors

    with np.load(bundle_dir / ARRAYS_FILE, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name.startswith("vector_")}
    vectors = WordVectors(
        words=arrays["vector_words"].tobytes().decode("utf-8").split("\n"),
        rows=arrays["vector_rows"],
        table=arrays["vector_table"],
    )
    model = WordVectorModel(vectors, hp)
    width = arrays["vector_hidden_weights"].shape[0]
    model.mean, model.scale = np.zeros(width), np.ones(width)
    output = arrays["vector_output_weights"]
    model.networks = []
    for j in range(len(LABELS)):
        units = np.flatnonzero(output[:, j])
        model.networks.append(
            SimpleNamespace(
                coefs_=[arrays["vector_hidden_weights"][:, units], output[units, j : j + 1]],
                intercepts_=[arrays["vector_hidden_bias"][units], np.zeros(1)],
            )
            if units.size
            else None
        )
    return model, np.ones(len(LABELS))


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PEER_VENV} with {PEER_REQUIREMENT}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        # keeps git (and ruff, which follows .gitignore) out of the peer's site-packages
        (PEER_VENV / ".gitignore").write_text("*\n")
        subprocess.run([str(python), "-m", "pip", "install", "-q", PEER_REQUIREMENT], check=True)
    return python


def peer_model_files(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import importlib.util as u;"
         "print(u.find_spec('profanity_check').submodule_search_locations[0])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Path(out.stdout.strip()) / "data"


def sklearn_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import sklearn; print(sklearn.__version__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def run_worker(python: Path, system: str, model: Path, texts: Path, cold_only: bool) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", dir=SCRATCH, delete=False) as handle:
        out = Path(handle.name)
    command = [str(python), str(WORKER), "--system", system, "--model", str(model)]
    command += ["--texts", str(texts), "--out", str(out)] + (["--cold-only"] if cold_only else [])
    env = dict(os.environ)
    if python.is_relative_to(PEER_VENV):
        # the project's code (moderation, training) without its .venv: the pickled pipeline
        # needs training.model and moderation.text, nothing else of ours
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "functions"), str(REPO)])
    subprocess.run(command, cwd=REPO, check=True, env=env)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def auc(labels: np.ndarray, scores: np.ndarray) -> dict:
    if scores.shape[1] == len(LABELS):
        per_label = {
            label: round(float(roc_auc_score(labels[:, j], scores[:, j])), 4)
            for j, label in enumerate(LABELS)
        }
        mean = round(float(np.mean(list(per_label.values()))), 4)
        return {"mean_roc_auc": mean, "toxic_roc_auc": per_label["toxic"], "per_label": per_label}
    toxic = round(float(roc_auc_score(labels[:, 0], scores[:, 0])), 4)
    return {"mean_roc_auc": None, "toxic_roc_auc": toxic, "per_label": {"toxic": toxic}}


def api_results() -> dict:
    """bench/api.py's results of this run: reused when bench.all ran it after
    BENCH_RUN_STARTED, else measured now."""
    path = RESULTS / "api.json"
    started = os.environ.get("BENCH_RUN_STARTED")
    fresh = False
    if started and path.exists():
        measured = datetime.fromisoformat(json.loads(path.read_text())["measured_at"])
        fresh = measured >= datetime.fromisoformat(started)
    if not fresh:
        print("running bench.api for the API figures", flush=True)
        subprocess.run([sys.executable, "-m", "bench.api"], cwd=REPO, check=True)
    api = json.loads(path.read_text())
    miss = api["cache_miss"]
    return {
        "source": "bench/results/api.json of this run (bench/api.py: Lambda handler "
        "in-process, moto server over loopback as the store)",
        "api_measured_at": api["measured_at"],
        "single_comment_cache_miss_ms": miss["total"],
        "single_comment_without_store_p50_ms": round(
            miss["model"]["p50_ms"] + miss["rest"]["p50_ms"], 4
        ),
        "model_ms": miss["model"],
        "store_ms": miss["store"],
        "rest_ms": miss["rest"],
        "cold_start_s": api["cold_start"]["total_s"],
        "peak_rss_mb": api["peak_rss_mb_after_200_requests"],
        "peak_rss_note": "bench/api.py reads ru_maxrss in its cold-start child, which Linux "
        "carries over from the forking parent: an upper bound, not the handler's own peak",
        "deployment_unzipped_mb": api["deployment"]["unzipped_mb"],
        "deployment_zipped_mb": api["deployment"]["zipped_mb"],
    }


def summarize(system: str, full: dict, colds: list[dict], labels: np.ndarray, model_mb) -> dict:
    passes = full["batch_pass_s"]
    return {
        "what": SYSTEMS[system],
        **auc(labels, np.array(full["scores"])),
        "single_comment": percentiles_ms(full["single_s"]),
        "batch_of_100_per_s": round(len(full["scores"]) / float(np.median(passes)), 1),
        "peak_rss_mb": round(full["peak_rss_mb"], 1),
        "rss_after_load_mb": round(
            float(np.median([c["rss_after_load_and_first_score_mb"] for c in colds])), 1
        ),
        "cold_start_s": round(float(np.median([c["cold_start"]["total_s"] for c in colds])), 3),
        "cold_start_min_s": round(min(c["cold_start"]["total_s"] for c in colds), 3),
        "cold_start_runs_s": [round(c["cold_start"]["total_s"], 3) for c in colds],
        "import_and_load_s": round(
            float(np.median([c["cold_start"]["import_and_load_s"] for c in colds])), 3
        ),
        "installed_dependencies_mb": full["installed"]["total_mb"],
        "installed_by_distribution_mb": full["installed"]["distributions_mb"],
        "model_files_mb": model_mb,
    }


def ratios(systems: dict, api: dict) -> dict:
    """Every figure as a multiple of ours (the lean scorer): > 1 means more time, memory or
    size than ours, or, for throughput, more comments per second than ours."""
    ours = systems["lean"]
    figures = {
        "p50": lambda s: s["single_comment"]["p50_ms"],
        "p99": lambda s: s["single_comment"]["p99_ms"],
        "throughput": lambda s: s["batch_of_100_per_s"],
        "peak_memory": lambda s: s["peak_rss_mb"],
        "cold_start": lambda s: s["cold_start_s"],
        "installed_dependencies": lambda s: s["installed_dependencies_mb"],
    }
    out = {
        name: {fig: round(get(s) / get(ours), 2) for fig, get in figures.items()}
        for name, s in systems.items()
        if name != "lean"
    }
    out["api"] = {
        "p50_vs_lean_scorer": round(
            api["single_comment_cache_miss_ms"]["p50_ms"] / ours["single_comment"]["p50_ms"], 1
        ),
        "cold_start_vs_lean_scorer": round(api["cold_start_s"] / ours["cold_start_s"], 1),
    }
    return out


def table(systems: dict, api: dict, rel: dict) -> str:
    head = (
        f"{'system':<11}{'meanAUC':>8}{'toxAUC':>8}{'p50 ms':>9}{'p99 ms':>9}{'batch/s':>9}"
        f"{'RSS MB':>8}{'cold s':>8}{'deps MB':>8}{'model MB':>9}"
    )
    lines = [head]
    for name, s in systems.items():
        mean = f"{s['mean_roc_auc']:.4f}" if s["mean_roc_auc"] is not None else "-"
        lines.append(
            f"{name:<11}{mean:>8}{s['toxic_roc_auc']:>8.4f}{s['single_comment']['p50_ms']:>9.3f}"
            f"{s['single_comment']['p99_ms']:>9.3f}{s['batch_of_100_per_s']:>9.0f}"
            f"{s['peak_rss_mb']:>8.0f}{s['cold_start_s']:>8.3f}"
            f"{s['installed_dependencies_mb']:>8.1f}{s['model_files_mb']:>9.1f}"
        )
    miss = api["single_comment_cache_miss_ms"]
    lines.append(
        f"{'API':<11}{'':>8}{'':>8}{miss['p50_ms']:>9.3f}{miss['p99_ms']:>9.3f}{'':>9}"
        f"{api['peak_rss_mb']:>8.0f}{api['cold_start_s']:>8.3f}"
        f"{api['deployment_unzipped_mb']:>8.1f}{'':>9}"
    )
    lines.append("")
    for name, r in rel.items():
        if name == "api":
            continue
        lines.append(
            f"{name}: p50 = {r['p50']}x ours, p99 = {r['p99']}x, throughput = "
            f"{r['throughput']}x, peak memory = {r['peak_memory']}x, cold start = "
            f"{r['cold_start']}x, installed dependencies = {r['installed_dependencies']}x"
        )
    lines.append(
        f"API (handler + moto store over loopback, cache miss): p50 = "
        f"{rel['api']['p50_vs_lean_scorer']}x the lean scorer alone, of which model + handler "
        f"{api['single_comment_without_store_p50_ms']} ms; cold start "
        f"{rel['api']['cold_start_vs_lean_scorer']}x (includes the S3 model fetch); deps MB = "
        f"the whole Lambda deployment unzipped"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: latest trained)")
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()
    settings = get_settings()
    bundle_dir = args.bundle or latest_bundle(settings.artifacts_dir)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    texts, labels = test_comments(settings.data_dir)
    texts_path = SCRATCH / "texts.json"
    texts_path.write_text(json.dumps(texts))

    pickle_path = SCRATCH / "sklearn-pipeline.joblib"
    t = time.perf_counter()
    pickled = rebuild_sklearn_pipeline(bundle_dir, pickle_path)
    rebuild_s = time.perf_counter() - t
    peer_python = ensure_peer_venv()
    peer_data = peer_model_files(peer_python)
    ours = sklearn_version(Path(sys.executable))
    if sklearn_version(peer_python) != ours:
        raise SystemExit(f"{PEER_VENV} must hold scikit-learn {ours}, the version training uses")
    runs = {
        "lean": (Path(sys.executable), bundle_dir),
        "sklearn": (peer_python, pickle_path),
        "profanity": (peer_python, peer_data),
    }
    model_mb = {
        "lean": sum(p.stat().st_size for p in bundle_dir.iterdir()) / 1e6,
        "sklearn": pickled["pickle_mb"],
        "profanity": sum(p.stat().st_size for p in peer_data.iterdir()) / 1e6,
    }

    colds: dict[str, list[dict]] = {name: [] for name in runs}
    for _ in range(COLD_RUNS):  # round-robin, so background load hits all systems alike
        for name, (python, model) in runs.items():
            print(f"cold start: {name}", flush=True)
            colds[name].append(run_worker(python, name, model, texts_path, cold_only=True))
    fulls = {}
    for name, (python, model) in runs.items():
        print(f"latency, throughput, memory: {name}", flush=True)
        fulls[name] = run_worker(python, name, model, texts_path, cold_only=False)
    systems = {
        name: summarize(name, fulls[name], colds[name], labels, round(model_mb[name], 2))
        for name in runs
    }
    parity = float(
        np.abs(np.array(fulls["lean"]["scores"]) - np.array(fulls["sklearn"]["scores"])).max()
    )
    api = api_results()
    rel = ratios(systems, api)
    write_results(
        "compare",
        {
            "comments": len(texts),
            "comments_source": "first 2,000 rows of test_scored in file order (as bench/model.py"
            "; deterministic, no sampling)",
            "label_positives": {label: int(labels[:, j].sum()) for j, label in enumerate(LABELS)},
            "bundle": str(bundle_dir.relative_to(REPO) if bundle_dir.is_absolute() else bundle_dir),
            "bundle_test_mean_roc_auc_all_rows": read_metadata(bundle_dir)
            .metrics.get("test", {})
            .get("mean_roc_auc"),
            "systems": systems,
            "api": api,
            "ratios_vs_lean": rel,
            "sklearn_vs_lean_max_abs_diff": parity,
            "sklearn_pipeline": {
                "how": "training.model.ToxicityPipeline rebuilt from the bundle (vocabularies, "
                "IDF, folded NB x LR x Platt weights), pickled with joblib; training does not "
                "save the fitted pipeline and retraining costs ~2.5 min and 4 GB",
                "runs_in": ".venv-peer: scikit-learn " + ours + " and its own dependencies "
                "only (in .venv it would also import pandas + pyarrow, installed for training)",
                "rebuild_s": round(rebuild_s, 1),
                **pickled,
            },
            "method": {
                "harness": "bench/peer/measure.py, the same code for all three systems, each "
                "in its own interpreter (.venv, .venv-peer) and fresh process",
                "cold_start": f"import + model load + first score, median of {COLD_RUNS} "
                "fresh processes per system run round-robin (warm OS file cache)",
                "single_comment": "each comment scored alone (raw text in, normalisation "
                "included), after 50 untimed warm-up comments, fresh process",
                "throughput": "2,000 comments in 20 batches of 100, median of 3 passes",
                "peak_rss": "VmHWM (own peak RSS) of the latency process after load, warm-up, "
                "2,000 single scores and 3 batch passes",
                "installed_dependencies": "installed files of every distribution the process "
                "imported (stdlib, pip, setuptools excluded) + working-tree code; model files "
                "apart",
                "roc_auc": "on the same 2,000 comments; profanity-check has one score, "
                "compared with the toxic label only",
                "load_average_before_after": [
                    [round(x, 2) for x in load_before],
                    [round(x, 2) for x in os.getloadavg()],
                ],
            },
            "wall_s": round(time.perf_counter() - started, 1),
        },
    )
    print()
    print(table(systems, api, rel))


if __name__ == "__main__":
    main()
