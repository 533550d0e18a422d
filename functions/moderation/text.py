"""Text normalisation and hashing, shared by training and serving.

The model only ever sees ``normalize_text(text)``, and the cache key is the hash of that same
string, so two comments share a cache entry only when the model would score them identically.
"""

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

# Zero-width and invisible formatting characters used to dodge filters ("id\u200biot").
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")

#: Word tokens, the same as scikit-learn's default ``token_pattern`` (``(?u)\b\w\w+\b``):
#: a greedy run of word characters always starts and ends at a word boundary, so the
#: boundary checks add nothing but a quarter of the time on long comments. Training and the
#: scorer share it.
WORD_PATTERN = r"\w\w+"
WORD_RE = re.compile(WORD_PATTERN)

# Lower-case Cyrillic and Greek letters that look like a Latin letter, and that letter.
CONFUSABLES: dict[str, str] = {
    **dict(zip("асԁеһіјкӏмнорԛѕтухԝьв", "acdehijklmhopqstyxwbb", strict=True)),
    **dict(zip("αβεζηικμνορτυχωγ", "abezniku" + "voptuxwy", strict=True)),
}
_CONFUSABLE_TABLE = str.maketrans(CONFUSABLES)
_CONFUSABLE_CLASS = "[" + "".join(CONFUSABLES) + "]"
_LOOKALIKE = re.compile(_CONFUSABLE_CLASS)
# letter runs with at least one look-alike in them (the others need no Python callback)
_LOOKALIKE_RUN = re.compile(rf"(?<![^\W\d_])[^\W\d_]*?{_CONFUSABLE_CLASS}[^\W\d_]*")
_LATIN = re.compile("[a-z]")

#: Leetspeak characters and the letter each stands for inside a word.
LEET: dict[str, str] = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a"}
LEET |= {"$": "s", "!": "i"}
_LEET_TABLE = str.maketrans(LEET)
# A token is leetspeak when a run of leet characters sits between two letters ("st00pid",
# "1d10t"); "covid19", "4th", "mp3" and plain numbers keep their digits.
_LEET_TOKEN = re.compile(
    r"(?<![\w@$!])(?=[a-z0-9@$!]*[a-z][013457@$!]+[a-z])[a-z0-9@$!]{3,}(?![\w@$!])"
)
_LEET_U = re.compile(r"\|_\|")  # "f|_|ck"

# Single characters separated by a dot, hyphen or underscore ("f.u.c.k", three or more), or
# by spaces ("i d i o t", four or more, so "u r a" stays text-speak), joined into one word.
_DOTTED = re.compile(r"(?<!\w)[a-z0-9](?:[.\-_][a-z0-9]){2,}(?!\w)")
_SPACED = re.compile(r"(?<!\w)[a-z0-9](?: [a-z0-9]){3,}(?!\w)")
_SEPARATORS = re.compile(r"[ .\-_]")
# Three or more of the same letter or symbol become two ("stuuupid" -> "stuupid"); digits
# keep their runs (amounts, years).
_REPEATS = re.compile(r"([^\d\s])\1\1+")


def _before_mark(match: re.Match[str]) -> bool:
    """Whether a combining mark follows the match: a letter written there could compose with
    it in a second NFKC pass, so folds that write letters leave such a match alone."""
    end = match.end()
    return end < len(match.string) and unicodedata.combining(match.string[end]) != 0


def _fold_confusables(match: re.Match[str]) -> str:
    """Map the look-alikes of a letter run that mixes them with Latin letters ("іdiot"), or
    that is all look-alikes in a comment with Latin letters elsewhere ("you іdіот"). Words
    of a comment written in another script ("как дела") are left alone, and so is a run
    that a combining mark follows (a mapped letter could compose with it)."""
    run = match.group()
    if _before_mark(match):
        return run
    if _LATIN.search(run):
        return run.translate(_CONFUSABLE_TABLE)
    if all(c in CONFUSABLES for c in run) and _LATIN.search(match.string):
        return run.translate(_CONFUSABLE_TABLE)
    return run


def _join_letters(match: re.Match[str]) -> str:
    """Join a separated run of single characters when at least two are letters."""
    joined = _SEPARATORS.sub("", match.group())
    return joined if sum(c.isalpha() for c in joined) >= 2 else match.group()


def _unleet(match: re.Match[str]) -> str:
    return match.group() if _before_mark(match) else match.group().translate(_LEET_TABLE)


#: A fold's replacement: a function of the match, or an ``re`` template.
Replacement = Callable[[re.Match[str]], str] | str


