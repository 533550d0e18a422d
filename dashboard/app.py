"""Monitoring dashboard entry point: ``streamlit run dashboard/app.py``.

Reads the aggregate table only (read-only access is enough). Controls live in the sidebar;
the page body is a fragment that re-runs every ``DASHBOARD_REFRESH_SECONDS``.
"""

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from dashboard import views
from dashboard.queries import MINUTE, DashboardData, TimeRange, load_dashboard
from dashboard.settings import get_dashboard_settings
from moderation.buckets import ALL_VERSIONS, policy_dimension
from moderation.errors import StoreUnavailable
from moderation.settings import get_settings
from moderation.stores.aggregates import AggregateStore

RANGES = {
    "Last hour": timedelta(hours=1),
    "Last day": timedelta(days=1),
    "Last week": timedelta(days=7),
    "Custom": None,
}

st.set_page_config(
    page_title="Moderation monitoring", page_icon=":material/monitoring:", layout="wide"
)
settings = get_dashboard_settings()


@st.cache_resource
def aggregate_store() -> AggregateStore:
    return AggregateStore(get_settings().aggregates_table)


@st.cache_data(ttl=settings.refresh_seconds, show_spinner=False)
def model_versions() -> list[str]:
    return aggregate_store().versions()


@st.cache_data(ttl=settings.refresh_seconds, show_spinner=False)
def policy_ids() -> list[str]:
    return aggregate_store().policies()


def policies_or_none() -> list[str]:
    try:
        return policy_ids()
    except StoreUnavailable:
        return []


def versions_or_none() -> list[str]:
    """The filter's versions; none (only "All versions") while the table cannot be read."""
    try:
        return model_versions()
    except StoreUnavailable:
        return []


@st.cache_data(ttl=settings.refresh_seconds, show_spinner="Reading the aggregates…")
def dashboard_data(version: str, time_range: TimeRange) -> DashboardData:
    minute_max = timedelta(hours=settings.minute_resolution_max_hours)
    return load_dashboard(aggregate_store(), version, time_range, minute_max)


def custom_range(today: date) -> TimeRange | None:
    picked = st.sidebar.date_input(
        "Dates (UTC)",
        value=(today - timedelta(days=1), today),
        max_value=today,
        key="custom_dates",
    )
    if not isinstance(picked, tuple | list) or len(picked) != 2:
        st.sidebar.info("Pick the last day of the range.")
        return None
    first, last = picked
    if (last - first).days + 1 > settings.max_range_days:
        st.sidebar.error(f"Ranges are limited to {settings.max_range_days} days.")
        return None
    start = datetime.combine(first, time.min, UTC)
    return TimeRange.of(start, datetime.combine(last, time.max, UTC).replace(second=0))


st.sidebar.title("Moderation monitoring")
choice = st.sidebar.radio("Time range", list(RANGES), index=1, key="range")
version = st.sidebar.selectbox(
    "Model version",
    [ALL_VERSIONS, *versions_or_none()],
    format_func=lambda v: "All versions" if v == ALL_VERSIONS else v,
    key="version",
)
ALL_POLICIES = ""
policy = st.sidebar.selectbox(
    "Policy",
    [ALL_POLICIES, *policies_or_none()],
    format_func=lambda p: "All traffic" if p == ALL_POLICIES else p,
    key="policy",
    help="A policy's figures count the predictions made under it, across every model version.",
)
# the aggregates keep a policy's buckets beside the versions' (one dimension at a time)
dimension = policy_dimension(policy) if policy != ALL_POLICIES else version
auto_refresh = st.sidebar.toggle(
    f"Auto-refresh every {settings.refresh_seconds} s", value=True, key="auto_refresh"
)
custom = custom_range(datetime.now(UTC).date()) if RANGES[choice] is None else None


@st.fragment(run_every=settings.refresh_seconds if auto_refresh else None)
def body() -> None:
    duration = RANGES[choice]
    time_range = TimeRange.last(duration, datetime.now(UTC)) if duration else custom
    if time_range is None:
        return
    if time_range.end > datetime.now(UTC) + MINUTE:  # a custom range ending today
        time_range = TimeRange.of(time_range.start, datetime.now(UTC))
    try:
        data = dashboard_data(dimension, time_range)
    except StoreUnavailable as exc:
        st.error(f"The aggregate table cannot be read just now ({exc}); retrying on refresh.")
        return
    st.title("Moderation monitoring")
    with st.container(key="section-overview"):
        views.header(data)
        views.headline(data, settings)
    sections = {
        "traffic": lambda: views.traffic(data),
        "latency": lambda: views.latency(data, settings),
        "drift": lambda: views.drift(data, settings),
        "accuracy": lambda: views.accuracy(data, settings),
        "queue": lambda: views.review_queue(data),
    }
    for name, render in sections.items():
        with st.container(key=f"section-{name}"):
            render()


body()
