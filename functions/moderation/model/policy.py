"""Decisions that fail safe: the allow/review/block rule plus the reasons behind it.

``Scorer.decide`` applies the thresholds alone. ``judge`` adds rules that need the text, each
turning an automatic decision into a human one, never the reverse:

- when a comment is flagged only because it names an identity (with the identity terms
  masked no label reaches its threshold), the decision is ``review``, never ``block``, so a
  neutral or proud mention of a group ("I am a proud gay muslim woman") is never removed
  unseen;
- when a block rests on words inside quotes or a negation's scope (with those masked no
  label reaches its block threshold), the decision is ``review``: counter-speech that quotes
  hate ("saying 'all gays are disgusting' is wrong") and negated insults ("I don't think you
  are an idiot") reach a moderator instead of being removed. A bag of n-grams cannot read
  the frame; a human can.
"""

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from moderation.labels import LABELS, Decision, decide
from moderation.language import DetectedLanguage

if TYPE_CHECKING:  # the scorer imports nothing from here; avoid a run-time cycle
    from moderation.model.scorer import Scorer

#: Words that name a protected identity (religion, ethnicity or nationality, sexual
#: orientation, gender identity, gender, disability, age), in normalised (lower-case) form.
IDENTITY_TERMS: tuple[str, ...] = (
    # sexual orientation and gender identity
    "gay", "gays", "lesbian", "lesbians", "bisexual", "bisexuals", "queer", "queers",
    "homosexual", "homosexuals", "lgbt", "lgbtq", "transgender", "trans", "straight",
    "heterosexual", "nonbinary",
    # religion
    "muslim", "muslims", "islam", "islamic", "christian", "christians", "jew", "jews",
    "jewish", "hindu", "hindus", "buddhist", "buddhists", "sikh", "sikhs", "atheist",
    "atheists", "catholic", "catholics", "mosque", "church", "synagogue",
    # ethnicity and nationality
    "black", "blacks", "white", "whites", "asian", "asians", "latino", "latinos", "latina",
    "latinas", "hispanic", "hispanics", "mexican", "mexicans", "african", "africans", "arab",
    "arabs", "chinese", "indian", "indians", "pakistani", "pakistanis", "somali", "somalis",
    "nigerian", "nigerians", "roma", "indigenous", "immigrant", "immigrants", "refugee",
    "refugees", "migrant", "migrants",
    # gender
    "woman", "women", "female", "females", "man", "men", "male", "males", "girl", "girls",
    # disability and age
    "disabled", "disability", "blind", "deaf", "autistic", "elderly", "old", "young",
)  # fmt: skip
_IDENTITY_RE = re.compile(r"\b(?:" + "|".join(IDENTITY_TERMS) + r")\b")


_LETTER = re.compile(r"[^\W\d_]")
_LATIN_LETTER = re.compile(r"[a-z\u00df-\u00ff\u0100-\u024f]")


def outside_training_script(normalized: str, share: float = 0.5) -> bool:
    """Whether most letters of a normalised comment are outside the Latin script (Cyrillic,
    Arabic, CJK...): text the English-trained model cannot judge. A script check, not
    language identification: French or German in Latin letters passes."""
    letters = len(_LETTER.findall(normalized))
    return letters > 0 and len(_LATIN_LETTER.findall(normalized)) < share * letters


#: A negation cue and its scope: the words after it up to the end of the clause.
_NEGATION_SCOPE = re.compile(
    r"\b(?:not|never|no|nobody|nothing|neither|nor|hardly|cannot|"
    r"(?:do|does|did|is|are|was|were|wo|would|could|should|ca|have|has|had|ai)n['’]?t)\b"
    r"[^.!?;,:\n]*"
)
#: Text inside double quotes (straight or curly), or single quotes around 3+ characters
#: (so the apostrophes of "don't" and "gays'" do not open a quote).
_QUOTED = re.compile(r"\"[^\"]+\"|“[^”]+”|(?<!\w)['‘][^'‘’]{3,}['’](?!\w)")


def mask_negated_and_quoted(normalized: str) -> str:
    """The normalised comment without its quoted passages and negation scopes."""
    without_quotes = _QUOTED.sub(" ", normalized)
    return " ".join(_NEGATION_SCOPE.sub(" ", without_quotes).split())


