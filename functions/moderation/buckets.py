"""The aggregates' layout: time buckets and their keys, score and latency bins, the counter
list, and what each log record adds. One definition for the bundle's reference histograms,
the aggregator that counts and the dashboard that reads.
"""

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from moderation.labels import DECISIONS, LABELS
from moderation.records import FeedbackRecord, PredictionRecord

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


#: Buckets of predictions made under one community policy live beside the version buckets,
#: under the dimension ``policy=<id>`` (model versions never contain "=").
POLICY_DIMENSION_PREFIX = "policy="


def policy_dimension(policy_id: str) -> str:
    return POLICY_DIMENSION_PREFIX + policy_id


def bucket_keys(
    moment: datetime, model_version: str, policy_id: str | None = None
) -> list[tuple[str, str]]:
    """Every bucket (pk, bucket) a record at ``moment`` of ``model_version`` counts into:
    each resolution and the lifetime bucket, for its version, for ALL, and for its policy
    when it was decided under one."""
    versions: tuple[str, ...] = (model_version, ALL_VERSIONS)
    if policy_id is not None:
        versions += (policy_dimension(policy_id),)
    return [
        (partition_key(resolution, version), bucket_key(moment, resolution))
        for resolution in RESOLUTIONS
        for version in versions
    ] + [(partition_key(LIFETIME, version), LIFETIME_BUCKET) for version in versions]


#: A bucket item's sort key is ``<bucket>#<stream shard>``: each shard writes its own copy
#: and reads sum them. ``SHARD_KEY_END`` sorts after every shard of a bucket.
SHARD_SEPARATOR = "#"
SHARD_KEY_END = SHARD_SEPARATOR + "\uffff"


def shard_key(bucket: str, shard_id: str) -> str:
    return f"{bucket}{SHARD_SEPARATOR}{shard_id}"


def bucket_of(sort_key: str) -> str:
    """The bucket a (shard's) bucket item belongs to."""
    return sort_key.split(SHARD_SEPARATOR, 1)[0]


def high_water_key(shard_id: str) -> dict[str, str]:
    """The item holding the last sequence number counted from one stream shard."""
    return {"pk": f"hwm#{shard_id}", "sk": "-"}


def prediction_counters(record: PredictionRecord) -> dict[str, int]:
    """What one logged prediction adds to its buckets (attribute -> increment)."""
    counters = {"requests": 1, f"decision_{record.decision}": 1}
    if record.cached:
        counters["cache_hits"] = 1
    if record.decision == "review":
        counters["review_in"] = 1
    labels = set(record.labels)
    for label in LABELS:
        if label in labels:
            counters[f"pos_{label}"] = 1
        counters[f"h_{label}_{score_bin(float(record.scores[label])):02d}"] = 1
    counters[f"lat_{latency_bin(record.latency_ms):02d}"] = 1
    return counters


def feedback_counters(record: FeedbackRecord) -> dict[str, int]:
    """What one feedback record adds: correct/incorrect and per-label confusion counts."""
    counters = {"feedback": 1, "fb_correct" if record.correct else "fb_incorrect": 1}
    if record.source == "moderator":
        counters["review_out"] = 1
        counters["moderator_agree" if record.correct else "moderator_disagree"] = 1
    truth = record.true_labels
    if truth is not None:
        predicted, actual = set(record.predicted_labels), set(truth)
        counters["labelled"] = 1
        for label in LABELS:
            cell = (
                ("tp" if label in actual else "fp")
                if label in predicted
                else ("fn" if label in actual else "tn")
            )
            counters[f"{cell}_{label}"] = 1
    return counters


def removal_counters(removed: PredictionRecord | FeedbackRecord | None) -> dict[str, int]:
    """What removing a logged item adds: a prediction still pending review (TTL expiry)
    leaves the queue without a decision, so the queue depth must drop; a moderator's
    feedback deleted by an undo is taken back (``withdrawn_feedback_counters``); nothing
    else."""
    if isinstance(removed, PredictionRecord) and removed.review_status == "pending":
        return {"review_removed": 1}
    if isinstance(removed, FeedbackRecord):
        return withdrawn_feedback_counters(removed)
    return {}


def withdrawn_feedback_counters(withdrawn: FeedbackRecord) -> dict[str, int]:
    """What deleting a feedback item takes back: exactly what its insert added, negated.
    Only an undo deletes feedback (it has no TTL): the reopened item is back in the queue
    (review_out -1) and the withdrawn decision no longer counts towards accuracy."""
    return {name: -value for name, value in feedback_counters(withdrawn).items()}


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
