"""Metrics, threshold choice and reference distributions. Pure functions over arrays."""

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
