"""Property tests (hypothesis) on what every comment goes through: normalisation and hashing
(the scorer's own are in tests/model/test_scorer_properties.py)."""

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from moderation.text import comment_hash, normalize_text, text_hash, word_ngrams
from tests.text_strategies import (
    INVISIBLES,
    any_char,
    every_text,
    lone_surrogate,
    tricky_char,
)

FAST = settings(max_examples=300, deadline=None)


def has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@FAST
@given(every_text)
@example("e\u200b\u0301")  # an invisible between a letter and its accent
@example("\u03aa\u0301")  # capital iota with dialytika + acute: composable only lower-cased
@example("lone \ud800 and \udfff surrogates")
def test_normalised_text_is_clean_valid_utf8_whatever_comes_in(text):
    # WHEN any string, lone surrogates included, is normalised
    normalized = normalize_text(text)
    # THEN the result is valid UTF-8 with no invisibles, no surrogates and single spaces
    normalized.encode("utf-8")
    assert not has_surrogate(normalized)
    assert not set(normalized) & set(INVISIBLES)
    assert normalized == normalized.strip() and not re.search(r"\s\s|[^\S ]", normalized)
    assert normalized.lower() == normalized


@FAST
@given(every_text)
@example("e\u200b\u0301")
@example("\u03aa\u0301")
@example("\u1ffc\u0301")
def test_normalisation_is_idempotent(text):
    # GIVEN a comment normalised once (what the model and the cache key see)
    once = normalize_text(text)
    # WHEN it is normalised again (a logged text resubmitted, a client that pre-normalises)
    # THEN nothing changes: it scores and hashes the same
    assert normalize_text(once) == once


@FAST
@given(
    st.text(st.one_of(any_char, tricky_char), max_size=40),
    st.integers(0, 40),
    st.text(st.sampled_from(INVISIBLES), min_size=1, max_size=3),
)
@example("cafe\u0301", 4, "\u200b")  # "café" with a zero-width space before its accent
def test_invisible_characters_anywhere_change_nothing(text, at, hidden):
    # GIVEN a comment and the same comment with zero-width characters slipped in anywhere
    at = min(at, len(text))
    dodged = text[:at] + hidden + text[at:]
    # WHEN both are normalised  THEN the model and the cache see one and the same comment
    assert normalize_text(dodged) == normalize_text(text)
    assert comment_hash(dodged) == comment_hash(text)


@FAST
@given(every_text, every_text)
def test_same_text_same_hash_and_different_text_different_hash(first, second):
    # WHEN comments are hashed (the cache key and the logged input hash)
    digest = comment_hash(first)
    # THEN the hash is a stable sha256 of exactly the normalised text
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert comment_hash(first) == digest == text_hash(normalize_text(first))
    same_text = normalize_text(first) == normalize_text(second)
    assert (comment_hash(second) == digest) is same_text


@FAST
@given(st.text(st.one_of(any_char, lone_surrogate), min_size=1, max_size=20).filter(has_surrogate))
def test_text_hash_refuses_unnormalised_surrogates_with_a_value_error(text):
    # GIVEN text that was never normalised and holds a lone surrogate (not valid UTF-8)
    # WHEN text_hash (whose contract is normalised input) gets it
    # THEN it refuses with a ValueError, and comment_hash, the raw-text entry point, does not
    with pytest.raises(ValueError):
        text_hash(text)
    assert comment_hash(text) == text_hash(normalize_text(text))


@FAST
@given(every_text, st.sampled_from([(1, 1), (1, 2), (1, 3), (2, 3)]))
def test_word_ngrams_match_scikit_learn_on_any_normalised_text(text, ngram_range):
    from sklearn.feature_extraction.text import CountVectorizer

    # GIVEN any normalised comment
    normalized = normalize_text(text)
    # WHEN its word n-grams are taken  THEN they are scikit-learn's, the ones training saw
    analyzer = CountVectorizer(ngram_range=ngram_range, lowercase=False).build_analyzer()
    grams = word_ngrams(normalized, ngram_range)
    assert grams == analyzer(normalized)
    assert all(word in normalized for gram in grams for word in gram.split(" "))
