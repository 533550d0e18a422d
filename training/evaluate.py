"""Metrics, threshold choice and reference distributions. Pure functions over arrays."""

import itertools
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from moderation.buckets import SCORE_BIN_EDGES, score_histogram
from moderation.labels import LABELS

#: Block only where precision on real-rate validation rows reaches this; below it a human
#: reviews.
BLOCK_PRECISION = 0.95


def f1_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold that maximises F1 (0.5 when the label has no positives)."""
    if y.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def precision_threshold(y: np.ndarray, scores: np.ndarray, floor: float, target: float) -> float:
    """Lowest threshold >= ``floor`` whose precision reaches ``target``; 1.0 (never) if none."""
    if y.sum() == 0:
        return 1.0
    precision, _, thresholds = precision_recall_curve(y, scores)
    ok = (precision[:-1] >= target) & (thresholds >= floor)
    return float(thresholds[np.flatnonzero(ok)[0]]) if ok.any() else 1.0


def choose_thresholds(
    targets: np.ndarray, probabilities: np.ndarray
) -> tuple[dict[str, float], dict[str, float]]:
    review = {
        label: round(f1_threshold(targets[:, j], probabilities[:, j]), 6)
        for j, label in enumerate(LABELS)
    }
    block = {
        label: round(
            precision_threshold(targets[:, j], probabilities[:, j], review[label], BLOCK_PRECISION),
            6,
        )
        for j, label in enumerate(LABELS)
    }
    return review, block


def _safe_auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    return float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else None


def metrics(
    targets: np.ndarray, probabilities: np.ndarray, thresholds: dict[str, float]
) -> dict[str, Any]:
    """Per-label ROC-AUC, PR-AUC, precision/recall/F1 at threshold; mean ROC-AUC; macro F1."""
    per_label: dict[str, dict[str, float | None]] = {}
    for j, label in enumerate(LABELS):
        y, p = targets[:, j], probabilities[:, j]
        predicted = p >= thresholds[label]
        tp = float((predicted & (y == 1)).sum())
        precision = tp / predicted.sum() if predicted.sum() else 0.0
        recall = tp / y.sum() if y.sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {
            "roc_auc": _safe_auc(y, p),
            "pr_auc": float(average_precision_score(y, p)) if y.sum() else None,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "positives": int(y.sum()),
        }
    aucs = [m["roc_auc"] for m in per_label.values() if m["roc_auc"] is not None]
    return {
        "per_label": per_label,
        "mean_roc_auc": float(np.mean(aucs)) if aucs else None,
        "macro_f1": float(np.mean([m["f1"] for m in per_label.values()])),
        "rows": int(len(targets)),
    }


def masked_metrics(
    targets: np.ndarray, probabilities: np.ndarray, sources: np.ndarray
) -> dict[str, Any]:
    """ROC-AUC per label on the rows where it is known (``targets`` NaN elsewhere), per source
    and pooled over the sources; a label without both classes has none."""

    def aucs(rows: np.ndarray) -> dict[str, float]:
        out = {}
        for j, label in enumerate(LABELS):
            known = rows & ~np.isnan(targets[:, j])
            auc = _safe_auc(targets[known, j], probabilities[known, j])
            if auc is not None:
                out[label] = round(auc, 5)
        return out

    every = np.ones(len(targets), dtype=bool)
    pooled = aucs(every)
    return {
        "rows": int(len(targets)),
        "per_source": {str(s): aucs(sources == s) for s in sorted(set(sources.tolist()))},
        "pooled": pooled,
        "mean_pooled_roc_auc": float(np.mean(list(pooled.values()))) if pooled else None,
    }


#: Candidate weights of the stacked model's logit, on the scale of the calibrated n-gram logit.
BLEND_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def choose_blend(
    targets: np.ndarray,
    logits: np.ndarray,
    vector_logits: np.ndarray,
    extra_targets: np.ndarray,
    extra_logits: np.ndarray,
    extra_vector_logits: np.ndarray,
    extra_sources: np.ndarray,
) -> tuple[np.ndarray, dict[str, list[dict[str, float | None]]]]:
    """Per label, the weight ``w`` (from ``BLEND_GRID``) of ``logits + w * vector_logits``
    (``logits`` calibrated), chosen on validation by the rule the extra sources' row weights
    follow (docs/model-card.md): the mean Jigsaw validation ROC-AUC over the six labels must
    not fall below the n-gram model's alone, and within that, the best gain on the extra
    sources. A label is judged on the extra sources whose validation rows hold both of its
    classes (the mean of their ROC-AUCs); the weights of those labels are searched together,
    maximising the sum of their extra ROC-AUCs. A label no extra source can judge takes the
    weight with its best Jigsaw validation ROC-AUC. Ties go to the smaller weights.

    Returns the weights and, per label, each candidate's Jigsaw validation ROC-AUC and mean
    extra-source ROC-AUC (None where no extra source judges the label), for the record."""
    sources = sorted(set(extra_sources.tolist()))
    jigsaw = np.zeros((len(LABELS), len(BLEND_GRID)))
    extra: dict[int, list[float]] = {}
    for j in range(len(LABELS)):
        for g, weight in enumerate(BLEND_GRID):
            scores = logits[:, j] + weight * vector_logits[:, j]
            jigsaw[j, g] = _safe_auc(targets[:, j], scores) or 0.0
            blended = extra_logits[:, j] + weight * extra_vector_logits[:, j]
            per_source = [
                auc
                for source in sources
                if (known := (extra_sources == source) & ~np.isnan(extra_targets[:, j])).any()
                and (auc := _safe_auc(extra_targets[known, j], blended[known])) is not None
            ]
            if per_source:
                extra.setdefault(j, []).append(float(np.mean(per_source)))
    choice = [int(np.argmax(jigsaw[j])) for j in range(len(LABELS))]  # first best: smallest
    judged = sorted(extra)
    floor = jigsaw[:, 0].sum()
    best: tuple[float, float] | None = None
    for combination in itertools.product(range(len(BLEND_GRID)), repeat=len(judged)):
        trial = list(choice)
        for j, g in zip(judged, combination, strict=True):
            trial[j] = g
        if jigsaw[np.arange(len(LABELS)), trial].sum() < floor - 1e-12:
            continue
        score = (sum(extra[j][g] for j, g in zip(judged, combination, strict=True)),
                 -sum(BLEND_GRID[g] for g in combination))  # fmt: skip
        if best is None or score > best:
            best, chosen = score, trial
    weights = np.array([BLEND_GRID[g] for g in (chosen if best is not None else [0] * 6)])
    grid = {
        label: [
            {
                "weight": weight,
                "jigsaw_roc_auc": round(float(jigsaw[j, g]), 5),
                "extra_roc_auc": round(extra[j][g], 5) if j in extra else None,
            }
            for g, weight in enumerate(BLEND_GRID)
        ]
        for j, label in enumerate(LABELS)
    }
    return weights, grid


def reference_distributions(
    probabilities: np.ndarray, thresholds: dict[str, float], source: str
) -> dict[str, Any]:
    """Predicted positive rate and score histogram per label on real-rate rows."""
    return {
        "source": source,
        "rows": int(len(probabilities)),
        "positive_rate": {
            label: float(np.mean(probabilities[:, j] >= thresholds[label]))
            for j, label in enumerate(LABELS)
        },
        "score_histograms": {
            label: score_histogram(probabilities[:, j]) for j, label in enumerate(LABELS)
        },
        "histogram_bins": list(SCORE_BIN_EDGES),
    }


def flat_metrics(prefix: str, report: dict[str, Any]) -> dict[str, float]:
    """``{prefix}/toxic/roc_auc: ...`` style keys for a W&B summary, from a ``metrics`` or a
    ``masked_metrics`` report (``{prefix}/<source>/toxic/roc_auc``)."""
    if "per_source" in report:
        flat = {
            f"{prefix}/{group}/{label}/roc_auc": auc
            for group, aucs in [*report["per_source"].items(), ("pooled", report["pooled"])]
            for label, auc in aucs.items()
        }
        if report["mean_pooled_roc_auc"] is not None:
            flat[f"{prefix}/mean_pooled_roc_auc"] = report["mean_pooled_roc_auc"]
        return flat
    flat = {
        f"{prefix}/mean_roc_auc": report["mean_roc_auc"],
        f"{prefix}/macro_f1": report["macro_f1"],
    }
    for label, values in report["per_label"].items():
        for name, value in values.items():
            if value is not None:
                flat[f"{prefix}/{label}/{name}"] = value
    return flat
