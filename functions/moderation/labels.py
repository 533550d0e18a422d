"""The six Jigsaw toxicity labels, in the order every array in the system uses."""

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
