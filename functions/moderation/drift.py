"""Drift between a score histogram and its reference (the bundle's real-rate validation
histograms, binned as ``moderation.buckets.SCORE_BIN_EDGES``)."""

from collections.abc import Sequence

import numpy as np


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
