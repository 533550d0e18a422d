"""The dashboard's maths against hand-computed values: percentiles from histograms, PSI and
Jensen-Shannon with their bands, precision/recall/F1 with the small-n flag, the review queue
derived from counters, resolution choice, hour alignment and exact range reads, what the
24-hour view reads, and empty input."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from dashboard import metrics
from dashboard.queries import (
    TimeRange,
    align,
    choose_resolution,
    covered_by_buckets,
    exact_segments,
    load_dashboard,
    reference_model,
)
from dashboard.settings import DashboardSettings
from moderation.buckets import (
    LATENCY_BIN_EDGES,
    SCORE_BIN_EDGES,
    all_counters,
    feedback_counters,
    removal_counters,
    review_queue_change,
)
from moderation.labels import LABELS
from moderation.stores.aggregates import ModelRecord
from tests.fakes import feedback_record, prediction_record

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def bucket(moment: datetime, **counts: int) -> dict:
    return {"sk": moment.strftime("%Y-%m-%dT%H:%M"), **counts}


def series(buckets: list[dict], start: datetime = T0, minutes: int = 4) -> pd.DataFrame:
    return metrics.series_frame(
        buckets, all_counters(), "minute", start, start + MIN * (minutes - 1)
    )


def model(histograms: dict[str, list[int]], rates: dict[str, float] | None = None) -> ModelRecord:
    return ModelRecord(
        version="v1",
        reference_status="recorded",
        reference_score_histograms=histograms,
        reference_positive_rate=rates or dict.fromkeys(LABELS, 0.1),
        histogram_bins=list(SCORE_BIN_EDGES),
        first_seen=T0,
    )


def test_latency_percentiles_come_from_the_histogram_and_are_none_when_empty():
    # GIVEN 50 requests in [1, 1.33) ms and 50 in [10, 13.3) ms
    totals = {"lat_08": 50, "lat_16": 50}
    # WHEN the percentiles are read   THEN p50 is the top of the first bin, p99 inside the second
    p = metrics.latency_percentiles(totals)
    assert p["p50"] == pytest.approx(10 ** (1 / 8))
    assert p["p99"] == pytest.approx(10 * 10 ** (0.98 / 8))
    assert LATENCY_BIN_EDGES[16] <= p["p95"] <= LATENCY_BIN_EDGES[17]
    assert metrics.latency_percentiles({}) == {"p50": None, "p95": None, "p99": None}


def test_latency_frame_is_blank_for_minutes_without_requests():
    frame = metrics.latency_frame(series([bucket(T0, requests=1, lat_08=1)]))
    assert frame.loc[T0, "p50"] == pytest.approx(10 ** (0.5 / 8))
    assert frame.iloc[1:].isna().all().all() and len(frame) == 4


def test_psi_and_js_per_label_with_watch_and_alert_bands():
    # GIVEN a reference with half the scores in bin 0 and half in bin 19 for every label
    reference = dict.fromkeys(LABELS, [50] + [0] * 18 + [50])
    totals = dict.fromkeys(all_counters(), 0) | {"requests": 100, "pos_toxic": 20}
    totals |= {f"h_{label}_00": 50 for label in LABELS} | {f"h_{label}_19": 50 for label in LABELS}
    # ... and now toxic scores shifted to 80 / 20
    totals |= {"h_toxic_00": 80, "h_toxic_19": 20}
    # WHEN the drift table is built
    table = metrics.drift_table(totals, model(reference), 0.1, 0.25, 200).set_index("label")
    # THEN toxic's PSI is the hand-computed 0.4159 (alert) and JS matches; the rest are stable
    expected = 0.3 * math.log(0.8 / 0.5) - 0.3 * math.log(0.2 / 0.5)
    assert table.loc["toxic", "psi"] == pytest.approx(expected)
    kl = lambda p, m: sum(pi * math.log2(pi / mi) for pi, mi in zip(p, m, strict=True))  # noqa: E731
    assert table.loc["toxic", "js"] == pytest.approx(
        (kl([0.5, 0.5], [0.65, 0.35]) + kl([0.8, 0.2], [0.65, 0.35])) / 2
    )
    assert table.loc["toxic", "status"] == "alert" and table.loc["insult", "status"] == "ok"
    assert table.loc["insult", "psi"] == pytest.approx(0)
    assert table.loc["toxic", "positive_rate"] == pytest.approx(0.2)
    # 100 requests is under the 200 asked for: flagged as noisy
    assert table["too_few"].all()


@pytest.mark.parametrize(
    ("value", "status"), [(0.0, "ok"), (0.0999, "ok"), (0.1, "watch"), (0.2499, "watch"),
                          (0.25, "alert"), (3.0, "alert")],
)  # fmt: skip
def test_drift_bands(value, status):
    assert metrics.drift_status(value, watch=0.1, alert=0.25) == status


def test_precision_recall_f1_by_hand_and_undefined_cases():
    # 6 true positives, 2 false positives, 4 false negatives
    precision, recall, f1 = metrics.precision_recall_f1(6, 2, 4)
    assert (precision, recall) == (0.75, 0.6)
    assert f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)  # 0.6667
    assert metrics.precision_recall_f1(0, 0, 3) == (None, 0.0, None)  # nothing predicted
    assert metrics.precision_recall_f1(0, 2, 3) == (0.0, 0.0, 0.0)


def test_label_quality_flags_figures_resting_on_too_few_labelled_items():
    totals = {"labelled": 12, "tp_toxic": 6, "fp_toxic": 2, "fn_toxic": 4, "tn_toxic": 0}
    table = metrics.label_quality_table(totals, min_labelled=30).set_index("label")
    assert table.loc["toxic", "precision"] == 0.75 and table.loc["toxic", "positives"] == 10
    assert table["too_few"].all() and (table["labelled"] == 12).all()
    assert not metrics.label_quality_table(totals, min_labelled=12)["too_few"].any()


def test_accuracy_and_agreement_carry_their_n():
    totals = {"fb_correct": 27, "fb_incorrect": 3, "moderator_agree": 4, "moderator_disagree": 1}
    assert metrics.accuracy(totals, 30) == metrics.Rate(0.9, 30, False)
    assert metrics.moderator_agreement(totals, 30) == metrics.Rate(0.8, 5, True)
    assert metrics.accuracy({}, 30) == metrics.Rate(None, 0, True)


def test_accuracy_over_time_pools_minutes_into_periods():
    frame = series(
        [bucket(T0, fb_correct=1, labelled=1, tp_toxic=1),
         bucket(T0 + MIN, fb_incorrect=1, labelled=1, fp_toxic=1),
         bucket(T0 + 3 * MIN, fb_correct=2)],
    )  # fmt: skip
    pooled = metrics.accuracy_frame(frame, periods=2, min_labelled=30)
    assert list(pooled.index) == [T0, T0 + 2 * MIN]
    assert list(pooled["accuracy"]) == [0.5, 1.0] and list(pooled["feedback"]) == [2, 2]
    assert pooled["f1_toxic"].iloc[0] == pytest.approx(2 / 3)  # tp 1, fp 1, fn 0


def test_review_queue_depth_is_counted_back_from_the_depth_at_the_end():
    # GIVEN 3 in, then 1 decided, then 1 expired: net +3, -1, 0, -1; 4 pending at the end
    frame = series(
        [bucket(T0, review_in=3), bucket(T0 + MIN, review_out=1),
         bucket(T0 + 3 * MIN, review_removed=1)],
    )  # fmt: skip
    depth = metrics.queue_depth_frame(frame, depth_at_end=4)
    # THEN it was 3 before the range, and 6, 5, 5, 4 at the end of each minute
    assert list(depth) == [6, 5, 5, 4]


def test_removal_counts_pending_reviews_and_takes_back_undone_decisions():
    assert removal_counters(prediction_record(review_status="pending")) == {"review_removed": 1}
    assert removal_counters(prediction_record(review_status="decided")) == {}
    assert removal_counters(prediction_record(review_status=None)) == {}
    assert removal_counters(None) == {}
    # an undo deletes the moderator's feedback: exactly what its insert added is taken back
    undone = feedback_record(source="moderator", correct=False, true_labels=[])
    assert removal_counters(undone) == {k: -v for k, v in feedback_counters(undone).items()}
    assert removal_counters(undone)["review_out"] == -1
    assert review_queue_change({"review_in": 5, "review_out": 2, "review_removed": 1}) == 2


def test_traffic_rates_and_positive_rates_per_minute():
    frame = series([bucket(T0, requests=4, cache_hits=1, decision_block=1, pos_toxic=2)])
    traffic = metrics.traffic_frame(frame)
    assert traffic.loc[T0, "cache_hit_rate"] == 0.25 and traffic.loc[T0, "block"] == 1
    assert np.isnan(traffic["cache_hit_rate"].iloc[1])  # no requests: no rate, not 0
    assert metrics.positive_rate_frame(frame).loc[T0, "toxic"] == 0.5


def test_score_distribution_shares_sum_to_one_per_label_and_source():
    histograms = dict.fromkeys(LABELS, [3] + [0] * 18 + [1])
    totals = {"h_toxic_00": 1, "h_toxic_19": 1}
    shares = metrics.score_distribution_frame(totals, model(histograms))
    sums = shares.groupby(["label", "source"])["share"].sum()
    assert sums[("toxic", "now")] == pytest.approx(1) and sums[("toxic", "reference")] == 1
    assert sums[("insult", "now")] == 0  # nothing counted: no shares, no division by zero
    toxic_reference = shares[(shares.label == "toxic") & (shares.source == "reference")]
    assert toxic_reference["share"].iloc[0] == 0.75


def test_empty_input_gives_empty_figures_not_errors():
    frame = series([], minutes=3)
    assert len(frame) == 3 and frame.to_numpy().sum() == 0
    assert metrics.newest_data_time(frame) is None
    assert metrics.latency_frame(frame).isna().all().all()
    assert metrics.accuracy_frame(frame.iloc[0:0], 24, 30).empty
    assert list(metrics.queue_depth_frame(frame, 0)) == [0, 0, 0]


def test_newest_data_time_is_the_last_bucket_with_activity():
    frame = series([bucket(T0, requests=1), bucket(T0 + 2 * MIN, feedback=1)])
    assert metrics.newest_data_time(frame) == T0 + 2 * MIN


def test_resolution_is_minutes_up_to_a_day_then_hours():
    now = T0 + timedelta(hours=5, minutes=17)
    day = timedelta(hours=24)
    assert choose_resolution(TimeRange.last(timedelta(hours=1), now), day) == "minute"
    assert choose_resolution(TimeRange.last(day, now), day) == "minute"
    assert choose_resolution(TimeRange.last(day + MIN, now), day) == "hour"
    assert choose_resolution(TimeRange.last(timedelta(days=7), now), day) == "hour"
    last_day = TimeRange.last(day, now)
    assert last_day.duration == day and last_day.end == now


def test_the_default_draws_up_to_six_hours_per_minute_and_a_day_per_hour():
    now = T0 + timedelta(hours=5, minutes=17)
    minute_max = timedelta(hours=DashboardSettings().minute_resolution_max_hours)
    assert minute_max == timedelta(hours=6)
    assert choose_resolution(TimeRange.last(timedelta(hours=6), now), minute_max) == "minute"
    assert choose_resolution(TimeRange.last(timedelta(hours=24), now), minute_max) == "hour"


def test_an_hourly_range_starts_at_the_top_of_its_first_hour():
    now = T0 + timedelta(minutes=17)  # 10:17
    day = align(TimeRange.last(timedelta(hours=24), now), "hour")
    assert day.start == T0 - timedelta(hours=24) and day.end == now  # 10:00 the day before
    # its 25 hour buckets hold exactly what happened in it: the last one only up to now
    assert covered_by_buckets(day, "hour", now)
    # a past range ending inside an hour is not covered by that hour's bucket
    past = TimeRange.of(T0 - timedelta(hours=30), T0 - timedelta(hours=3, minutes=30))
    assert not covered_by_buckets(align(past, "hour"), "hour", now)
    minutes = TimeRange.last(timedelta(hours=1), now)
    assert align(minutes, "minute") == minutes and covered_by_buckets(minutes, "minute", now)


class RecordingStore:
    """An aggregate store over fixed buckets that records every read the page makes."""

    def __init__(self, buckets: dict[str, list[dict]]) -> None:
        self.buckets, self.reads = buckets, []

    def read(self, resolution, version, start, end, counters=None):  # noqa: ANN001, ANN201
        self.reads.append((resolution, start, end, counters))
        fmt = "%Y-%m-%dT%H:%M" if resolution == "minute" else "%Y-%m-%dT%H"
        low, high = start.strftime(fmt), end.strftime(fmt)
        return [b for b in self.buckets[resolution] if low <= b["sk"] <= high], 1

    def lifetime(self, version, counters):  # noqa: ANN001, ANN201
        self.reads.append(("lifetime", None, None, tuple(counters)))
        return dict.fromkeys(counters, 0) | {"review_in": 3}

    def models(self):  # noqa: ANN201
        return []


def test_the_24_hour_view_reads_its_hour_buckets_once_and_sums_them():
    # GIVEN requests in three hours of the last day (the oldest in its first, partial hour)
    now = T0 + timedelta(minutes=17)
    hours = [T0 - timedelta(hours=24), T0 - timedelta(hours=5), T0]
    buckets = {
        "hour": [dict.fromkeys(all_counters(), 0) | {"sk": f"{h:%Y-%m-%dT%H}", "requests": 2}
                 for h in hours],
        "minute": [],
    }  # fmt: skip
    store = RecordingStore(buckets)
    # WHEN the page loads the last 24 hours with the default settings
    minute_max = timedelta(hours=DashboardSettings().minute_resolution_max_hours)
    data = load_dashboard(store, "ALL", TimeRange.last(timedelta(hours=24), now), minute_max, now)
    # THEN 25 hour buckets are drawn, the totals are their sums, and nothing else is read but
    # the lifetime counters of the queue
    assert data.resolution == "hour" and len(data.series) == 25
    assert data.totals["requests"] == 6 and data.queue_depth_end == 3
    assert [read[0] for read in store.reads] == ["hour", "lifetime"]
    assert store.reads[0][3] is None  # whole buckets


def test_exact_segments_read_whole_hours_as_hours_and_the_ends_as_minutes():
    # 09:45 .. 12:14 inclusive: 15 minutes, hours 10 and 11, then 15 minutes
    span = TimeRange.of(T0 - 15 * MIN, T0 + timedelta(hours=2, minutes=14))
    assert exact_segments(span) == [
        ("minute", T0 - 15 * MIN, T0 - MIN),
        ("hour", T0, T0 + timedelta(hours=1)),
        ("minute", T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=14)),
    ]
    # aligned on hours: hour buckets only; under an hour: minute buckets only
    assert exact_segments(TimeRange.of(T0, T0 + 59 * MIN)) == [("hour", T0, T0)]
    inside = TimeRange.of(T0 + 5 * MIN, T0 + 50 * MIN)
    assert exact_segments(inside) == [("minute", inside.start, inside.end)]
    # a last-day range costs at most 24 hour buckets and 118 minute buckets
    day = TimeRange.last(timedelta(hours=24), T0 + timedelta(minutes=17))
    minutes = sum(
        (end - start) // MIN + 1 for resolution, start, end in exact_segments(day)
        if resolution == "minute"
    )  # fmt: skip
    assert minutes == 60 and len(exact_segments(day)) == 3


def test_drift_reference_for_all_versions_is_the_newest_model_with_one():
    older = model(dict.fromkeys(LABELS, [1] * 20))
    newer = older.model_copy(update={"version": "v2", "first_seen": T0 + MIN})
    bare = ModelRecord(version="unregistered", reference_status="none", first_seen=T0 + 2 * MIN)
    models = {m.version: m for m in (older, newer, bare)}
    assert reference_model(models, "ALL").version == "v2"
    assert reference_model(models, "v1").version == "v1"
    assert not metrics.reference_usable(reference_model(models, "unregistered"))
    assert metrics.reference_usable(older)
