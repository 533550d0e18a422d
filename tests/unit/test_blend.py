"""How training weighs the stacked word-vector model against the n-gram model: chosen on
validation, never at the cost of the Jigsaw validation mean ROC-AUC."""

import numpy as np
from sklearn.metrics import roc_auc_score

from training.evaluate import choose_blend

RNG = np.random.default_rng(7)
N, LABELS = 3000, 6


def _case(vector_signal_on_jigsaw: float, vector_signal_on_extra: float):
    """Jigsaw rows where the n-gram logits carry the signal and the vector logits carry
    ``vector_signal_on_jigsaw`` of it; extra rows (one source, identity_hate known) where the
    n-gram logits are weak and the vector logits carry ``vector_signal_on_extra``."""
    y = (RNG.random((N, LABELS)) < 0.2).astype(float)
    logits = 2.0 * y + RNG.normal(size=y.shape)
    vectors = vector_signal_on_jigsaw * y + RNG.normal(size=y.shape)
    extra_y = np.full((N, LABELS), np.nan)
    extra_y[:, 5] = (RNG.random(N) < 0.5).astype(float)
    extra_logits = 0.3 * np.nan_to_num(extra_y) + RNG.normal(size=extra_y.shape)
    extra_vectors = vector_signal_on_extra * np.nan_to_num(extra_y) + RNG.normal(size=extra_y.shape)
    sources = np.array(["toxigen_prompts"] * N)
    return y, logits, vectors, extra_y, extra_logits, extra_vectors, sources


def _jigsaw_mean(y, logits, vectors, weights):
    return np.mean(
        [roc_auc_score(y[:, j], logits[:, j] + weights[j] * vectors[:, j]) for j in range(6)]
    )


def test_a_vector_model_that_gets_things_backwards_gets_no_weight():
    case = _case(vector_signal_on_jigsaw=-2.0, vector_signal_on_extra=-2.0)
    assert choose_blend(*case)[0].tolist() == [0.0] * 6


def test_the_extra_sources_gain_is_taken_without_lowering_the_jigsaw_mean():
    # GIVEN a vector model that helps the five other labels a little on Jigsaw and
    # identity_hate much on the extra source, though it is noise for identity_hate on Jigsaw
    y, logits, vectors, *extra = _case(vector_signal_on_jigsaw=1.0, vector_signal_on_extra=2.0)
    vectors[:, 5] = RNG.normal(size=N)
    weights, _ = choose_blend(y, logits, vectors, *extra)
    # THEN identity_hate gets weight, paid for by the others' gain: the mean does not fall
    assert weights[5] > 0
    assert _jigsaw_mean(y, logits, vectors, weights) >= _jigsaw_mean(y, logits, vectors, [0] * 6)


def test_without_slack_the_jigsaw_mean_wins():
    # GIVEN the same extra-source promise but a vector model that is noise on every Jigsaw label
    y, logits, vectors, *extra = _case(vector_signal_on_jigsaw=0.0, vector_signal_on_extra=2.0)
    weights, _ = choose_blend(y, logits, vectors, *extra)
    # THEN no weight lowers the Jigsaw mean
    assert _jigsaw_mean(y, logits, vectors, weights) >= _jigsaw_mean(y, logits, vectors, [0] * 6)
    assert weights[:5].tolist() == [0.0] * 5
