"""``python -m training.train``: train, evaluate, export the lean bundle, track in W&B."""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from moderation.errors import DataError
from moderation.labels import LABELS
from moderation.model.bundle import BundleMetadata, FeatureSpec, load_bundle, save_bundle
from moderation.settings import get_settings
from moderation.text import normalize_text
from training import data, evaluate, tracking
from training.model import Hyperparameters, ToxicityPipeline, WordVectorModel
from training.word_vectors import SOURCE as VECTORS_SOURCE
from training.word_vectors import read_word_vectors

logger = logging.getLogger("training")
app = typer.Typer(add_completion=False, help=__doc__)


@dataclass
class TrainResult:
    bundle_dir: Path
    bundle_sha256: str
    metrics: dict[str, Any]
    run_dir: str | None
    pipeline: ToxicityPipeline


@dataclass
class ExtraSet:
    """The extra sources' rows, normalised and split (empty when there are none)."""

    train_texts: list[str]
    train_targets: np.ndarray  # NaN where the source says nothing about a label
    train_sources: np.ndarray
    validation_texts: list[str]
    validation_targets: np.ndarray
    validation_sources: np.ndarray

    @classmethod
    def build(
        cls, extra: data.ExtraData | None, validation_fraction: float, seed: int
    ) -> "ExtraSet":
        if extra is None:
            empty, none = np.empty((0, len(LABELS))), np.empty(0, dtype=object)
            return cls([], empty, none, [], empty, none)
        frame = extra.frame
        in_validation = data.group_split(frame["group"], validation_fraction, seed)
        texts = [normalize_text(text) for text in frame["comment_text"]]
        targets = frame[list(LABELS)].to_numpy(dtype=np.float64)
        sources = frame["source"].to_numpy()
        return cls(
            [t for t, v in zip(texts, in_validation, strict=True) if not v],
            targets[~in_validation],
            sources[~in_validation],
            [t for t, v in zip(texts, in_validation, strict=True) if v],
            targets[in_validation],
            sources[in_validation],
        )

    def train_weights(self, weights: dict[str, float]) -> np.ndarray:
        """Each extra training row's weight, by its source (0 for a source not listed)."""
        return np.array([weights.get(source, 0.0) for source in self.train_sources])


