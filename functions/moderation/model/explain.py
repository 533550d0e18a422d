"""Explanations: the n-grams behind a label's score, located in the comment as written."""

import re

from pydantic import BaseModel, Field

from moderation.text import OBFUSCATION_FOLDS, Replacement, fold_case_and_space


class Explanation(BaseModel):
    ngram: str
    weight: float
    spans: list[tuple[int, int]] = Field(description="[start, end) offsets in the comment")


#: For each folded character, the [start, end) slice of the original comment it comes from.
Bounds = list[tuple[int, int]]


def _sub_with_bounds(
    pattern: re.Pattern[str],
    replace: Replacement,
    text: str,
    bounds: Bounds,
) -> tuple[str, Bounds]:
    """``pattern.sub(replace, text)`` that also carries each character's original slice. A
    character written by a fold comes from the whole slice the fold read ("1d10t" for each
    letter of "idiot"): the folds look at context, so only that slice, normalised on its own,
    gives the same letters."""
    pieces: list[str] = []
    out: Bounds = []
    last = 0
    for match in pattern.finditer(text):
        start, end = match.span()
        replacement = match.expand(replace) if isinstance(replace, str) else replace(match)
        pieces.append(text[last:start])
        out.extend(bounds[last:start])
        pieces.append(replacement)
        if replacement == match.group():
            out.extend(bounds[start:end])
        elif replacement:
            region = (bounds[start][0], bounds[end - 1][1])
            out.extend([region] * len(replacement))
        last = end
    pieces.append(text[last:])
    out.extend(bounds[last:])
    return "".join(pieces), out


#: an ASCII run (folded in one go: lower case, whitespace to a space) or one other character
_ASCII_RUN_OR_CHAR = re.compile(r"[\x00-\x7f]+|[^\x00-\x7f]", re.DOTALL)
_ASCII_SPACES = str.maketrans({chr(c): " " for c in range(128) if chr(c).isspace()})


def fold_with_offsets(text: str) -> tuple[str, Bounds]:
    """``text`` folded as ``normalize_text`` folds it (case and Unicode character by
    character, then the obfuscation folds), and each folded character's original slice.
    ASCII characters fold one to one, so a run of them is folded at once."""
    pieces: list[str] = []
    bounds: Bounds = []
    for run in _ASCII_RUN_OR_CHAR.finditer(text):
        start, end = run.span()
        piece = run.group()
        if piece.isascii():
            pieces.append(piece.lower().translate(_ASCII_SPACES))
            bounds.extend([(i, i + 1) for i in range(start, end)])
            continue
        piece = fold_case_and_space(piece) if not piece.isspace() else " "
        pieces.append(piece)
        bounds.extend([(start, end)] * len(piece))
    folded = "".join(pieces)
    for fold in OBFUSCATION_FOLDS:
        if fold.hint is None or fold.hint.search(folded) is not None:
            folded, bounds = _sub_with_bounds(fold.pattern, fold.replacement, folded, bounds)
    return folded, bounds


# Between two tokens of a word n-gram lies anything the tokenizer skips: punctuation,
# spaces, one-character words ("you are a fool" -> "are fool").
_WORD_GAP = r"(?:\W|(?<!\w)\w(?!\w))+"


def find_spans(
    gram: str, folded: str, bounds: Bounds, word: bool = False, limit: int = 5
) -> list[tuple[int, int]]:
    if word:
        pattern = _WORD_GAP.join(rf"(?<!\w){re.escape(part)}(?!\w)" for part in gram.split(" "))
    else:
        pattern = r"\s+".join(re.escape(part) for part in gram.split(" "))
    spans = []
    for match in re.finditer(pattern, folded):
        if match.end() > match.start():
            spans.append((bounds[match.start()][0], bounds[match.end() - 1][1]))
        if len(spans) >= limit:
            break
    return spans
