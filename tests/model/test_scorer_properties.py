"""Property tests (hypothesis) on the trained scorer: any string a JSON body can carry,
lone surrogates included, gets six finite probabilities and explanations inside the text."""

import math

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from moderation.labels import LABELS
from moderation.text import normalize_text
from tests.text_strategies import every_text, surrogate_text, tricky_text

SCORER = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SCORER
@given(every_text)
@example("")
@example("\ud800")
@example("🔥" * 2000)
@example("you stupid idiot " * 200)
def test_scores_are_six_finite_probabilities_for_any_text(scorer, text):
    # WHEN the served scorer scores any string
    scores = scorer.score(text)
    # THEN it gives six finite probabilities, the same as scoring its normalised form
    assert scores.shape == (len(LABELS),)
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores.tolist())
    assert np.array_equal(scores, scorer.score_normalized(normalize_text(text)))
    labels, decision = scorer.decide(scores)
    assert set(labels) <= set(LABELS) and decision in ("allow", "review", "block")
    assert (decision == "allow") is (not labels)


@SCORER
@given(
    st.one_of(tricky_text, surrogate_text, st.just("you stupid idiot")).map(
        lambda t: f"you stupid {t} idiot"
    )
)
def test_explanation_spans_always_point_inside_the_comment(scorer, text):
    # GIVEN a rude comment with hostile characters inside, explained for every label
    explanations = scorer.explain(text, list(LABELS))
    assert set(explanations) == set(LABELS)
    assert any(entries for entries in explanations.values())
    # THEN every span is a non-empty slice of the original text holding its n-gram
    for entries in explanations.values():
        for entry in entries:
            assert entry.weight > 0
            for start, end in entry.spans:
                assert 0 <= start < end <= len(text)
                shown = normalize_text(text[start:end]).replace(" ", "")
                assert entry.ngram.replace(" ", "") in shown, (entry.ngram, text[start:end])
