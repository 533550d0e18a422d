"""What the dashboard reads from the aggregate table, and nothing else: buckets for a time
range (minute or hour), exact totals over it, lifetime counters for the review queue, and the
model records with their drift references.

Resolution by range, as monitoring tools choose it: minute buckets up to
``DASHBOARD_MINUTE_RESOLUTION_MAX_HOURS`` (6 h: 360 points), hour buckets beyond. An hourly
range is aligned to whole hours (it starts at the top of its first hour, as its first bucket
does), so the buckets drawn cover the range exactly and their sums are its totals.

Reads per page, whatever the traffic: the series (one bucket per minute or hour of the range,
every counter: the drift figures need the score histograms summed over the range), one
lifetime read for the review queue, and the model partition. The 24-hour view reads 25 hour
buckets. Only a range that ends inside a past hour needs more (its ragged end as minute
buckets, see ``exact_segments``).

Whole buckets are read, no ProjectionExpression: DynamoDB bills the whole item either way, and
moto (the local stack) projects by converting the whole item once per projected attribute:
re-measured with the local stack's response patch, 360 minute buckets took 2.5 s whole and
32 s projected to the 76 counters the charts draw per bucket. Projections are kept for reads
of a few attributes (queue counters, version names), where they are much cheaper.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import pandas as pd

from dashboard.metrics import series_frame
from moderation.buckets import ALL_VERSIONS, POLICY_DIMENSION_PREFIX, all_counters
from moderation.stores.aggregates import AggregateStore, ModelRecord

logger = logging.getLogger(__name__)

Resolution = Literal["minute", "hour"]
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

QUEUE_COUNTERS: tuple[str, ...] = ("review_in", "review_out", "review_removed")


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def floor_hour(moment: datetime) -> datetime:
    return floor_minute(moment).replace(minute=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == floor_minute(moment) else floored + HOUR


@dataclass(frozen=True)
class TimeRange:
    """Whole minutes, UTC, both ends included: ``end`` is the last minute shown."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: datetime, end: datetime) -> "TimeRange":
        start, end = floor_minute(start), floor_minute(end)
        if end < start:
            raise ValueError("the range ends before it starts")
        return cls(start, end)

    @classmethod
    def last(cls, duration: timedelta, now: datetime) -> "TimeRange":
        """The ``duration`` up to and including the current minute."""
        end = floor_minute(now)
        return cls(end - duration + MINUTE, end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start + MINUTE


def choose_resolution(time_range: TimeRange, minute_max: timedelta) -> Resolution:
    """Minute buckets up to ``minute_max`` (6 h: 360 points), hour buckets beyond."""
    return "minute" if time_range.duration <= minute_max else "hour"


def align(time_range: TimeRange, resolution: Resolution) -> TimeRange:
    """The range starting where its first bucket starts (hourly: the top of the hour)."""
    if resolution == "minute":
        return time_range
    return TimeRange(floor_hour(time_range.start), time_range.end)


def covered_by_buckets(time_range: TimeRange, resolution: Resolution, now: datetime) -> bool:
    """Whether the range's buckets hold exactly what happened in it: it starts at a bucket
    start and ends at a bucket end, or at the current minute (nothing is counted later)."""
    if resolution == "minute":
        return True
    ends_hour = time_range.end.minute == 59
    return time_range.start == floor_hour(time_range.start) and (
        ends_hour or time_range.end >= floor_minute(now)
    )


def exact_segments(time_range: TimeRange) -> list[tuple[Resolution, datetime, datetime]]:
    """The range as whole hours (hour buckets) plus the minutes before the first and after the
    last whole hour (minute buckets): sums over them are exact, at a fraction of the reads."""
    start, stop = time_range.start, time_range.end + MINUTE  # [start, stop)
    first_hour, last_hour = ceil_hour(start), floor_hour(stop)
    if first_hour >= last_hour:
        return [("minute", start, time_range.end)]
    segments: list[tuple[Resolution, datetime, datetime]] = []
    if start < first_hour:
        segments.append(("minute", start, first_hour - MINUTE))
    segments.append(("hour", first_hour, last_hour - HOUR))
    if last_hour < stop:
        segments.append(("minute", last_hour, time_range.end))
    return segments


def read_totals(
    store: AggregateStore,
    version: str,
    time_range: TimeRange,
    counters: tuple[str, ...] = all_counters(),
) -> dict[str, int]:
    """Each counter summed over the range, exactly (see ``exact_segments``)."""
    totals = dict.fromkeys(counters, 0)
    projection = None if set(counters) == set(all_counters()) else counters  # all: no list
    for resolution, start, end in exact_segments(time_range):
        buckets, _ = store.read(resolution, version, start, end, projection)
        for bucket in buckets:
            for name in counters:
                totals[name] += int(bucket.get(name, 0))
    return totals


def read_series(
    store: AggregateStore, version: str, time_range: TimeRange, resolution: Resolution
) -> pd.DataFrame:
    """One row per bucket of the range (empty buckets as zeros), one column per counter."""
    buckets, _ = store.read(resolution, version, time_range.start, time_range.end)
    return series_frame(buckets, all_counters(), resolution, time_range.start, time_range.end)


def queue_depth_at(store: AggregateStore, version: str, moment: datetime, now: datetime) -> int:
    """Review-queue depth at the end of the minute ``moment``: the lifetime net inflow, less
    what came in and went out after it. Exact when no record is counted between the reads;
    a record counted meanwhile shows on the next refresh."""
    lifetime = store.lifetime(version, QUEUE_COUNTERS)
    depth = lifetime["review_in"] - lifetime["review_out"] - lifetime["review_removed"]
    after = floor_minute(moment) + MINUTE
    if after <= floor_minute(now):
        later = read_totals(store, version, TimeRange.of(after, now), QUEUE_COUNTERS)
        depth -= later["review_in"] - later["review_out"] - later["review_removed"]
    return depth


def reference_model(models: dict[str, ModelRecord], version: str) -> ModelRecord | None:
    """The model whose bundle reference drift is measured against: the chosen version's, or
    for ALL (and for a policy's buckets, which span versions) the newest version (first seen
    last) that has one."""
    if version != ALL_VERSIONS and not version.startswith(POLICY_DIMENSION_PREFIX):
        return models.get(version)
    with_reference = [m for m in models.values() if m.has_reference]
    return max(with_reference, key=lambda m: m.first_seen, default=None)


@dataclass
class DashboardData:
    """Everything one page draws, for one version and range."""

    version: str
    time_range: TimeRange
    resolution: Resolution
    series: pd.DataFrame
    totals: dict[str, int]
    queue_depth_end: int
    models: dict[str, ModelRecord] = field(default_factory=dict)
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def reference(self) -> ModelRecord | None:
        return reference_model(self.models, self.version)

    @property
    def empty(self) -> bool:
        """Nothing was counted in the range (no prediction, feedback or queue change)."""
        activity = ("requests", "feedback", "review_removed")
        return not any(self.totals.get(name, 0) for name in activity)


def load_dashboard(
    store: AggregateStore,
    version: str,
    time_range: TimeRange,
    minute_max: timedelta,
    now: datetime | None = None,
) -> DashboardData:
    """Every read one page needs (see the module doc for what that costs)."""
    now = now or datetime.now(UTC)
    resolution = choose_resolution(time_range, minute_max)
    time_range = align(time_range, resolution)
    series = read_series(store, version, time_range, resolution)
    # the queue depth at the end of the last bucket drawn (an hour bucket may outrun the range)
    last_bucket_end = (
        time_range.end if resolution == "minute" else floor_hour(time_range.end) + HOUR - MINUTE
    )
    data = DashboardData(
        version=version,
        time_range=time_range,
        resolution=resolution,
        series=series,
        # when the buckets cover the range exactly, their sums are its totals: no second read
        totals=(
            {name: int(total) for name, total in series.sum().items()}
            if covered_by_buckets(time_range, resolution, now)
            else read_totals(store, version, time_range)
        ),
        queue_depth_end=queue_depth_at(store, version, last_bucket_end, now),
        models={m.version: m for m in store.models()},
        read_at=now,
    )
    logger.info(
        "dashboard data: version %s, %s to %s per %s, %d buckets",
        version, time_range.start, time_range.end, resolution, len(series),
    )  # fmt: skip
    return data