class Steps:
    """Numbered progress lines with elapsed time: long steps show they are alive."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def __call__(self, message: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        logger.info("[%d/%d %6.1fs] %s", self.done, self.total, elapsed, message)


def train(
    data_dir: Path,
    output_dir: Path,
    hp: Hyperparameters,
    seed: int = 42,
    validation_fraction: float = 0.15,
    limit: int | None = None,
    model_name: str = "tfidf-nblr",
    track: bool = True,
    extra_dir: Path | None = None,
) -> TrainResult:
    step = Steps(10)
    step(f"reading {data_dir}")
    training = data.load_train(data_dir)
    frame = training.frame
    if limit:
        frame = frame.sample(n=min(limit, len(frame)), random_state=seed).reset_index(drop=True)
    test = data.load_test(data_dir)
    files = training.files + (test[1] if test else [])
    texts = [normalize_text(text) for text in frame["comment_text"]]
    targets = frame[list(LABELS)].to_numpy()
    train_rows, val_rows = data.stratified_split(frame, validation_fraction, seed)
    real_rate = frame["unbiased"].to_numpy()[val_rows]
    extra = data.load_extra(extra_dir) if extra_dir is not None else None
    extra_set = ExtraSet.build(extra, validation_fraction, seed)
    files += extra.files if extra else []
    config = {
        **hp.as_dict(),
        "seed": seed,
        "validation_fraction": validation_fraction,
        "limit": limit,
        "model_name": model_name,
        "rows": {
            "train": len(train_rows),
            "validation": len(val_rows),
            "extra_train": len(extra_set.train_texts),
            "extra_validation": len(extra_set.validation_texts),
        },
        "calibration_and_thresholds_on": training.unbiased_source,
        "data": [vars(f) for f in files],
    }
    config["git_commit"], config["git_dirty"] = tracking.git_state()
    run = tracking.start_run(get_settings(), "train", config) if track else None

    pipeline = ToxicityPipeline(hp)
    step(
        f"vectorizing {len(train_rows)} training comments and {len(extra_set.train_texts)} "
        "extra-source rows (word + char n-grams)"
    )
    train_features = pipeline.fit_vectorizers(
        [texts[i] for i in train_rows] + extra_set.train_texts
    )
    val_features = pipeline.transform([texts[i] for i in val_rows])
    step(f"fitting {len(LABELS)} classifiers on {train_features.shape[1]} features")
    pipeline.fit_classifiers(
        train_features,
        np.vstack([targets[train_rows].astype(np.float64), extra_set.train_targets]),
        np.concatenate([np.ones(len(train_rows)), extra_set.train_weights(hp.extra_weights)]),
    )
    del train_features
    step(f"calibrating on {int(real_rate.sum())} real-rate validation rows")
    logits = pipeline.decision_function(val_features)
    pipeline.calibrate(logits[real_rate], targets[val_rows][real_rate])
    val_vectors, blend, blend_grid = None, np.zeros(len(LABELS)), None
    if hp.word_vectors:
        step("fitting the stacked word-vector model and choosing its blend on validation")
        val_vectors, blend, blend_grid = _stack_word_vectors(
            pipeline, texts, targets, train_rows, val_rows, val_features, extra_set
        )
        logits = pipeline.decision_function(val_features, val_vectors)
        pipeline.calibrate(logits[real_rate], targets[val_rows][real_rate])
    else:
        step("no stacked word-vector model (--no-word-vectors)")
    val_proba = pipeline.predict_proba_features(val_features, val_vectors)
    review, block = evaluate.choose_thresholds(targets[val_rows][real_rate], val_proba[real_rate])
    step("evaluating on validation")
    report: dict[str, Any] = {
        "validation": evaluate.metrics(targets[val_rows], val_proba, review),
        "validation_real_rate": evaluate.metrics(
            targets[val_rows][real_rate], val_proba[real_rate], review
        ),
    }
    if blend_grid is not None:
        report["stacked_blend_candidates"] = blend_grid
    if extra_set.validation_texts:
        extra_proba = pipeline.predict_proba(extra_set.validation_texts)
        report["validation_extra"] = evaluate.masked_metrics(
            extra_set.validation_targets, extra_proba, extra_set.validation_sources
        )
    if test is not None:
        step(f"scoring the held-out test set ({len(test[0])} comments, reporting only)")
        test_texts = [normalize_text(text) for text in test[0]["comment_text"]]
        test_proba = pipeline.predict_proba(test_texts)
        report["test"] = evaluate.metrics(test[0][list(LABELS)].to_numpy(), test_proba, review)
    else:
        step("no test set in the data folder: skipping the held-out report")
    step("exporting the lean bundle")
    arrays, words, chars, bits = pipeline.export_arrays()
    created = datetime.now(UTC)
    metadata = BundleMetadata(
        model_name=model_name,
        thresholds=review,
        block_thresholds=block,
        features=FeatureSpec(
            word_ngram_range=hp.word_ngram_range,
            char_ngram_range=hp.char_ngram_range,
            n_word=len(words),
            n_char=len(chars),
            char_table_bits=bits,
            word_vectors=VECTORS_SOURCE if pipeline.vector_model else None,
            vector_hidden=hp.vector_hidden if pipeline.vector_model else 0,
        ),
        hyperparameters={**hp.as_dict(), "seed": seed, "validation_fraction": validation_fraction},
        metrics=report,
        data={
            "files": [vars(f) for f in files],
            "calibration": training.unbiased_source,
            "uncalibrated_labels": pipeline.uncalibrated,
            # on the calibrated n-gram logit's scale, as chosen (docs/model-card.md)
            "stacked_blend": dict(zip(LABELS, blend.tolist(), strict=True)),
        },
        git_commit=config["git_commit"],
        git_dirty=config["git_dirty"],
        created_at=created,
        reference=evaluate.reference_distributions(
            val_proba[real_rate], review, training.unbiased_source
        ),
    )
    bundle_dir = output_dir / f"{model_name}-{created:%Y%m%dT%H%M%S}"
    sha = save_bundle(bundle_dir, metadata, arrays, words, chars)
    step("checking the bundle loads and agrees with the pipeline")
    scorer = load_bundle(bundle_dir, sha)
    sample = [texts[i] for i in val_rows[:200]]
    gap = float(np.abs(scorer.score_many(sample) - pipeline.predict_proba(sample)).max())
    report["parity_max_abs_diff"] = gap
    if gap > 1e-6:
        raise RuntimeError(f"lean scorer disagrees with the pipeline by {gap:.2e}")
    (output_dir / "LATEST").write_text(bundle_dir.name)
    run_dir = None
    if run is not None:
        step("logging metrics and the bundle artifact to W&B")
        flat: dict[str, Any] = {}
        for name, values in report.items():
            if isinstance(values, dict) and name != "stacked_blend_candidates":
                flat |= evaluate.flat_metrics(name, values)
        flat |= {f"stacked_blend/{label}": w for label, w in zip(LABELS, blend, strict=True)}
        run.summary.update({**flat, "bundle_sha256": sha, "parity_max_abs_diff": gap})
        tracking.log_model_artifact(
            run, bundle_dir, "toxic-comment-bundle", {"bundle_sha256": sha, "metrics": report}
        )
        run_dir = run.dir
        run.finish()
    else:
        step("tracking disabled")
    logger.info("bundle %s (sha256 %s)", bundle_dir, sha[:12])
    return TrainResult(bundle_dir, sha, report, run_dir, pipeline)


def _stack_word_vectors(
    pipeline: ToxicityPipeline,
    texts: list[str],
    targets: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    val_features: Any,
    extra_set: ExtraSet,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Fit the word-vector model on the n-gram model's training rows (the extra sources at
    ``vector_extra_weight`` where the n-gram model uses them at all), choose each label's
    blend weight on validation (``evaluate.choose_blend``) and set it on the pipeline, whose
    n-gram part is calibrated. Returns the validation rows' vector features, the weights (on
    the calibrated n-gram logit's scale) and the candidates' validation figures."""
    hp = pipeline.hp
    model = WordVectorModel(read_word_vectors(), hp)
    extra_weights = extra_set.train_weights(hp.extra_weights)
    model.fit(
        model.features([texts[i] for i in train_rows] + extra_set.train_texts),
        np.vstack([targets[train_rows].astype(np.float64), extra_set.train_targets]),
        np.concatenate(
            [np.ones(len(train_rows)), np.where(extra_weights > 0, hp.vector_extra_weight, 0.0)]
        ),
    )
    val_vectors = model.features([texts[i] for i in val_rows])
    slope, shift = pipeline.calibration[:, 0], pipeline.calibration[:, 1]
    extra_logits = extra_vector_logits = np.empty((0, len(LABELS)))
    if extra_set.validation_texts:
        extra_features = pipeline.transform(extra_set.validation_texts)
        extra_logits = pipeline.decision_function(extra_features) * slope + shift
        extra_vector_logits = model.logits(model.features(extra_set.validation_texts))
    weights, grid = evaluate.choose_blend(
        targets[val_rows].astype(np.float64),
        pipeline.decision_function(val_features) * slope + shift,
        model.logits(val_vectors),
        extra_set.validation_targets,
        extra_logits,
        extra_vector_logits,
        extra_set.validation_sources,
    )
    pipeline.vector_model = model
    pipeline.blend = weights / slope  # on the uncalibrated n-gram logit's scale
    logger.info("stacked blend weights: %s", dict(zip(LABELS, weights.tolist(), strict=True)))
    return val_vectors, weights, grid


