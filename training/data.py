"""Reading and checking Jigsaw-format CSVs, and the deterministic validation split.

Accepts the harvested files in ``../shared/data/jigsaw`` (``train.csv.xz``,
``train_sample_flags.csv.xz``, ``test_scored.csv.xz``) and the full Kaggle download
(``train.csv``, ``test.csv`` + ``test_labels.csv``), plain or compressed.
"""

import bz2
import gzip
import hashlib
import io
import lzma
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from moderation.errors import DataError
from moderation.labels import LABELS

SUFFIXES = ("", ".xz", ".gz", ".bz2", ".zip")
REQUIRED = ("id", "comment_text", *LABELS)
#: A small Jigsaw-format sample committed with the code (see its ATTRIBUTION.md): what the
#: tests and a data-less ``make run`` train on.
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"


@dataclass(frozen=True)
class DataFile:
    """Provenance of one input file, logged to W&B and stored in the bundle."""

    path: str
    sha256: str
    rows: int


def find_file(directory: Path, stem: str) -> Path | None:
    for suffix in SUFFIXES:
        path = directory / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def _read_bytes(path: Path) -> bytes:
    """Uncompressed content, so a .csv and the same .csv.xz hash alike."""
    try:
        if path.suffix == ".xz":
            return lzma.decompress(path.read_bytes())
        if path.suffix == ".gz":
            return gzip.decompress(path.read_bytes())
        if path.suffix == ".bz2":
            return bz2.decompress(path.read_bytes())
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                return archive.read(archive.namelist()[0])
        return path.read_bytes()
    except (OSError, lzma.LZMAError, EOFError, zipfile.BadZipFile, IndexError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc


def read_csv(path: Path, required: tuple[str, ...]) -> tuple[pd.DataFrame, DataFile]:
    """Read one CSV, failing with one line naming the file and the problem."""
    raw = _read_bytes(path)
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype={"id": str, "comment_text": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV ({str(exc).strip()})") from exc
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows")
    if "comment_text" in required:
        frame["comment_text"] = frame["comment_text"].fillna("")
    return frame, DataFile(str(path), hashlib.sha256(raw).hexdigest(), len(frame))


def check_labels(frame: pd.DataFrame, path: Path, allowed: tuple[int, ...] = (0, 1)) -> None:
    for label in LABELS:
        values = pd.to_numeric(frame[label], errors="coerce")
        bad = ~values.isin(allowed)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{path}: label {label} must be {'/'.join(map(str, allowed))}, "
                f"found {str(frame[label].iloc[row])!r} on data row {row + 1}"
            )
        frame[label] = values.astype(np.int8)


@dataclass
class TrainingData:
    frame: pd.DataFrame  # id, comment_text, six labels, unbiased (bool)
    files: list[DataFile]
    unbiased_source: str


def load_train(directory: Path) -> TrainingData:
    """The training rows, with an ``unbiased`` flag marking rows at real-traffic label rates."""
    path = find_file(directory, "train.csv")
    if path is None:
        raise DataError(f"{directory}: no train.csv (or .xz/.gz/.bz2/.zip) found")
    frame, info = read_csv(path, REQUIRED)
    check_labels(frame, path)
    files = [info]
    flags_path = find_file(directory, "train_sample_flags.csv")
    if flags_path is None:
        # The full Kaggle train set is itself a real-rate sample.
        frame["unbiased"] = True
        source = "all rows (no train_sample_flags file: assumed to be the full Kaggle set)"
    else:
        flags, flags_info = read_csv(flags_path, ("id", "unbiased_sample"))
        files.append(flags_info)
        merged = frame[["id"]].merge(flags, on="id", how="left")
        if merged["unbiased_sample"].isna().any():
            raise DataError(f"{flags_path}: has no flag for some train ids")
        frame["unbiased"] = merged["unbiased_sample"].astype(str).str.lower().eq("true").values
        source = "unbiased_sample rows of train_sample_flags"
    return TrainingData(frame, files, source)


def load_test(directory: Path) -> tuple[pd.DataFrame, list[DataFile]] | None:
    """The held-out scored test set, for reporting only; None when absent."""
    path = find_file(directory, "test_scored.csv")
    if path is not None:
        frame, info = read_csv(path, REQUIRED)
        check_labels(frame, path)
        return frame, [info]
    texts_path, labels_path = (
        find_file(directory, "test.csv"),
        find_file(directory, "test_labels.csv"),
    )
    if texts_path is None or labels_path is None:
        return None
    texts, texts_info = read_csv(texts_path, ("id", "comment_text"))
    labels, labels_info = read_csv(labels_path, ("id", *LABELS))
    check_labels(labels, labels_path, allowed=(-1, 0, 1))
    scored = labels[(labels[list(LABELS)] >= 0).all(axis=1)]
    return texts.merge(scored, on="id"), [texts_info, labels_info]


def stratified_split(
    frame: pd.DataFrame, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of train and validation, stratified over the label combination and the
    real-rate flag (rare combinations pooled), deterministic for a seed."""
    combo = frame[list(LABELS)].astype(str).agg("".join, axis=1) + frame["unbiased"].astype(str)
    counts = combo.map(combo.value_counts())
    strata = combo.where(counts >= 10, "rare" + frame["unbiased"].astype(str))
    positions = np.arange(len(frame))
    train, validation = train_test_split(
        positions, test_size=validation_fraction, random_state=seed, stratify=strata
    )
    return np.sort(train), np.sort(validation)


#: The extra labelled sources (``../shared/data/extra``, see its README): file stem and the
#: column whose value keeps related rows in one split (HatemojiBuild's original and
#: perturbation pairs); other sources split by row id.
EXTRA_SOURCES: dict[str, str | None] = {
    "stormfront": None,
    "toxigen_prompts": None,
    "civil_toxic_spans": None,
    "hatemoji_build": "hb_matched_id",
}


def default_extra_dir(data_dir: Path) -> Path | None:
    """The extra sources' folder: ``extra/`` beside the Jigsaw folder, when there is one."""
    sibling = data_dir.parent / "extra"
    return sibling if sibling.is_dir() else None


@dataclass
class ExtraData:
    frame: pd.DataFrame  # comment_text, six labels (float, NaN = unknown), source, group
    files: list[DataFile]


def _split_group(frame: pd.DataFrame, pair_column: str | None) -> pd.Series:
    """A key shared by rows that must stay in one split: a pair's smaller id, else the id."""
    ids = frame["id"].astype(str)
    if pair_column is None:
        return ids
    partner = frame[pair_column].fillna(frame["id"]).astype(str)
    return pd.concat([ids, partner], axis=1).min(axis=1)


def load_extra(directory: Path) -> ExtraData | None:
    """The extra sources found in ``directory``, with per-label masks: an empty cell is an
    unknown label (NaN), never a 0. None when the folder holds none of them."""
    frames, files = [], []
    for stem, pair_column in EXTRA_SOURCES.items():
        path = find_file(directory, f"{stem}.csv")
        if path is None:
            continue
        raw = _read_bytes(path)
        frame = pd.read_csv(
            io.BytesIO(raw), dtype={"id": str, pair_column or "id": str},
            keep_default_na=False, na_values=[""],
        )  # fmt: skip
        missing = [c for c in ("id", "text", *LABELS) if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
        labels = frame[list(LABELS)].apply(pd.to_numeric, errors="coerce")
        values = labels.to_numpy(dtype=np.float64)
        if not np.isin(values[~np.isnan(values)], (0.0, 1.0)).all():
            raise DataError(f"{path}: labels must be 0, 1 or empty")
        frames.append(
            pd.DataFrame(
                {
                    "comment_text": frame["text"].fillna("").astype(str),
                    **{label: labels[label].astype(float) for label in LABELS},
                    "source": stem,
                    "group": stem + ":" + _split_group(frame, pair_column),
                }
            )
        )
        files.append(DataFile(str(path), hashlib.sha256(raw).hexdigest(), len(frame)))
    if not frames:
        return None
    return ExtraData(pd.concat(frames, ignore_index=True), files)


def group_split(groups: pd.Series, validation_fraction: float, seed: int) -> np.ndarray:
    """Whether each row is in validation, by a seeded hash of its group: deterministic, and
    every row of a group on the same side."""
    digest = pd.util.hash_pandas_object(groups.astype(str) + f"#{seed}", index=False)
    return (digest.to_numpy() % 10_000) < int(validation_fraction * 10_000)
