"""A community's word lists (block, review and allow terms) matched the way people dodge them.

Matching runs on ``normalize_text``'s output, the text the model sees, so look-alike
letters, ``f.u.c.k``, ``i d i o t``, leetspeak inside words and invisible characters are
already folded. On top of that, each word is folded for terms only:

- accents are dropped (``fück`` -> ``fuck``), leet characters anywhere in a word that has a
  letter become letters (``@ss``, ``5hit``, ``a$$``, ``sh|t``), ``'`` inside a word is
  dropped;
- letters may be repeated: a word matches a term word with the same letters in the same
  order where each run is at least as long (``fuuuck`` and ``fuck`` match ``fuck``; ``as``
  does not match ``ass``). So ``good`` matches a term ``god``: put ``good`` in the allow
  terms if that matters;
- ``*`` stands for a hidden letter (``f*ck``, ``s**t``; ``**`` for two or more, since
  longer runs are folded to two), the first letter being given;
- a word split by one separator (``fu.ck``, ``fu-ck``, ``fu_ck``, ``fu+ck``), or by one
  space next to a single letter (``f uck``, ``s hit``), is also tried joined, up to three
  pieces.

Terms match whole words only, so ``Scunthorpe``, ``class`` or ``assess`` never match
``cunt`` or ``ass``. A term of several words matches those words in a row, whatever lies
between them (spaces, punctuation).

Allow terms win: a block or review match that overlaps an allow match does not count, and
``mask`` removes the allow matches from the text before the model scores it, so neither a
term nor the model's n-grams can flag, say, a person's name the model misreads.
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from itertools import groupby
from typing import Literal, NamedTuple

from moderation.model.explain import fold_with_offsets
from moderation.text import LEET

TermList = Literal["block", "review", "allow"]

# A word for term matching: letters, digits, leet symbols, hidden letters and apostrophes.
_TOKEN = re.compile(r"[\w@$!*'|]+")
_LETTER = re.compile(r"[^\W\d_]")
_JOINING_SEPARATORS = frozenset(".-_+~")
_LEET_TABLE = str.maketrans({**LEET, "|": "i", "'": ""})
MAX_JOINED = 3


def _strip_accents(word: str) -> str:
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold_word(word: str) -> str:
    """A word as terms compare it: no accents, leet folded where the word has a letter,
    trailing and leading ``!`` dropped (punctuation, not an ``i``)."""
    word = _strip_accents(word.strip("!"))
    if _LETTER.search(word):
        word = word.translate(_LEET_TABLE)
    return word.replace("'", "")


def _runs(word: str) -> tuple[str, tuple[int, ...]]:
    """The word's letters with repeats collapsed, and each run's length."""
    groups = [(char, len(list(run))) for char, run in groupby(word)]
    return "".join(c for c, _ in groups), tuple(n for _, n in groups)


@dataclass(frozen=True)
class Term:
    text: str
    list: TermList
    skeleton: str  # the folded words' letters, repeats collapsed, words joined by " "
    runs: tuple[int, ...]
    words: int


@dataclass(frozen=True)
class Match:
    """A term found in the normalised text, with its span there ([start, end))."""

    term: str
    list: TermList
    start: int
    end: int


class _Word(NamedTuple):
    start: int
    end: int
    folded: str
    skeleton: str  # ``folded`` with repeated letters collapsed
    gap_before: str  # the normalised text between the previous word and this one


def _compile_term(text: str, term_list: TermList) -> Term | None:
    from moderation.text import normalize_text  # the same folds as the comment

    words = [fold_word(w) for w in _TOKEN.findall(normalize_text(text))]
    words = [w for w in words if w]
    if not words:
        return None
    pieces = [_runs(w) for w in words]
    skeleton = " ".join(s for s, _ in pieces)
    runs = tuple(n for _, r in pieces for n in r)
    return Term(text, term_list, skeleton, runs, len(words))


def _wildcard_pattern(word: str) -> re.Pattern[str] | None:
    """``f*ck`` as a pattern over term skeleton words; None when the first letter is hidden."""
    if word.startswith("*") or not _LETTER.search(word):
        return None
    parts = re.split(r"(\*+)", word)
    regex = "".join(
        ("." if len(p) == 1 else ".{2,}") if p.startswith("*") else re.escape(_runs(p)[0])
        for p in parts
        if p
    )
    return re.compile(regex)


_REPEATED = re.compile(r"(.)\1+")
#: distinct comment words whose folding a matcher remembers
_FOLD_CACHE_WORDS = 50_000


class TermMatcher:
    """Block, review and allow terms compiled once, matched against normalised comments.

    A comment's words are looked up by skeleton (repeats collapsed) in one dict per run of
    words: the cost grows with the comment's length, not with the number of terms; run
    lengths are compared only for the rare skeleton that hits."""

    def __init__(self, terms: dict[TermList, list[str]]) -> None:
        self.by_skeleton: dict[str, list[Term]] = {}
        for term_list, texts in terms.items():
            for text in texts:
                term = _compile_term(text, term_list)
                if term is not None:
                    self.by_skeleton.setdefault(term.skeleton, []).append(term)
        self.lengths = sorted({t.words for ts in self.by_skeleton.values() for t in ts})
        #: the first word of each term of several words: only there can a run match
        self.first_words = {
            t.skeleton.split(" ", 1)[0] for ts in self.by_skeleton.values() for t in ts
            if t.words > 1
        }  # fmt: skip
        self._folds: dict[str, tuple[str, str]] = {}

    @cached_property
    def _single_words(self) -> list[Term]:
        return [t for ts in self.by_skeleton.values() for t in ts if t.words == 1]

    def __bool__(self) -> bool:
        return bool(self.by_skeleton)

    def _fold(self, raw: str) -> tuple[str, str]:
        """A comment word folded, and its skeleton (remembered: words repeat a lot)."""
        hit = self._folds.get(raw)
        if hit is None:
            folded = fold_word(raw)
            hit = (folded, _REPEATED.sub(r"\1", folded))
            if len(self._folds) < _FOLD_CACHE_WORDS:
                self._folds[raw] = hit
        return hit

    def _words(self, normalized: str) -> list[_Word]:
        words, last = [], 0
        for found in _TOKEN.finditer(normalized):
            raw = found.group()
            start, end = found.span()
            if "!" in raw:
                start += len(raw) - len(raw.lstrip("!"))
                end -= len(raw) - len(raw.rstrip("!"))
            folded, skeleton = self._fold(raw)
            if folded:
                words.append(_Word(start, end, folded, skeleton, normalized[last:start]))
                last = end
        return words

    def _joined(self, words: list[_Word], i: int) -> list[_Word]:
        """Word ``i`` joined with the next ones across a separator inside a word."""
        out = []
        joined = words[i].folded
        for j in range(i + 1, min(i + MAX_JOINED, len(words))):
            gap = words[j].gap_before
            singles = len(words[j - 1].folded) == 1 or len(words[j].folded) == 1
            if not (gap in _JOINING_SEPARATORS or (gap == " " and singles)):
                break
            joined += words[j].folded
            out.append(
                _Word(words[i].start, words[j].end, joined, _REPEATED.sub(r"\1", joined), "")
            )
        return out

    def _check(self, run: list[_Word], skeleton: str, found: list[Match]) -> None:
        terms = self.by_skeleton.get(skeleton)
        if terms is None:
            if len(run) == 1 and "*" in run[0].folded:
                found += self._wildcard_matches(run[0].start, run[0].end, run[0].folded)
            return
        runs = tuple(n for w in run for n in _runs(w.folded)[1])
        for term in terms:
            if all(have >= need for have, need in zip(runs, term.runs, strict=True)):
                found.append(Match(term.text, term.list, run[0].start, run[-1].end))

    def find(self, normalized: str) -> list[Match]:
        """Every term in ``normalized``, block and review matches inside an allow match
        dropped; spans are offsets into ``normalized``."""
        if not self.by_skeleton:
            return []
        found: list[Match] = []
        words = self._words(normalized)
        longer = [n for n in self.lengths if n > 1]
        for i, word in enumerate(words):
            # most words match nothing: the dict and set lookups skip them cheaply
            if word.skeleton in self.by_skeleton or "*" in word.folded:
                self._check([word], word.skeleton, found)
            if word.skeleton in self.first_words:
                for n in longer:
                    if i + n <= len(words):
                        run = words[i : i + n]
                        self._check(run, " ".join(w.skeleton for w in run), found)
            if i + 1 < len(words):
                following = words[i + 1]
                if following.gap_before in _JOINING_SEPARATORS or (
                    following.gap_before == " "
                    and (len(word.folded) == 1 or len(following.folded) == 1)
                ):
                    for piece in self._joined(words, i):
                        self._check([piece], piece.skeleton, found)
        allowed = [m for m in found if m.list == "allow"]
        if not allowed:
            return found
        return [
            m
            for m in found
            if m.list == "allow" or not any(a.start < m.end and m.start < a.end for a in allowed)
        ]

    def _wildcard_matches(self, start: int, end: int, text: str) -> list[Match]:
        if (pattern := _wildcard_pattern(text)) is None:
            return []
        return [
            Match(t.text, t.list, start, end)
            for t in self._single_words
            if t.list != "allow" and pattern.fullmatch(t.skeleton)
        ]


def mask(normalized: str, matches: list[Match]) -> str:
    """``normalized`` without the allow matches: the text the model scores under a policy."""
    allowed = sorted((m.start, m.end) for m in matches if m.list == "allow")
    if not allowed:
        return normalized
    pieces, last = [], 0
    for start, end in allowed:
        if start >= last:
            pieces.append(normalized[last:start])
            last = end
    pieces.append(normalized[last:])
    return " ".join(" ".join(pieces).split())


def _collapse_spaces(folded: str) -> tuple[str, list[int]]:
    """``folded`` with whitespace runs made one space and the ends stripped (as
    ``normalize_text`` leaves it), and for each character its index in ``folded``."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(folded):
        if char.isspace():
            if chars and chars[-1] != " ":
                chars.append(" ")
                origin.append(index)
            continue
        chars.append(char)
        origin.append(index)
    if chars and chars[-1] == " ":
        chars.pop()
        origin.pop()
    return "".join(chars), origin


def locate(text: str, normalized: str, matches: list[Match]) -> list[tuple[Match, int, int]]:
    """Each match (found in ``normalized``, which is ``normalize_text(text)``) with its
    [begin, end) offsets in ``text`` as sent. The folds are replayed with offsets only when
    something matched; a match the replay cannot place spans the whole comment."""
    if not matches:
        return []
    folded, bounds = fold_with_offsets(text)
    collapsed, origin = _collapse_spaces(folded)
    if collapsed != normalized:
        return [(m, 0, len(text)) for m in matches]
    return [(m, bounds[origin[m.start]][0], bounds[origin[m.end - 1]][1]) for m in matches]
