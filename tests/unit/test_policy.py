"""The fail-safe decision: reasons, and review (never block) when a flag rests on identity
terms alone."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from moderation.labels import LABELS, decide
from moderation.model.language_id import detect_language
from moderation.model.policy import (
    judge,
    mask_identity_terms,
    mask_negated_and_quoted,
    mentions_identity,
    outside_training_script,
)

THRESHOLDS = dict.fromkeys(LABELS, 0.5)
BLOCK = dict.fromkeys(LABELS, 0.9)


class WordScorer:
    """A stand-in scorer: ``toxic`` is 0.95 when any listed word is in the text, else 0.1."""

    def __init__(self, words: set[str]) -> None:
        self.words = words
        self.thresholds = np.array([THRESHOLDS[label] for label in LABELS])
        self.metadata = SimpleNamespace(block_thresholds=BLOCK)

    def score_normalized(self, normalized: str) -> np.ndarray:
        hit = any(word in re.findall(r"\w+", normalized) for word in self.words)
        return np.array([0.95 if hit else 0.1] + [0.1] * (len(LABELS) - 1))

    def decide(self, scores: np.ndarray, thresholds: np.ndarray) -> tuple[list[str], str]:
        return decide(
            dict(zip(LABELS, scores.tolist(), strict=True)),
            dict(zip(LABELS, thresholds.tolist(), strict=True)),
            BLOCK,
        )


def test_identity_terms_are_masked_as_whole_words():
    assert mask_identity_terms("i am a proud gay muslim woman") == "i am a proud"
    assert mentions_identity("my muslim neighbour")
    assert not mentions_identity("a gaylord street sign")  # a word that merely contains one


def test_a_flag_resting_on_identity_terms_alone_goes_to_review_with_the_reason():
    scorer = WordScorer({"gay"})
    text = "i am a proud gay man"
    judgement = judge(scorer, text, scorer.score_normalized(text))
    assert judgement.decision == "review"
    assert judgement.labels == ["toxic"]
    assert judgement.reasons == ["block:toxic>=0.90", "identity_terms_only"]


def test_a_flag_that_survives_masking_keeps_its_block():
    scorer = WordScorer({"vermin"})
    text = "muslims are vermin"
    judgement = judge(scorer, text, scorer.score_normalized(text))
    assert judgement.decision == "block"
    assert judgement.reasons == ["block:toxic>=0.90"]


def test_allowed_text_is_not_rescored_and_overrides_apply():
    scorer = WordScorer({"idiot"})
    assert judge(scorer, "hello", scorer.score_normalized("hello")).decision == "allow"
    lenient = np.ones(len(LABELS))
    idiot = scorer.score_normalized("you idiot")
    assert judge(scorer, "you idiot", idiot, lenient).decision == "allow"


def test_text_outside_the_latin_script_is_routed_by_the_setting():
    assert outside_training_script("привет как дела")
    assert outside_training_script("这是一条评论")
    assert not outside_training_script("c'est très bien, danke schön")
    assert not outside_training_script("12345 !!! 😂")  # no letters: nothing to judge
    scorer = WordScorer({"idiot"})
    text = "привет как дела"
    assert judge(scorer, text, scorer.score_normalized(text)).decision == "allow"
    routed = judge(scorer, text, scorer.score_normalized(text), unsupported="review")
    assert routed.decision == "review" and routed.reasons[-1] == "unsupported_script"


def test_a_comment_in_another_language_is_routed_by_the_setting():
    scorer = WordScorer({"idiot"})
    text = "je pense que tu as tort sur ce point, mais merci pour ton aide"
    french = detect_language(text)
    assert (french.code, french.supported) == ("fr", False)
    scores = scorer.score_normalized(text)
    assert judge(scorer, text, scores, language=french).decision == "allow"  # no setting
    routed = judge(scorer, text, scores, unsupported="review", language=french)
    assert routed.decision == "review" and routed.reasons[-1] == "unsupported_language:fr"


@pytest.mark.parametrize(
    "text",
    [
        "thx",  # too short to tell
        "ya mum",
        "YOU ARE A BLATANT MISUSE OF WIKIPEDIA",  # shouted English, read lower-cased
        "you are a wonderful person and i love your edits",
    ],
)
def test_english_short_or_shouted_is_scored_as_english(text):
    assert detect_language(text).supported
    scorer = WordScorer({"idiot"})
    scores = scorer.score_normalized(text.lower())
    judged = judge(
        scorer, text.lower(), scores, unsupported="review", language=detect_language(text)
    )
    assert judged.decision == "allow"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("i don't think you are an idiot at all", "i"),
        ("saying 'all gays are disgusting' is hateful and wrong", "saying is hateful and wrong"),
        ('he said "you are a moron" and got banned', "he said and got banned"),
        ("you are not stupid, you are an idiot", "you are , you are an idiot"),  # clause ends
        ("the gays' parade was fun", "the gays' parade was fun"),  # an apostrophe, not a quote
    ],
)
def test_quotes_and_negation_scopes_are_masked(text, masked):
    assert mask_negated_and_quoted(text) == masked


@pytest.mark.parametrize(
    "text",
    ["i would never call you an idiot", 'he wrote "you idiot" and was banned for it'],
)
def test_a_block_resting_on_negated_or_quoted_words_goes_to_review(text):
    scorer = WordScorer({"idiot"})
    judgement = judge(scorer, text, scorer.score_normalized(text))
    assert judgement.decision == "review"
    assert judgement.reasons == ["block:toxic>=0.90", "negated_or_quoted"]


def test_an_insult_outside_the_negation_still_blocks():
    scorer = WordScorer({"idiot"})
    text = "you are not clever, you are an idiot"
    assert judge(scorer, text, scorer.score_normalized(text)).decision == "block"


def test_full_width_latin_is_read_as_latin():
    assert detect_language("Ｓｈｕｔ ｕｐ， ｙｏｕ ｓｔｕｐｉｄ ｍｏｒｏｎ．").supported
