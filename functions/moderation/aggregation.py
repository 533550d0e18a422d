"""Bucket, bin and percentile definitions shared by the bundle, the aggregator and the dashboard.

One definition: the bundle's reference score histograms and the live histograms the
aggregator keeps use the same ``SCORE_BIN_EDGES``, so drift statistics compare like with like.
"""

import numpy as np

#: 20 equal-width score bins over [0, 1]; the last bin includes 1.0.
SCORE_BIN_EDGES: tuple[float, ...] = tuple(round(i / 20, 2) for i in range(21))


def score_bin(score: float) -> int:
    """Index of the score bin holding ``score`` (0..19)."""
    return min(int(score * 20), 19) if score > 0 else 0


def score_histogram(scores: np.ndarray) -> list[int]:
    """Counts of ``scores`` per score bin."""
    counts, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=np.array(SCORE_BIN_EDGES))
    return [int(c) for c in counts]
