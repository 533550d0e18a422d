"""The dashboard's sections: each renders figures built by ``dashboard.metrics`` and
``dashboard.charts`` from one ``DashboardData``. Rendering only: no reads, no maths."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard import charts, metrics
from dashboard.queries import DashboardData
from dashboard.settings import DashboardSettings
from moderation.buckets import ALL_VERSIONS, POLICY_DIMENSION_PREFIX

NO_DATA = "no data in this range"
STATUS_BADGES = {"ok": "ok", "watch": "WATCH", "alert": "ALERT", None: "–"}


def _chart(figure, caption: str, key: str) -> None:
    st.plotly_chart(figure, width="stretch", key=key, config={"displayModeBar": False})
    st.caption(caption)


def _percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}%}"


def _when(moment: datetime, resolution: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M" if resolution == "minute" else "%Y-%m-%d %H:00")


def dimension_label(version: str) -> str:
    """What the figures cover: all versions, one version, or one policy (all versions)."""
    if version == ALL_VERSIONS:
        return "all versions"
    if version.startswith(POLICY_DIMENSION_PREFIX):
        return f"policy {version.removeprefix(POLICY_DIMENSION_PREFIX)} (all versions)"
    return version


def header(data: DashboardData) -> None:
    span = data.time_range
    version = dimension_label(data.version)
    newest = metrics.newest_data_time(data.series)
    if newest is None:
        freshness = "no data in this range"
    elif data.resolution == "hour":  # a bucket's start says nothing finer than its hour
        freshness = f"newest data in the hour from {_when(newest, data.resolution)} UTC"
    else:
        age = (data.read_at - newest).total_seconds() / 60
        freshness = f"newest data {_when(newest, data.resolution)} UTC ({age:.0f} min ago)"
    st.caption(
        f"{span.start:%Y-%m-%d %H:%M} to {span.end:%Y-%m-%d %H:%M} UTC, per {data.resolution}"
        f" · {version} · {freshness} · read {data.read_at.astimezone(UTC):%H:%M:%S} UTC"
    )


def headline(data: DashboardData, settings: DashboardSettings) -> None:
    totals = data.totals
    latency = metrics.latency_percentiles(totals)
    overall = metrics.accuracy(totals, settings.min_labelled)
    columns = st.columns(5)
    columns[0].metric("Requests", f"{totals['requests']:,}")
    columns[1].metric(
        "Cache-hit rate", _percent(metrics.ratio(totals["cache_hits"], totals["requests"]))
    )
    p95 = latency["p95"]
    columns[2].metric("p95 latency", "–" if p95 is None else f"{p95:.1f} ms")
    columns[3].metric(
        "Accuracy (feedback)",
        _percent(overall.value),
        f"n={overall.n}" + (" · too few" if overall.n and overall.too_few else ""),
        delta_color="off",
        delta_arrow="off",
    )
    columns[4].metric("Pending review (end)", f"{data.queue_depth_end:,}")


def traffic(data: DashboardData) -> None:
    st.header("Traffic")
    if not data.totals["requests"]:
        st.info(NO_DATA)
        return
    frame = metrics.traffic_frame(data.series)
    _chart(
        charts.requests_figure(frame),
        f"Predictions per {data.resolution} (bars) and the share served from the cache (line).",
        "requests",
    )
    _chart(
        charts.decisions_figure(frame),
        f"Decisions per {data.resolution}, stacked: allow, review (human queue) and block.",
        "decisions",
    )


def latency(data: DashboardData, settings: DashboardSettings) -> None:
    st.header("Latency")
    if not data.totals["requests"]:
        st.info(NO_DATA)
        return
    overall = metrics.latency_percentiles(data.totals)
    st.markdown(
        " · ".join(f"**{name}** {value:.1f} ms" for name, value in overall.items() if value)
        + " over the range"
    )
    _chart(
        charts.latency_figure(metrics.latency_frame(data.series), settings.latency_objective_ms),
        f"API latency p50, p95 and p99 per {data.resolution} from the latency histograms "
        f"(log scale); dashed: the {settings.latency_objective_ms:g} ms objective.",
        "latency",
    )


def drift(data: DashboardData, settings: DashboardSettings) -> None:
    st.header("Target drift")
    if not data.totals["requests"]:
        st.info(NO_DATA)
        return
    model = data.reference
    if not metrics.reference_usable(model):
        name = data.version if data.version != ALL_VERSIONS else "any version in the table"
        note = f" ({model.reference_note})" if model and model.reference_note else ""
        st.warning(f"No bundle reference for {name}{note}: drift cannot be measured.")
        return
    if data.version == ALL_VERSIONS or data.version.startswith(POLICY_DIMENSION_PREFIX):
        st.caption(
            f"All versions against {model.version}'s reference (the newest model with one); "
            "pick a version to compare each model with its own."
        )
    table = metrics.drift_table(
        data.totals, model, settings.psi_watch, settings.psi_alert, settings.min_drift_requests
    )
    flagged = table[table["status"].isin(["watch", "alert"])]
    for row in flagged.itertuples():
        message = f"Drift {row.status}: {row.label} (PSI {row.psi:.3f}, JS {row.js:.3f})"
        (st.error if row.status == "alert" else st.warning)(message)
    if bool(table["too_few"].iloc[0]):
        st.warning(
            f"Only {data.totals['requests']:,} requests in range (under "
            f"{settings.min_drift_requests:,}): the drift statistics are noisy."
        )
    _chart(
        charts.positive_rate_figure(
            metrics.positive_rate_frame(data.series), model.reference_positive_rate
        ),
        f"Share of requests flagged per label per {data.resolution}; dashed: the rate "
        f"{model.version} flagged on real-rate validation comments.",
        "positive-rate",
    )
    _chart(
        charts.score_distribution_figure(metrics.score_distribution_frame(data.totals, model)),
        "Score distribution per label over the range vs the bundle's reference (share per "
        "0.05 bin, log scale).",
        "scores",
    )
    _chart(
        charts.drift_figure(table, settings.psi_watch, settings.psi_alert),
        f"PSI per label, range vs reference: watch from {settings.psi_watch:g}, alert from "
        f"{settings.psi_alert:g}.",
        "psi",
    )
    shown = table.assign(
        status=table["status"].map(STATUS_BADGES),
        positive_rate=table["positive_rate"].map(_percent),
        reference_rate=table["reference_rate"].map(lambda v: _percent(v, 2)),
    )
    st.dataframe(
        shown[["label", "status", "psi", "js", "positive_rate", "reference_rate", "requests"]],
        hide_index=True,
        column_config={
            "psi": st.column_config.NumberColumn("PSI", format="%.3f"),
            "js": st.column_config.NumberColumn("Jensen-Shannon", format="%.3f"),
            "positive_rate": "flagged now",
            "reference_rate": "flagged (reference)",
        },
    )
    st.caption("Drift per label: PSI sets the band; Jensen-Shannon (base 2, 0 to 1) beside it.")


def accuracy(data: DashboardData, settings: DashboardSettings) -> None:
    st.header("Live accuracy")
    totals = data.totals
    if not totals["feedback"]:
        st.info(f"{NO_DATA}: no feedback or review decisions")
        return
    overall = metrics.accuracy(totals, settings.min_labelled)
    agreement = metrics.moderator_agreement(totals, settings.min_labelled)
    left, right = st.columns(2)
    left.metric(
        "Accuracy", _percent(overall.value), f"n={overall.n}", delta_color="off", delta_arrow="off"
    )
    right.metric(
        "Moderator agreement",
        _percent(agreement.value),
        f"n={agreement.n}",
        delta_color="off",
        delta_arrow="off",
    )
    for name, figure in (("accuracy", overall), ("moderator agreement", agreement)):
        if figure.n and figure.too_few:
            st.warning(
                f"{name.capitalize()} rests on {figure.n} items (under {settings.min_labelled}): "
                "too few to trust."
            )
    table = metrics.label_quality_table(totals, settings.min_labelled)
    if bool(table["too_few"].iloc[0]):
        st.warning(
            f"Per-label figures rest on {int(table['labelled'].iloc[0])} labelled items (under "
            f"{settings.min_labelled}): too few to trust."
        )
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "precision": st.column_config.NumberColumn(format="%.2f"),
            "recall": st.column_config.NumberColumn(format="%.2f"),
            "f1": st.column_config.NumberColumn("F1", format="%.2f"),
            "too_few": "too few to trust",
        },
    )
    st.caption(
        "Per-label precision, recall and F1 from feedback that carried the true labels; "
        "labelled: items behind each figure; None: undefined (nothing flagged or positive)."
    )
    frame = metrics.accuracy_frame(data.series, settings.accuracy_periods, settings.min_labelled)
    _chart(
        charts.accuracy_figure(frame),
        "Accuracy and per-label F1 over time, buckets pooled; hover shows the items behind "
        "each point (more labels in the legend).",
        "accuracy",
    )


def review_queue(data: DashboardData) -> None:
    st.header("Review queue")
    if data.empty:
        st.info(NO_DATA)
        return
    depth = metrics.queue_depth_frame(data.series, data.queue_depth_end)
    _chart(
        charts.queue_figure(depth),
        f"Items waiting for a moderator at the end of each {data.resolution} (in: decision "
        "review; out: a moderator's decision or expiry).",
        "queue",
    )
