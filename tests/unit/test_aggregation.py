"""Aggregation maths against hand-computed values."""

import math

import numpy as np
import pytest

from moderation.buckets import (
    LATENCY_BIN_EDGES,
    LATENCY_BINS,
    feedback_counters,
    latency_bin,
    percentile_from_histogram,
    prediction_counters,
    score_bin,
    score_histogram,
)
from moderation.drift import jensen_shannon, psi
from tests.fakes import feedback_record, prediction_record


def test_score_bins_agree_between_live_counting_and_reference_histograms():
    scores = np.array([0.0, 0.049, 0.05, 0.5, 0.999, 1.0])
    histogram = score_histogram(scores)
    assert histogram[0] == 2 and histogram[1] == 1 and histogram[10] == 1 and histogram[19] == 2
    assert [score_bin(s) for s in scores] == [0, 0, 1, 10, 19, 19]


def test_latency_bins_are_log_spaced_eight_per_decade():
    assert latency_bin(0.01) == 0 and latency_bin(0.1) == 0
    assert latency_bin(1.0) == 8 and latency_bin(10.0) == 16 and latency_bin(99.0) == 23
    assert latency_bin(1e9) == LATENCY_BINS - 1
    assert LATENCY_BIN_EDGES[8] == pytest.approx(1.0)


def test_percentile_from_histogram_interpolates_inside_the_bin():
    counts = [0] * LATENCY_BINS
    counts[8] = 50  # [1.0, 1.334) ms
    counts[16] = 50  # [10, 13.34) ms
    # p50: rank 50 = the top of bin 8; p75: halfway through bin 16 (geometric midpoint)
    assert percentile_from_histogram(counts, 50) == pytest.approx(10 ** (1 / 8))
    assert percentile_from_histogram(counts, 75) == pytest.approx(10 * 10 ** (1 / 16))
    assert percentile_from_histogram([0] * LATENCY_BINS, 99) is None


def test_psi_and_jensen_shannon_match_hand_computed_values():
    reference, current = [50, 50], [80, 20]
    expected_psi = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(reference, current) == pytest.approx(expected_psi)  # 0.4159: alert (> 0.25)
    m = [0.65, 0.35]
    kl = lambda p: sum(pi * math.log2(pi / mi) for pi, mi in zip(p, m, strict=True))  # noqa: E731
    assert jensen_shannon(reference, current) == pytest.approx(
        (kl([0.5, 0.5]) + kl([0.8, 0.2])) / 2
    )
    assert psi([10, 10], [10, 10]) == pytest.approx(0) and jensen_shannon([1, 3], [1, 3]) == 0


def test_feedback_confusion_cells():
    counts = feedback_counters(
        feedback_record(correct=False, true_labels=["insult"], predicted_labels=["toxic", "insult"])
    )
    assert counts["tp_insult"] == counts["fp_toxic"] == counts["tn_threat"] == 1
    assert "fn_insult" not in counts and counts["fb_incorrect"] == 1 and counts["labelled"] == 1
    unlabelled = feedback_counters(feedback_record(correct=True, true_labels=None))
    assert unlabelled == {"feedback": 1, "fb_correct": 1}


def test_prediction_counters():
    scores = {"toxic": 0.9, "severe_toxic": 0.1, "obscene": 0.5, "threat": 0, "insult": 0.7,
              "identity_hate": 0.0}  # fmt: skip
    counts = prediction_counters(
        prediction_record(
            decision="block", cached=True, labels=["toxic"], scores=scores, latency_ms=1
        )
    )
    assert counts["requests"] == counts["cache_hits"] == counts["decision_block"] == 1
    assert counts["pos_toxic"] == 1 and "pos_insult" not in counts
    assert counts["h_toxic_18"] == counts["h_obscene_10"] == counts["lat_08"] == 1
