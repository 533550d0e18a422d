import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.text import comment_hash, is_blank, normalize_text, word_ngrams


def test_case_spacing_and_invisible_characters_fold_to_one_hash():
    # GIVEN the same insult written four ways
    variants = ["You IDIOT", "you   idiot", " you\tidiot\n", "you id\u200biot"]
    # WHEN they are hashed  THEN they share one cache key
    assert len({comment_hash(v) for v in variants}) == 1


def test_lookalike_characters_fold_to_plain_text():
    assert normalize_text("ＹＯＵ ｉｄｉｏｔ") == "you idiot"
    assert normalize_text("\ufb01ne") == "fine"


def test_different_words_never_share_a_hash():
    assert comment_hash("you idiot") != comment_hash("you idiots")
    assert comment_hash("good") != comment_hash("good!")


def test_empty_and_invisible_only_text_normalise_to_empty():
    for text in ("", "   ", "\u200b\u200b", "\n\t "):
        assert normalize_text(text) == ""


def test_lone_surrogates_are_replaced_not_raised():
    assert normalize_text("bad \ud800 text") == "bad \ufffd text"
    assert comment_hash("bad \ud800 text")


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (1, 3), (2, 3)])
def test_word_ngrams_match_scikit_learn_word_analyzer(ngram_range):
    from sklearn.feature_extraction.text import CountVectorizer

    text = "you are a total idiot, you know it"
    analyzer = CountVectorizer(ngram_range=ngram_range, lowercase=False).build_analyzer()
    assert word_ngrams(text, ngram_range) == analyzer(text)


# spaces, invisibles, separators, leet, marks, look-alikes, compatibility forms, surrogates
_TRICKY = " \t\n\u00a0\u2003\u3000\u200b\u2060\ufeff\u00ad.-_*!|@$013aAь\u0301\u00a8\ufe4d\ud800"


@pytest.mark.parametrize(
    "text", ["", " ", "\u200b", " \u200b\u2060 \n", "\u00a8", ". . .", "\ud800"]
)
def test_blank_means_nothing_reaches_the_model(text):
    assert is_blank(text) == (normalize_text(text) == "")


@given(st.text(alphabet=_TRICKY, max_size=12))
def test_blank_agrees_with_normalisation_on_any_mix_of_tricky_characters(text):
    # input validation answers "empty" exactly when the model would see nothing
    assert is_blank(text) == (normalize_text(text) == "")
