"""The model bundle: a folder of plain files with a sha256 manifest, and the lean scorer.

Serving never imports scikit-learn or scipy: training folds the TF-IDF weights, the linear
model, any Naive-Bayes feature scaling and the calibration into one weight matrix, and
``Scorer`` evaluates it with numpy alone.
"""

import hashlib
import json
import math
import re
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moderation.errors import BundleError
from moderation.features import (
    char_ngram_keys,
    char_ngram_keys_many,
    lookup_keys,
    lookup_keys_indexed,
)
from moderation.labels import DECISION_RULE, LABELS, decide
from moderation.text import normalize_text, word_ngrams

BUNDLE_FORMAT = "toxic-moderation-bundle/1"
METADATA_FILE = "metadata.json"
ARRAYS_FILE = "arrays.npz"
VOCAB_FILE = "vocab_words.txt"
CHAR_VOCAB_FILE = "vocab_chars.txt"
MANIFEST_FILE = "manifest.json"
BUNDLE_FILES = (METADATA_FILE, ARRAYS_FILE, VOCAB_FILE, CHAR_VOCAB_FILE)


class FeatureSpec(BaseModel):
    word_ngram_range: tuple[int, int] = (1, 2)
    char_ngram_range: tuple[int, int] = (1, 5)
    n_word: int
    n_char: int
    char_table_bits: int


class ReferenceDistributions(BaseModel):
    """Real-rate validation statistics, the baseline for drift monitoring."""

    source: str
    rows: int
    positive_rate: dict[str, float]
    score_histograms: dict[str, list[int]]
    histogram_bins: list[float]