def summary_table(report: dict[str, Any]) -> str:
    lines = [
        f"{'label':<14}{'val AUC':>9}{'PR-AUC':>8}{'P@t':>7}{'R@t':>7}{'F1@t':>7}{'test AUC':>10}"
    ]
    real = report["validation_real_rate"]["per_label"]
    for label in LABELS:
        auc = report["validation"]["per_label"][label]["roc_auc"]
        test_auc = report.get("test", {}).get("per_label", {}).get(label, {}).get("roc_auc")
        row = real[label]
        lines.append(
            f"{label:<14}{auc or 0:>9.4f}{row['pr_auc'] or 0:>8.3f}{row['precision']:>7.3f}"
            f"{row['recall']:>7.3f}{row['f1']:>7.3f}{test_auc or 0:>10.4f}"
        )
    extra = report.get("validation_extra")
    if extra:
        pooled = "  ".join(f"{label} {auc:.4f}" for label, auc in extra["pooled"].items())
        lines.append(f"extra-source validation ROC-AUC (known labels): {pooled}")
    test_mean = report.get("test", {}).get("mean_roc_auc")
    lines.append(
        f"mean ROC-AUC validation {report['validation']['mean_roc_auc']:.5f}"
        + (f"  test {test_mean:.5f}" if test_mean else "")
        + f"  macro F1 (real-rate validation) {report['validation_real_rate']['macro_f1']:.4f}"
    )
    return "\n".join(lines)


