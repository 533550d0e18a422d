"""The six Jigsaw toxicity labels, in the order every array in the system uses."""

from collections.abc import Mapping
from typing import Final, Literal

LABELS: Final[tuple[str, ...]] = (
    "toxic",
    "severe_toxic",
    "obscene",
    "threat",
    "insult",
    "identity_hate",
)

Label = Literal["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
Decision = Literal["allow", "review", "block"]
DECISIONS: Final[tuple[str, ...]] = ("allow", "review", "block")

DECISION_RULE: Final[str] = (
    "block if any label's score >= its block threshold; otherwise review if any label's "
    "score >= its threshold; otherwise allow. Fail-safe: a flag that rests on identity terms "
    "alone (nothing flagged once they are masked) is review, never block; so is a block that "
    "rests on words inside quotes or a negation's scope; a comment written "
    "mostly outside the Latin script, or detected as a language other than English, gets "
    "UNSUPPORTED_LANGUAGE_DECISION (default review)"
)


def decide(
    scores: Mapping[str, float], thresholds: Mapping[str, float], block_at: Mapping[str, float]
) -> tuple[list[str], Decision]:
    """Labels over threshold and the decision under DECISION_RULE. One definition for the API
    and the moderator UI (which re-applies it when a moderator moves a threshold slider).
    A block threshold below the review threshold is raised to it: a label that would not
    even be flagged never blocks."""
    flagged = [label for label in LABELS if scores[label] >= thresholds[label]]
    if any(scores[label] >= max(block_at[label], thresholds[label]) for label in LABELS):
        return flagged, "block"
    return flagged, ("review" if flagged else "allow")