class BundleMetadata(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    format: str = BUNDLE_FORMAT
    model_name: str
    version: str | None = None
    labels: list[str] = Field(default_factory=lambda: list(LABELS))
    thresholds: dict[str, float]
    block_thresholds: dict[str, float]
    decision_rule: str = DECISION_RULE
    features: FeatureSpec
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    git_commit: str | None = None
    git_dirty: bool | None = None
    created_at: datetime
    reference: ReferenceDistributions | None = None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_sha256(manifest: dict[str, str]) -> str:
    """Content address of a bundle: the hash of its canonical manifest."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def save_bundle(
    directory: Path,
    metadata: BundleMetadata,
    arrays: dict[str, np.ndarray],
    word_vocabulary: list[str],
    char_vocabulary: list[str],
) -> str:
    """Write a bundle folder and its manifest; returns the bundle's sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / METADATA_FILE).write_text(metadata.model_dump_json(indent=1))
    with (directory / ARRAYS_FILE).open("wb") as handle:
        np.savez(handle, **arrays)
    # Normalised text has no newlines, so one n-gram per line is unambiguous.
    (directory / VOCAB_FILE).write_text("\n".join(word_vocabulary), encoding="utf-8")
    (directory / CHAR_VOCAB_FILE).write_text("\n".join(char_vocabulary), encoding="utf-8")
    manifest = {name: sha256_file(directory / name) for name in BUNDLE_FILES}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest_sha256(manifest)


def verify_bundle(directory: Path, expected_sha256: str | None = None) -> dict[str, str]:
    """Check every file against the manifest (and the manifest against its address)."""
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{directory}: unreadable manifest ({exc})") from exc
    if sorted(manifest) != sorted(BUNDLE_FILES):
        raise BundleError(f"{directory}: manifest lists {sorted(manifest)}")
    if expected_sha256 and manifest_sha256(manifest) != expected_sha256:
        raise BundleError(f"{directory}: manifest does not match bundle {expected_sha256[:12]}")
    for name, digest in manifest.items():
        path = directory / name
        if not path.is_file() or sha256_file(path) != digest:
            raise BundleError(f"{directory}: {name} is missing or fails its sha256 check")
    return manifest


def load_bundle(
    directory: Path, expected_sha256: str | None = None, verified: bool = False
) -> "Scorer":
    """Verify and load a bundle folder into a ready scorer (``verified``: the caller has
    just checked every sha256, as ``ModelRegistry.download`` does; not hashed twice)."""
    if not verified:
        verify_bundle(directory, expected_sha256)
    try:
        metadata = BundleMetadata.model_validate_json((directory / METADATA_FILE).read_text())
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        words = (directory / VOCAB_FILE).read_text(encoding="utf-8").split("\n")
        chars = (directory / CHAR_VOCAB_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError, ValidationError) as exc:
        raise BundleError(f"{directory}: cannot load bundle ({exc})") from exc
    if metadata.format != BUNDLE_FORMAT or metadata.labels != list(LABELS):
        raise BundleError(f"{directory}: unsupported format {metadata.format!r}")
    return Scorer(metadata, arrays, words, chars)


class Explanation(BaseModel):
    ngram: str
    weight: float
    spans: list[tuple[int, int]]


class Scorer:
    """Scores comments with numpy alone; the same maths as the training pipeline."""

    def __init__(
        self,
        metadata: BundleMetadata,
        arrays: dict[str, np.ndarray],
        words: list[str],
        char_vocabulary_text: str,
    ) -> None:
        spec = metadata.features
        if len(words) != spec.n_word or arrays["coef"].shape != (
            spec.n_word + spec.n_char,
            len(LABELS),
        ):
            raise BundleError("bundle arrays do not match their feature spec")
        self.metadata = metadata
        self._word_index = dict(zip(words, range(len(words)), strict=True))
        self._words = words
        self._char_min, self._char_max = spec.char_ngram_range
        self._word_range = tuple(spec.word_ngram_range)
        self._n_word = spec.n_word
        self._idf = arrays["idf"].astype(np.float64)
        # float32 as stored: values (float64) @ rows promotes per call, no 24 MB copy
        self._coef = arrays["coef"]
        self._intercept = arrays["intercept"].astype(np.float64)
        self._table_keys = arrays["char_table_keys"]
        self._table_values = arrays["char_table_values"]
        self._char_vocabulary_text = char_vocabulary_text
        self._bits = spec.char_table_bits
        self.thresholds = np.array([metadata.thresholds[label] for label in LABELS])

    @property
    def model_name(self) -> str:
        return self.metadata.model_name

    @property
    def version(self) -> str | None:
        return self.metadata.version

    def _block(self, ids: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
        """Sublinear TF-IDF, l2-normalised, for one vectorizer's feature ids."""
        if ids.size == 0:
            return ids.astype(np.int64), np.empty(0)
        unique, counts = np.unique(ids, return_counts=True)
        unique = unique.astype(np.int64) + offset
        values = (np.log(counts) + 1.0) * self._idf[unique]
        return unique, values / math.sqrt(float(values @ values))

    def _word_ids(self, normalized: str) -> list[int]:
        """Vocabulary positions of the comment's word n-grams (unknown ones dropped)."""
        get = self._word_index.get
        return [i for i in map(get, word_ngrams(normalized, self._word_range)) if i is not None]

    def features(self, normalized: str) -> tuple[np.ndarray, np.ndarray]:
        """Feature ids and TF-IDF values of a normalised comment."""
        word_ids = self._word_ids(normalized)
        keys = char_ngram_keys(normalized, self._char_min, self._char_max)
        char_ids = lookup_keys(keys, self._table_keys, self._table_values, self._bits)
        w_idx, w_val = self._block(np.asarray(word_ids, dtype=np.int64), 0)
        c_idx, c_val = self._block(char_ids, self._n_word)
        return np.concatenate((w_idx, c_idx)), np.concatenate((w_val, c_val))

    def score_normalized(self, normalized: str) -> np.ndarray:
        """Probabilities of the six labels for an already normalised comment."""
        idx, values = self.features(normalized)
        logits = values @ self._coef[idx] + self._intercept
        return 1.0 / (1.0 + np.exp(-logits))

    def score(self, text: str) -> np.ndarray:
        return self.score_normalized(normalize_text(text))

    def score_many(self, texts: list[str]) -> np.ndarray:
        return self.score_many_normalized([normalize_text(text) for text in texts])

    def score_many_normalized(self, normalized: list[str]) -> np.ndarray:
        """``score_normalized`` of many comments in one vectorised pass (same results to
        float rounding): one char n-gram hash and one table lookup for the whole batch,
        TF-IDF per (comment, feature) pair, logits by weighted bincounts."""
        n_docs = len(normalized)
        if n_docs == 0:
            return np.empty((0, len(LABELS)))
        word_docs: list[int] = []
        word_ids: list[int] = []
        for doc, text in enumerate(normalized):
            ids = self._word_ids(text)
            word_ids += ids
            word_docs += [doc] * len(ids)
        keys, key_docs = char_ngram_keys_many(normalized, self._char_min, self._char_max)
        found, char_ids = lookup_keys_indexed(
            keys, self._table_keys, self._table_values, self._bits
        )
        blocks = (
            self._block_many(np.asarray(word_docs), np.asarray(word_ids), 0, n_docs),
            self._block_many(key_docs[found], char_ids, self._n_word, n_docs),
        )
        docs = np.concatenate([b[0] for b in blocks])
        features = np.concatenate([b[1] for b in blocks])
        values = np.concatenate([b[2] for b in blocks])
        weights = self._coef[features]
        logits = np.column_stack(
            [
                np.bincount(docs, values * weights[:, j], minlength=n_docs)
                for j in range(weights.shape[1])
            ]
        )
        return 1.0 / (1.0 + np.exp(-(logits + self._intercept)))

    def _block_many(
        self, docs: np.ndarray, ids: np.ndarray, offset: int, n_docs: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``_block`` for many comments: (comment, feature id, l2-normalised TF-IDF)."""
        if ids.size == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0)
        width = np.int64(self._idf.size)
        pairs, counts = np.unique(docs.astype(np.int64) * width + ids, return_counts=True)
        docs, features = pairs // width, pairs % width + offset
        values = (np.log(counts) + 1.0) * self._idf[features]
        norms = np.sqrt(np.bincount(docs, values * values, minlength=n_docs))
        return docs, features, values / norms[docs]

    def decide(
        self, scores: np.ndarray, thresholds: np.ndarray | None = None
    ) -> tuple[list[str], str]:
        """Labels over threshold and the allow/review/block decision (see DECISION_RULE)."""
        review_at = self.thresholds if thresholds is None else thresholds
        return decide(
            dict(zip(LABELS, scores.tolist(), strict=True)),
            dict(zip(LABELS, review_at.tolist(), strict=True)),
            self.metadata.block_thresholds,
        )

    def explain(self, text: str, labels: list[str], top_k: int = 5) -> dict[str, list[Explanation]]:
        """The n-grams that pushed each label's score up most, with offsets into ``text``."""
        normalized = normalize_text(text)
        idx, values = self.features(normalized)
        folded, origin = _fold_with_offsets(text)
        result: dict[str, list[Explanation]] = {}
        for label in labels:
            contributions = values * self._coef[idx, LABELS.index(label)]
            order = np.argsort(-contributions)[:top_k]
            result[label] = [
                Explanation(
                    ngram=(gram := self._ngram_text(int(idx[i]))),
                    weight=round(float(contributions[i]), 6),
                    spans=_find_spans(gram, folded, origin, word=int(idx[i]) < self._n_word),
                )
                for i in order
                if contributions[i] > 0
            ]
        return result

    def _ngram_text(self, feature: int) -> str:
        if feature < self._n_word:
            return self._words[feature]
        return self._char_vocabulary[feature - self._n_word]

    @cached_property
    def _char_vocabulary(self) -> list[str]:
        """Split on first use: only explanations need char n-gram texts."""
        return self._char_vocabulary_text.split("\n")


def _fold_with_offsets(text: str) -> tuple[str, list[int]]:
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


def _find_spans(
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


def stamp_version(source: Path, destination: Path, version: str) -> str:
    """Copy a bundle with ``version`` written into its metadata; returns the new sha256."""
    verify_bundle(source)
    destination.mkdir(parents=True, exist_ok=True)
    metadata = BundleMetadata.model_validate_json((source / METADATA_FILE).read_text())
    metadata.version = version
    (destination / METADATA_FILE).write_text(metadata.model_dump_json(indent=1))
    for name in BUNDLE_FILES[1:]:
        (destination / name).write_bytes((source / name).read_bytes())
    manifest = {name: sha256_file(destination / name) for name in BUNDLE_FILES}
    (destination / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest_sha256(manifest)


def read_metadata(directory: Path) -> BundleMetadata:
    try:
        return BundleMetadata.model_validate_json((directory / METADATA_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{directory}: no readable bundle metadata ({exc})") from exc
