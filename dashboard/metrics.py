"""The dashboard's figures from aggregate counters: plain functions on dicts and frames, no
Streamlit, no AWS. Histogram percentiles, PSI and Jensen-Shannon come from the core
(``moderation.buckets``, ``moderation.drift``), the definitions the aggregator counts with."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pandas as pd

from moderation.buckets import (
    LATENCY_BINS,
    RESOLUTIONS,
    SCORE_BIN_EDGES,
    SCORE_BINS,
    histogram,
    percentile_from_histogram,
    review_queue_change,
)
from moderation.drift import jensen_shannon, psi
from moderation.labels import DECISIONS, LABELS
from moderation.stores.aggregates import ModelRecord

DriftStatus = Literal["ok", "watch", "alert"]
PERCENTILES = (50, 95, 99)
FREQUENCIES = {"minute": "min", "hour": "h"}
ACTIVITY = ("requests", "feedback", "review_removed")


def series_frame(
    buckets: Sequence[Mapping],
    counters: Sequence[str],
    resolution: str,
    start: datetime,
    end: datetime,
) -> pd.DataFrame:
    """Buckets as a frame indexed by bucket start (UTC), one row for every bucket from
    ``start`` to ``end`` (missing buckets as zeros), one integer column per counter."""
    frequency = FREQUENCIES[resolution]
    index = pd.date_range(
        pd.Timestamp(start).floor(frequency),
        pd.Timestamp(end).floor(frequency),
        freq=frequency,
        name="time",
    )
    if not buckets:
        return pd.DataFrame(0, index=index, columns=list(counters), dtype="int64")
    frame = pd.DataFrame.from_records(list(buckets))
    frame.index = pd.DatetimeIndex(
        pd.to_datetime(frame["sk"], format=RESOLUTIONS[resolution], utc=True), name="time"
    )
    frame = frame.reindex(columns=list(counters)).reindex(index)
    return frame.fillna(0).astype("int64")


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def traffic_frame(series: pd.DataFrame) -> pd.DataFrame:
    """Requests, cache-hit rate (NaN without requests) and decisions per bucket."""
    requests = series["requests"]
    frame = pd.DataFrame({"requests": requests, "cache_hits": series["cache_hits"]})
    frame["cache_hit_rate"] = series["cache_hits"] / requests.where(requests > 0)
    for decision in DECISIONS:
        frame[decision] = series[f"decision_{decision}"]
    return frame


def latency_counts(counters: Mapping) -> list[int]:
    return histogram(counters, "lat", LATENCY_BINS)


def latency_percentiles(counters: Mapping) -> dict[str, float | None]:
    """p50, p95 and p99 (ms) of the latency histogram in ``counters``; None when empty."""
    counts = latency_counts(counters)
    return {f"p{q}": percentile_from_histogram(counts, q) for q in PERCENTILES}


def latency_frame(series: pd.DataFrame) -> pd.DataFrame:
    """p50/p95/p99 per bucket (NaN for buckets without requests)."""
    columns = [f"lat_{i:02d}" for i in range(LATENCY_BINS)]
    counts = series[columns].to_numpy()
    rows = [
        [
            np.nan if p is None else p
            for p in (percentile_from_histogram(row, q) for q in PERCENTILES)
        ]
        for row in counts.tolist()
    ]
    return pd.DataFrame(rows, index=series.index, columns=[f"p{q}" for q in PERCENTILES])


def positive_rate_frame(series: pd.DataFrame) -> pd.DataFrame:
    """Share of requests flagged per label, per bucket (NaN without requests)."""
    requests = series["requests"].where(series["requests"] > 0)
    return pd.DataFrame({label: series[f"pos_{label}"] / requests for label in LABELS})


def drift_status(value: float, watch: float, alert: float) -> DriftStatus:
    """PSI bands: below ``watch`` stable, from ``watch`` watch, from ``alert`` alert."""
    if value >= alert:
        return "alert"
    return "watch" if value >= watch else "ok"


def score_shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def reference_usable(model: ModelRecord | None) -> bool:
    """A reference with the same 20 score bins as the live histograms."""
    if model is None or not model.has_reference or model.histogram_bins is None:
        return False
    return len(model.histogram_bins) == len(SCORE_BIN_EDGES) and np.allclose(
        model.histogram_bins, SCORE_BIN_EDGES
    )


def drift_table(
    totals: Mapping[str, int],
    model: ModelRecord,
    watch: float,
    alert: float,
    min_requests: int,
) -> pd.DataFrame:
    """Per label: predicted positive rate now vs reference, PSI and Jensen-Shannon of the
    score distribution against the reference, the PSI band, and whether the requests behind
    it are too few for the statistic to mean much."""
    requests = int(totals.get("requests", 0))
    rows = []
    for label in LABELS:
        current = histogram(totals, f"h_{label}", SCORE_BINS)
        reference = model.reference_score_histograms[label]
        value = psi(reference, current) if requests else None
        rows.append(
            {
                "label": label,
                "positive_rate": ratio(totals.get(f"pos_{label}", 0), requests),
                "reference_rate": (model.reference_positive_rate or {}).get(label),
                "psi": value,
                "js": jensen_shannon(reference, current) if requests else None,
                "status": drift_status(value, watch, alert) if value is not None else None,
                "requests": requests,
                "too_few": requests < min_requests,
            }
        )
    return pd.DataFrame(rows)


def score_distribution_frame(totals: Mapping[str, int], model: ModelRecord) -> pd.DataFrame:
    """Tidy shares per label and score bin, ``now`` (the range) and ``reference``."""
    rows = []
    for label in LABELS:
        sources = {
            "now": histogram(totals, f"h_{label}", SCORE_BINS),
            "reference": model.reference_score_histograms[label],
        }
        for source, counts in sources.items():
            for index, share in enumerate(score_shares(counts)):
                rows.append(
                    {
                        "label": label,
                        "bin": SCORE_BIN_EDGES[index],
                        "share": share,
                        "source": source,
                    }
                )
    return pd.DataFrame(rows)


def precision_recall_f1(
    tp: int, fp: int, fn: int
) -> tuple[float | None, float | None, float | None]:
    """Precision, recall and F1; None where the denominator is zero (nothing predicted,
    nothing actually positive), F1 0 when both are defined and zero."""
    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    if precision is None or recall is None:
        return precision, recall, None
    return precision, recall, (2 * precision * recall / (precision + recall) if tp else 0.0)


@dataclass(frozen=True)
class Rate:
    """A share with the number of items behind it, and whether that is too few to trust."""

    value: float | None
    n: int
    too_few: bool


def rate(hits: int, misses: int, min_n: int) -> Rate:
    n = int(hits) + int(misses)
    return Rate(ratio(hits, n), n, n < min_n)


def accuracy(totals: Mapping[str, int], min_labelled: int) -> Rate:
    """Share of feedback that says the model was right."""
    return rate(totals.get("fb_correct", 0), totals.get("fb_incorrect", 0), min_labelled)


def moderator_agreement(totals: Mapping[str, int], min_labelled: int) -> Rate:
    """Share of review decisions in which the moderator agreed with the model."""
    return rate(totals.get("moderator_agree", 0), totals.get("moderator_disagree", 0), min_labelled)


def label_quality_table(totals: Mapping[str, int], min_labelled: int) -> pd.DataFrame:
    """Per label precision, recall and F1 from the feedback that carried true labels, with
    ``labelled`` (items behind the figures), ``positives`` (truly positive among them) and
    ``too_few`` when ``labelled`` is under ``min_labelled``."""
    labelled = int(totals.get("labelled", 0))
    rows = []
    for label in LABELS:
        tp, fp, fn = (int(totals.get(f"{cell}_{label}", 0)) for cell in ("tp", "fp", "fn"))
        precision, recall, f1 = precision_recall_f1(tp, fp, fn)
        rows.append(
            {
                "label": label,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "labelled": labelled,
                "positives": tp + fn,
                "too_few": labelled < min_labelled,
            }
        )
    return pd.DataFrame(rows)


def pooled(series: pd.DataFrame, periods: int) -> pd.DataFrame:
    """Consecutive buckets summed into at most ``periods`` rows (indexed by the first
    bucket of each): labelled items are sparse, a figure per minute would be noise."""
    if series.empty:
        return series
    size = -(-len(series) // periods)  # ceiling division
    groups = np.arange(len(series)) // size
    frame = series.groupby(groups).sum()
    frame.index = series.index[::size]
    return frame


def accuracy_frame(series: pd.DataFrame, periods: int, min_labelled: int) -> pd.DataFrame:
    """Accuracy and per-label F1 over time (pooled), each with its item count and flag."""
    rows = []
    for moment, counters in pooled(series, periods).iterrows():
        row = {"time": moment}
        overall = accuracy(counters, min_labelled)
        row |= {"accuracy": overall.value, "feedback": overall.n, "too_few": overall.too_few}
        row["labelled"] = int(counters["labelled"])
        for label in LABELS:
            _, _, f1 = precision_recall_f1(
                *(int(counters[f"{cell}_{label}"]) for cell in ("tp", "fp", "fn"))
            )
            row[f"f1_{label}"] = f1
        rows.append(row)
    return pd.DataFrame(rows).set_index("time") if rows else pd.DataFrame()


def queue_depth_frame(series: pd.DataFrame, depth_at_end: int) -> pd.Series:
    """Review-queue depth at the end of each bucket, counted back from the depth at the end
    of the last one: depth_i = depth_end - (net inflow after bucket i)."""
    net = pd.Series(
        [review_queue_change(row) for row in series[["review_in", "review_out", "review_removed"]]
         .to_dict("records")],
        index=series.index,
        dtype="int64",
    )  # fmt: skip
    return (depth_at_end - (net.sum() - net.cumsum())).rename("depth")


def newest_data_time(series: pd.DataFrame) -> datetime | None:
    """Start of the newest bucket with anything counted in it; None for an empty range."""
    active = series[list(ACTIVITY)].sum(axis=1) > 0
    if not active.any():
        return None
    return series.index[active.to_numpy()][-1].to_pydatetime().astimezone(UTC)
