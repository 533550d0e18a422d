"""Text normalisation and hashing, shared by training and serving.

The model only ever sees ``normalize_text(text)``, and the cache key is the hash of that same
string, so two comments share a cache entry only when the model would score them identically.
"""

import hashlib
import re
import unicodedata

# Zero-width and invisible formatting characters used to dodge filters ("id\u200biot").
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")

#: Word tokens as scikit-learn's default ``token_pattern``; training and the scorer share it.
WORD_PATTERN = r"(?u)\b\w\w+\b"
WORD_RE = re.compile(WORD_PATTERN)


def normalize_text(text: str) -> str:
    """Fold a comment into the form the model scores.

    NFKC folds look-alike characters (full-width, ligatures, styled letters) into plain ones,
    invisible characters are dropped, case is folded and whitespace runs become one space.
    Lone surrogates (possible from JSON escapes) become U+FFFD so the result is always valid.

    The result is a fixed point (``normalize_text(normalize_text(t)) == normalize_text(t)``):
    invisibles go *before* NFKC, since one between a letter and a combining mark
    ("e\u200b\u0301") would otherwise block their composition only until a second pass, and
    NFKC runs again after lower-casing, which can make a pair composable ("\u03aa\u0301").
    """
    if text.isascii():
        return _WHITESPACE.sub(" ", text.lower()).strip()
    text = _INVISIBLE.sub("", _SURROGATE.sub("\ufffd", text))
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).lower())
    return _WHITESPACE.sub(" ", text).strip()


def text_hash(normalized: str) -> str:
    """Hex sha256 of an already normalised comment: the cache key and the logged input hash."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def comment_hash(text: str) -> str:
    """Hash of a raw comment, through the same normalisation the model uses."""
    return text_hash(normalize_text(text))


def word_ngrams(normalized: str, ngram_range: tuple[int, int] = (1, 2)) -> list[str]:
    """Word n-grams, exactly as scikit-learn's word analyzer with this ``ngram_range``."""
    tokens = WORD_RE.findall(normalized)
    low, high = ngram_range
    grams = list(tokens) if low == 1 else []
    if low <= 2 <= high:  # the common case, kept on the fast path (zip, no slicing)
        grams += [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
    for n in range(max(low, 3), min(high, len(tokens)) + 1):
        grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return grams