@app.command()
def main(
    data_dir: Annotated[Path | None, typer.Option(help="Jigsaw CSV folder (DATA_DIR)")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="bundle folder (ARTIFACTS_DIR)")] = None,
    seed: Annotated[int, typer.Option(help="split seed")] = 42,
    validation_fraction: Annotated[float, typer.Option(min=0.05, max=0.5)] = 0.15,
    limit: Annotated[int | None, typer.Option(help="train on a random sample of N rows")] = None,
    c: Annotated[float, typer.Option("--C", help="inverse regularisation")] = Hyperparameters.C,
    naive_bayes: Annotated[bool, typer.Option(help="NB log-count-ratio features")] = True,
    word_max_features: Annotated[int, typer.Option()] = Hyperparameters.word_max_features,
    char_max_features: Annotated[int, typer.Option()] = Hyperparameters.char_max_features,
    word_vectors: Annotated[
        bool, typer.Option(help="stack the word-vector model on the n-gram model")
    ] = Hyperparameters.word_vectors,
    track: Annotated[bool, typer.Option(help="track the run in W&B")] = True,
    extra_dir: Annotated[
        Path | None,
        typer.Option(help="extra labelled sources (default: the data folder's sibling extra/)"),
    ] = None,
    extra: Annotated[bool, typer.Option(help="train on the extra sources too")] = True,
    extra_weight: Annotated[
        float | None,
        typer.Option(help="one weight for every extra source (default: per source, see --help)"),
    ] = None,
) -> None:
    """Train on the Jigsaw data, evaluate, export the lean bundle and track the run."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    hp = Hyperparameters(
        C=c,
        naive_bayes=naive_bayes,
        word_max_features=word_max_features,
        char_max_features=char_max_features,
        word_vectors=word_vectors,
        **(
            {"extra_weights": dict.fromkeys(data.EXTRA_SOURCES, extra_weight)}
            if extra_weight is not None
            else {}
        ),
    )
    data_dir = data_dir or settings.data_dir
    extra_dir = (extra_dir or data.default_extra_dir(data_dir)) if extra else None
    try:
        result = train(
            data_dir,
            output_dir or settings.artifacts_dir / "bundles",
            hp,
            seed=seed,
            validation_fraction=validation_fraction,
            limit=limit,
            track=track,
            extra_dir=extra_dir,
        )
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(summary_table(result.metrics))
    typer.echo(f"bundle: {result.bundle_dir}")


if __name__ == "__main__":
    app()
