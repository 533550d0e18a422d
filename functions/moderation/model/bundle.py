"""The model bundle's file format: a folder of plain files with a sha256 manifest.

Serving never imports scikit-learn or scipy: training folds the TF-IDF weights, the linear
model, any Naive-Bayes feature scaling and the calibration into one weight matrix, and the
stacked word-vector model into its vector table and two small layers, which
``moderation.model.scorer.Scorer`` evaluates with numpy alone.
"""

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moderation.errors import BundleError
from moderation.labels import DECISION_RULE, LABELS
from moderation.model.scorer import Scorer

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
    # the stacked word-vector model (its arrays are ``vector_*``), absent in older bundles
    word_vectors: str | None = None
    vector_hidden: int = 0


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
) -> Scorer:
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