def mask_identity_terms(normalized: str) -> str:
    """The normalised comment with every identity term removed (spaces kept single)."""
    return " ".join(_IDENTITY_RE.sub(" ", normalized).split())


def mentions_identity(normalized: str) -> bool:
    return _IDENTITY_RE.search(normalized) is not None


@dataclass(frozen=True)
class Judgement:
    """Flagged labels, the decision and why, in words a moderator can read."""

    labels: list[str]
    decision: Decision
    reasons: list[str] = field(default_factory=list)


#: Reasons name each rule that fired, in a form programs can read: ``label:<label>>=<t>``
#: (flagged at threshold t), ``block:<label>>=<t>`` (blocks at t), ``identity_terms_only``,
#: ``negated_or_quoted``, ``unsupported_script``, ``unsupported_language:<code>``; policies
#: add ``block_term:"..."`` and the like.
IDENTITY_ONLY_REASON = "identity_terms_only"
NEGATED_OR_QUOTED_REASON = "negated_or_quoted"
UNSUPPORTED_SCRIPT_REASON = "unsupported_script"
UNSUPPORTED_LANGUAGE_REASON = "unsupported_language:{code}"


def _threshold_reasons(
    scores: np.ndarray, review_at: np.ndarray, block_at: dict[str, float]
) -> list[str]:
    reasons = []
    for label, score, threshold in zip(LABELS, scores.tolist(), review_at.tolist(), strict=True):
        block = max(block_at[label], threshold)
        if score >= block:
            reasons.append(f"block:{label}>={block:.2f}")
        elif score >= threshold:
            reasons.append(f"label:{label}>={threshold:.2f}")
    return reasons


def judge(
    scorer: "Scorer",
    normalized: str,
    scores: np.ndarray,
    thresholds: np.ndarray | None = None,
    unsupported: Decision | None = None,
    block_at: dict[str, float] | None = None,
    language: DetectedLanguage | None = None,
) -> Judgement:
    """The decision for a normalised comment and its scores, with reasons.

    ``thresholds`` overrides the review thresholds and ``block_at`` the block thresholds
    (``inf``: the label never blocks), as a community policy does. A flagged comment that
    names an identity is scored again with the identity terms masked; if nothing is flagged
    then, the flag rests on the identity terms and the decision is ``review``.
    ``unsupported`` (e.g. ``"review"``), when given, is the decision for a comment the
    model was not trained to judge: written mostly outside the Latin script, or in a language
    other than English (``language``, when detected with confidence).
    """
    review_at = scorer.thresholds if thresholds is None else thresholds
    block_at = scorer.metadata.block_thresholds if block_at is None else block_at
    labels, decision = _decide(scores, review_at, block_at)
    reasons = _threshold_reasons(scores, review_at, block_at)
    if unsupported is not None:
        if outside_training_script(normalized):
            return Judgement(labels, unsupported, [*reasons, UNSUPPORTED_SCRIPT_REASON])
        if language is not None and not language.supported:
            reason = UNSUPPORTED_LANGUAGE_REASON.format(code=language.code)
            return Judgement(labels, unsupported, [*reasons, reason])
    if decision != "allow" and mentions_identity(normalized):
        masked = scorer.score_normalized(mask_identity_terms(normalized))
        if not (masked >= review_at).any():
            reasons.append(IDENTITY_ONLY_REASON)
            return Judgement(labels, "review", reasons)
    if decision == "block":
        masked_text = mask_negated_and_quoted(normalized)
        if masked_text != normalized:
            _, masked_decision = _decide(scorer.score_normalized(masked_text), review_at, block_at)
            if masked_decision != "block":
                return Judgement(labels, "review", [*reasons, NEGATED_OR_QUOTED_REASON])
    return Judgement(labels, decision, reasons)


def _decide(
    scores: np.ndarray, review_at: np.ndarray, block_at: dict[str, float]
) -> tuple[list[str], Decision]:
    """``decide`` (the one decision rule) on arrays in ``LABELS`` order."""
    return decide(
        dict(zip(LABELS, scores.tolist(), strict=True)),
        dict(zip(LABELS, review_at.tolist(), strict=True)),
        block_at,
    )