@dataclass(frozen=True)
class Fold:
    """One obfuscation fold: ``pattern.sub(replacement, text)``. ``hint`` is a cheaper
    pattern that every match of ``pattern`` contains, searched first so that most comments
    skip the fold's full scan."""

    pattern: re.Pattern[str]
    replacement: Replacement
    hint: re.Pattern[str] | None = None

    def apply(self, text: str) -> str:
        if self.hint is not None and self.hint.search(text) is None:
            return text
        return self.pattern.sub(self.replacement, text)


#: The obfuscation folds, in order: ``normalize_text`` applies them and explanations replay
#: them with offsets (``fold_with_offsets``).
OBFUSCATION_FOLDS: tuple[Fold, ...] = (
    Fold(_LOOKALIKE_RUN, _fold_confusables, hint=_LOOKALIKE),
    Fold(_LEET_U, "u"),
    Fold(_DOTTED, _join_letters, hint=re.compile(r"[.\-_][a-z0-9][.\-_]")),
    Fold(_SPACED, _join_letters, hint=re.compile(r" [a-z0-9] [a-z0-9] ")),
    Fold(_LEET_TOKEN, _unleet, hint=re.compile(r"[a-z][013457@$!]+[a-z]")),
    Fold(_REPEATS, r"\1\1"),
)


def fold_case_and_space(text: str) -> str:
    """NFKC, invisible characters dropped, lower case, single spaces: the Unicode part of
    normalisation, before the obfuscation folds."""
    if text.isascii():
        return _WHITESPACE.sub(" ", text.lower()).strip()
    text = _INVISIBLE.sub("", _SURROGATE.sub("\ufffd", text))
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).lower())
    return _WHITESPACE.sub(" ", text).strip()


# A request may normalise the same comment more than once (Perspective's client-token key,
# the service, the scorer): the last few results are kept. Strings cache their hash, so a hit
# costs a dict lookup.
@lru_cache(maxsize=256)
def normalize_text(text: str) -> str:
    """Fold a comment into the form the model scores.

    NFKC folds look-alike characters (full-width, ligatures, styled letters) into plain ones,
    invisible characters are dropped, case is folded and whitespace runs become one space.
    Lone surrogates (possible from JSON escapes) become U+FFFD so the result is always valid.
    Then the obfuscation folds undo common filter dodges: Cyrillic and Greek look-alikes
    inside Latin words, "f|_|ck", separated letters ("f.u.c.k", "i d i o t"), leetspeak
    inside words ("st00pid") and letters repeated more than twice.

    The result is a fixed point (``normalize_text(normalize_text(t)) == normalize_text(t)``):
    invisibles go *before* NFKC, since one between a letter and a combining mark
    ("e\u200b\u0301") would otherwise block their composition only until a second pass, and
    NFKC runs again after lower-casing, which can make a pair composable ("\u03aa\u0301").
    No fold writes a letter in front of a combining mark, which a second NFKC could compose.
    """
    text = fold_case_and_space(text)
    for fold in OBFUSCATION_FOLDS:
        text = fold.apply(text)
    return text


def is_blank(text: str) -> bool:
    """Whether nothing of ``text`` reaches the model (``normalize_text`` gives ""): empty,
    whitespace or invisible characters only. The obfuscation folds never empty a text, so
    the Unicode folding alone tells, at a fraction of the cost."""
    return not fold_case_and_space(text)


def text_hash(normalized: str) -> str:
    """Hex sha256 of an already normalised comment: the cache key and the logged input hash."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def comment_hash(text: str) -> str:
    """Hash of a raw comment, through the same normalisation the model uses."""
    return text_hash(normalize_text(text))


def word_ngrams(normalized: str, ngram_range: tuple[int, int] = (1, 2)) -> list[str]:
    """Word n-grams, exactly as scikit-learn's word analyzer with this ``ngram_range``."""
    return token_ngrams(WORD_RE.findall(normalized), ngram_range)


def token_ngrams(tokens: list[str], ngram_range: tuple[int, int] = (1, 2)) -> list[str]:
    """``word_ngrams`` of a comment already split by ``WORD_RE`` (the scorer splits once for
    its n-grams and its word vectors)."""
    low, high = ngram_range
    grams = list(tokens) if low == 1 else []
    if low <= 2 <= high:  # the common case, kept on the fast path (zip, no slicing)
        grams += [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
    for n in range(max(low, 3), min(high, len(tokens)) + 1):
        grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return grams
