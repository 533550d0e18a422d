"""Explanations: the n-grams behind a label's score, located in the comment as written."""

import re

from pydantic import BaseModel, Field

from moderation.text import normalize_text


class Explanation(BaseModel):
    ngram: str
    weight: float
    spans: list[tuple[int, int]] = Field(description="[start, end) offsets in the comment")


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """``text`` folded character by character, and each folded char's original offset."""
    pieces: list[str] = []
    origin: list[int] = []
    for position, char in enumerate(text):
        piece = normalize_text(char) if not char.isspace() else " "
        pieces.append(piece)
        origin.extend([position] * len(piece))
    origin.append(len(text))
    return "".join(pieces), origin


# Between two tokens of a word n-gram lies anything the tokenizer skips: punctuation,
# spaces, one-character words ("you are a fool" -> "are fool").
_WORD_GAP = r"(?:\W|(?<!\w)\w(?!\w))+"


def find_spans(
    gram: str, folded: str, origin: list[int], word: bool = False, limit: int = 5
) -> list[tuple[int, int]]:
    if word:
        pattern = _WORD_GAP.join(rf"(?<!\w){re.escape(part)}(?!\w)" for part in gram.split(" "))
    else:
        pattern = r"\s+".join(re.escape(part) for part in gram.split(" "))
    spans = []
    for match in re.finditer(pattern, folded):
        if match.end() > match.start():
            spans.append((origin[match.start()], origin[match.end() - 1] + 1))
        if len(spans) >= limit:
            break
    return spans
