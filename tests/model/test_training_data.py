"""The validation split on real comments (the committed sample)."""

import pandas as pd

from moderation.labels import LABELS
from training import data


def test_split_is_deterministic_and_stratified(jigsaw_train: pd.DataFrame):
    frame = jigsaw_train.rename(columns={"unbiased_sample": "unbiased"}).head(20_000)
    first = data.stratified_split(frame, 0.15, seed=42)
    again = data.stratified_split(frame, 0.15, seed=42)
    assert (first[1] == again[1]).all()
    for label in LABELS:
        overall = frame[label].mean()
        assert abs(frame[label].iloc[first[1]].mean() - overall) < 0.2 * overall + 0.002
