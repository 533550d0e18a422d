"""Obfuscation folding in normalisation: what each fold undoes, what it leaves alone, and
that it stays a fixed point (the cache key is the normalised text)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.model.explain import fold_with_offsets
from moderation.text import normalize_text

FAST = settings(max_examples=400, deadline=None)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("You are a complete 1d10t.", "you are a complete idiot."),
        ("st00pid m0r0n", "stoopid moron"),
        ("4$$h0l3", "asshole"),
        ("sh!t", "shit"),
        ("f|_|ck", "fuck"),
        ("f.u.c.k off", "fuck off"),
        ("what an i d i o t", "what an idiot"),
        ("stuuuuupid!!!!!", "stuupid!!"),
        ("You are a complete іdіоt.", "you are a complete idiot."),  # Cyrillic і, о
        ("sτυpιd", "stupid"),  # Greek τ, υ, ι
        ("you іdіот", "you idiot"),  # an all-Cyrillic word in a Latin comment
    ],
)
def test_obfuscated_spellings_fold_to_the_plain_word(text, folded):
    assert normalize_text(text) == folded


@pytest.mark.parametrize(
    "text",
    [
        "covid19 in the 4th week, 3rd time, 10am, the 2020s, mp3",
        "$100 and 1000000 years",
        "u r a star",  # three spaced letters stay text-speak
        "e.g. this",
        "привет как дела",  # a comment in another script keeps its letters
        "και το",
        "f*ck",
        "good coffee, too",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert normalize_text(text) == text


obfuscated_text = st.text(
    st.one_of(
        st.sampled_from("aeiostdkuy013457@$!|_.- "),
        st.sampled_from("асеіорхуτυιοαк"),
        st.characters(categories=("Mn",)),
        st.sampled_from("ÄÉ\u0301\u0308😂ЖЯ"),
    ),
    max_size=40,
)


@FAST
@given(obfuscated_text)
def test_folding_is_idempotent_on_obfuscation_heavy_text(text):
    once = normalize_text(text)
    assert normalize_text(once) == once


@FAST
@given(obfuscated_text)
def test_explanation_offsets_follow_the_folds(text):
    folded, bounds = fold_with_offsets(text)
    assert len(bounds) == len(folded)
    assert all(0 <= start < end <= len(text) for start, end in bounds)


def test_explanation_offsets_locate_a_folded_word():
    text = "what a 1d10t you are, an i d i o t"
    folded, bounds = fold_with_offsets(text)
    first = folded.index("idiot")
    assert text[bounds[first][0] : bounds[first + 4][1]] == "1d10t"
    second = folded.rindex("idiot")
    assert text[bounds[second][0] : bounds[second + 4][1]] == "i d i o t"
