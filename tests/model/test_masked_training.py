"""Per-label masks: a row whose label is unknown (NaN) teaches that label nothing."""

import numpy as np
from scipy import sparse

from moderation.labels import LABELS
from training.model import Hyperparameters, ToxicityPipeline


def test_unknown_labels_contribute_no_loss_and_weights_apply():
    rng = np.random.default_rng(0)
    features = sparse.csr_matrix(rng.random((120, 15)) * (rng.random((120, 15)) < 0.3))
    targets = (rng.random((120, len(LABELS))) < 0.4).astype(np.float64)
    masked = targets.copy()
    masked[100:, 0] = np.nan  # twenty extra rows say nothing about "toxic"
    hp = Hyperparameters()

    full, known_only, with_mask = (ToxicityPipeline(hp) for _ in range(3))
    full.fit_classifiers(features, targets)
    known_only.fit_classifiers(features[:100], targets[:100])
    with_mask.fit_classifiers(features, masked)

    # "toxic" is fitted on the known rows alone; the other labels use every row
    assert np.allclose(with_mask.weights[0], known_only.weights[0])
    assert np.allclose(with_mask.ratios[0], known_only.ratios[0])
    assert np.allclose(with_mask.weights[1], full.weights[1])

    # a row weight of 0 is the same as leaving the row out; 1 everywhere is the default
    weights = np.r_[np.ones(100), np.zeros(20)]
    zero_weighted = ToxicityPipeline(hp)
    zero_weighted.fit_classifiers(features, targets, weights)
    assert np.allclose(zero_weighted.ratios[2], known_only.ratios[2])
    unit = ToxicityPipeline(hp)
    unit.fit_classifiers(features, targets, np.ones(120))
    assert np.allclose(unit.weights[3], full.weights[3])
