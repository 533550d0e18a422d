"""Perspective's attribute names for this service's labels, and which languages each serves."""

from typing import Final

from moderation.language import SUPPORTED_LANGUAGES

__all__ = ["ATTRIBUTES", "SUPPORTED_LANGUAGES", "language_code"]

#: Perspective attribute -> the label whose score answers it
ATTRIBUTES: Final[dict[str, str]] = {
    "TOXICITY": "toxic",
    "SEVERE_TOXICITY": "severe_toxic",
    "PROFANITY": "obscene",
    "THREAT": "threat",
    "INSULT": "insult",
    "IDENTITY_ATTACK": "identity_hate",
}


def language_code(tag: str) -> str:
    """``en`` for ``en``, ``EN``, ``en-US`` or ``en_GB``: the primary subtag, lower case."""
    return tag.replace("_", "-").split("-", 1)[0].lower()
