"""Bucket, bin and percentile definitions shared by the bundle, the aggregator and the dashboard.

One definition: the bundle's reference score histograms and the live histograms the
aggregator keeps use the same ``SCORE_BIN_EDGES``; the dashboard computes percentiles from the
same ``LATENCY_BIN_EDGES`` the aggregator counts into.
"""

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from moderation.labels import DECISIONS, LABELS

#: 20 equal-width score bins over [0, 1]; the last bin includes 1.0.
SCORE_BINS = 20
SCORE_BIN_EDGES: tuple[float, ...] = tuple(round(i / SCORE_BINS, 2) for i in range(SCORE_BINS + 1))

#: Log-spaced latency bins: 8 per decade from 0.1 ms to 10 s; bin 0 also takes anything
#: faster, the last bin anything slower.
LATENCY_BINS_PER_DECADE = 8
LATENCY_MIN_MS = 0.1
LATENCY_BINS = 5 * LATENCY_BINS_PER_DECADE
LATENCY_BIN_EDGES: tuple[float, ...] = tuple(
    LATENCY_MIN_MS * 10 ** (i / LATENCY_BINS_PER_DECADE) for i in range(LATENCY_BINS + 1)
)

RESOLUTIONS = {"minute": "%Y-%m-%dT%H:%M", "hour": "%Y-%m-%dT%H"}
ALL_VERSIONS = "ALL"

#: One item per model version (and ALL) holding every counter since the beginning: what the
#: review-queue depth at any moment is derived from, in one read however long the history.
LIFETIME = "lifetime"
LIFETIME_BUCKET = "-"


def score_bin(score: float) -> int:
    """Index of the score bin holding ``score`` (0..19)."""
    return min(max(int(score * SCORE_BINS), 0), SCORE_BINS - 1)


def score_histogram(scores: np.ndarray) -> list[int]:
    """Counts of ``scores`` per score bin (same binning as ``score_bin``)."""
    bins = np.clip((np.asarray(scores) * SCORE_BINS).astype(int), 0, SCORE_BINS - 1)
    return [int(c) for c in np.bincount(bins, minlength=SCORE_BINS)]


def latency_bin(latency_ms: float) -> int:
    if latency_ms <= LATENCY_MIN_MS:
        return 0
    index = int(math.log10(latency_ms / LATENCY_MIN_MS) * LATENCY_BINS_PER_DECADE)
    return min(index, LATENCY_BINS - 1)


def percentile_from_histogram(counts: Sequence[int], q: float) -> float | None:
    """The q-th percentile (0..100) of values counted into the latency bins, interpolated
    geometrically inside the bin that holds it; None for an empty histogram."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q / 100 * total
    seen = 0.0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            low, high = LATENCY_BIN_EDGES[index], LATENCY_BIN_EDGES[index + 1]
            fraction = (rank - seen) / count
            return low * (high / low) ** fraction
        seen += count
    return LATENCY_BIN_EDGES[-1]


def all_counters() -> tuple[str, ...]:
    """Every counter a bucket holds. Buckets are created with all of them at zero, so an
    item's size (and the cost of reading it) does not grow with traffic."""
    names = ["requests", "cache_hits", "review_in", "review_out", "review_removed"]
    names += ["feedback", "labelled"]
    names += [f"decision_{d}" for d in DECISIONS]
    names += ["fb_correct", "fb_incorrect", "moderator_agree", "moderator_disagree"]
    names += [f"pos_{label}" for label in LABELS]
    names += [f"{cell}_{label}" for label in LABELS for cell in ("tp", "fp", "fn", "tn")]
    names += [f"h_{label}_{i:02d}" for label in LABELS for i in range(SCORE_BINS)]
    names += [f"lat_{i:02d}" for i in range(LATENCY_BINS)]
    return tuple(names)


def bucket_key(moment: datetime, resolution: str) -> str:
    return moment.strftime(RESOLUTIONS[resolution])


def partition_key(resolution: str, model_version: str) -> str:
    return f"{resolution}#{model_version}"


def prediction_counters(item: Mapping) -> dict[str, int]:
    """What one logged prediction adds to its buckets (attribute -> increment)."""
    counters = {"requests": 1, f"decision_{item['decision']}": 1}
    if item.get("cached"):
        counters["cache_hits"] = 1
    if item["decision"] == "review":
        counters["review_in"] = 1
    labels = set(item.get("labels") or [])
    scores = item["scores"]
    for label in LABELS:
        if label in labels:
            counters[f"pos_{label}"] = 1
        counters[f"h_{label}_{score_bin(float(scores[label])):02d}"] = 1
    counters[f"lat_{latency_bin(float(item['latency_ms'])):02d}"] = 1
    return counters


def feedback_counters(item: Mapping) -> dict[str, int]:
    """What one feedback record adds: correct/incorrect and per-label confusion counts."""
    counters = {"feedback": 1, "fb_correct" if item.get("correct") else "fb_incorrect": 1}
    if item.get("source") == "moderator":
        counters["review_out"] = 1
        counters["moderator_agree" if item.get("correct") else "moderator_disagree"] = 1
    truth = item.get("true_labels")
    if truth is not None:
        predicted, actual = set(item.get("predicted_labels") or []), set(truth)
        counters["labelled"] = 1
        for label in LABELS:
            cell = (
                ("tp" if label in actual else "fp")
                if label in predicted
                else ("fn" if label in actual else "tn")
            )
            counters[f"{cell}_{label}"] = 1
    return counters


def removal_counters(old_item: Mapping) -> dict[str, int]:
    """What removing a logged item (TTL expiry) adds: a prediction still pending review
    leaves the queue without a decision, so the queue depth must drop; nothing else."""
    if old_item.get("type") == "prediction" and old_item.get("review_status") == "pending":
        return {"review_removed": 1}
    return {}


def review_queue_change(counters: Mapping[str, int]) -> int:
    """Net change of the review-queue depth that a bucket's counters record."""
    return (
        int(counters.get("review_in", 0))
        - int(counters.get("review_out", 0))
        - int(counters.get("review_removed", 0))
    )


def histogram(item: Mapping, prefix: str, bins: int) -> list[int]:
    """Read a histogram stored as ``{prefix}_00..`` counters back into a list."""
    return [int(item.get(f"{prefix}_{i:02d}", 0)) for i in range(bins)]


def psi(reference: Sequence[float], current: Sequence[float], floor: float = 1e-4) -> float:
    """Population stability index between two histograms (counts or shares)."""
    ref = np.maximum(np.asarray(reference, float) / max(sum(reference), 1e-12), floor)
    cur = np.maximum(np.asarray(current, float) / max(sum(current), 1e-12), floor)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensen_shannon(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen-Shannon divergence (base 2, 0..1) between two histograms."""
    ref = np.asarray(reference, float) / max(sum(reference), 1e-12)
    cur = np.asarray(current, float) / max(sum(current), 1e-12)
    mid = (ref + cur) / 2

    def kl(p: np.ndarray, m: np.ndarray) -> float:
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / m[mask])))

    return (kl(ref, mid) + kl(cur, mid)) / 2
