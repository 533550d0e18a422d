"""The extra labelled sources: empty cells are unknown labels, pairs stay in one split."""

import lzma
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moderation.errors import DataError
from moderation.labels import LABELS
from training import data

HEADER = "id,text," + ",".join(LABELS) + ",source"


def write_xz(folder: Path, name: str, lines: list[str]) -> None:
    (folder / name).write_bytes(lzma.compress(("\n".join(lines) + "\n").encode()))


def test_empty_cells_are_unknown_never_zero(tmp_path):
    write_xz(
        tmp_path,
        "stormfront.csv.xz",
        [HEADER, "a1,they are vermin,1,,,,,1,stormfront", "a2,nice day,,,,,,0,stormfront"],
    )
    extra = data.load_extra(tmp_path)
    assert extra is not None and len(extra.files) == 1
    frame = extra.frame
    assert frame["toxic"].tolist()[0] == 1.0 and np.isnan(frame["toxic"].tolist()[1])
    assert frame["identity_hate"].tolist() == [1.0, 0.0]
    assert frame["source"].unique().tolist() == ["stormfront"]


def test_no_extra_files_means_none_and_bad_labels_stop(tmp_path):
    assert data.load_extra(tmp_path) is None
    write_xz(tmp_path, "toxigen_prompts.csv.xz", [HEADER, "b1,text,2,,,,,,toxigen_prompts"])
    with pytest.raises(DataError, match="labels must be 0, 1 or empty"):
        data.load_extra(tmp_path)


def test_matched_pairs_share_a_group_and_so_a_split():
    frame = pd.DataFrame({"id": ["0", "1", "2", "3", "9"], "hb": ["1", "0", "3", "2", None]})
    groups = data._split_group(frame, "hb")
    assert groups.tolist() == ["0", "0", "2", "2", "9"]
    many = pd.Series([f"g{i // 2}" for i in range(4000)])
    in_validation = data.group_split(many, 0.15, seed=42)
    assert 0.12 < in_validation.mean() < 0.18
    assert (in_validation[0::2] == in_validation[1::2]).all()
    assert (data.group_split(many, 0.15, seed=42) == in_validation).all()
