"""Plotly figures for the dashboard, from the frames ``dashboard.metrics`` builds. No data
access and no Streamlit: each function takes what it draws and returns a figure."""

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from moderation.labels import DECISIONS, LABELS

HEIGHT = 320
#: Below this many points a line gets markers: sparse minutes would otherwise not show.
MARKERS_BELOW = 200
DECISION_COLOURS = {"allow": "#2e7d32", "review": "#f9a825", "block": "#c62828"}
STATUS_COLOURS = {"ok": "#2e7d32", "watch": "#f9a825", "alert": "#c62828", None: "#9e9e9e"}


def _layout(figure: go.Figure, height: int = HEIGHT, **kwargs) -> go.Figure:
    layout = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "legend": {"orientation": "h", "y": 1.12, "x": 0},
        "hovermode": "x unified",
    }
    figure.update_layout(**(layout | kwargs))
    return figure


def requests_figure(traffic: pd.DataFrame) -> go.Figure:
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_bar(x=traffic.index, y=traffic["requests"], name="requests", marker_color="#1565c0")
    figure.add_scatter(
        x=traffic.index,
        y=traffic["cache_hit_rate"],
        name="cache-hit rate",
        mode=_mode(traffic["cache_hit_rate"]),
        line={"color": "#ef6c00"},
        connectgaps=False,
        secondary_y=True,
    )
    figure.update_yaxes(title_text="requests", secondary_y=False, rangemode="tozero")
    figure.update_yaxes(
        title_text="cache-hit rate", secondary_y=True, range=[0, 1], tickformat=".0%"
    )
    return _layout(figure)


def decisions_figure(traffic: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    for decision in DECISIONS:
        figure.add_scatter(
            x=traffic.index,
            y=traffic[decision],
            name=decision,
            mode="lines",
            stackgroup="decisions",
            line={"color": DECISION_COLOURS[decision], "width": 0.5},
        )
    figure.update_yaxes(title_text="requests", rangemode="tozero")
    return _layout(figure)


def latency_figure(latency: pd.DataFrame, objective_ms: float) -> go.Figure:
    figure = go.Figure()
    for column, colour in zip(latency.columns, ("#1565c0", "#ef6c00", "#c62828"), strict=True):
        figure.add_scatter(
            x=latency.index,
            y=latency[column],
            name=column,
            mode=_mode(latency[column]),
            line={"color": colour},
        )
    figure.add_hline(
        y=objective_ms,
        line_dash="dash",
        line_color="#616161",
        annotation_text=f"objective {objective_ms:g} ms",
        annotation_position="top left",
    )
    figure.update_yaxes(title_text="ms", type="log")
    return _layout(figure)


def _mode(values: pd.Series) -> str:
    return "lines+markers" if values.count() < MARKERS_BELOW else "lines"


def _label_grid(**kwargs) -> go.Figure:
    return make_subplots(
        rows=2, cols=3, subplot_titles=LABELS, horizontal_spacing=0.06, vertical_spacing=0.16,
        **kwargs,
    )  # fmt: skip


def _cell(index: int) -> dict[str, int]:
    return {"row": index // 3 + 1, "col": index % 3 + 1}


def positive_rate_figure(rates: pd.DataFrame, reference: Mapping[str, float] | None) -> go.Figure:
    figure = _label_grid()
    for index, label in enumerate(LABELS):
        figure.add_scatter(
            x=rates.index,
            y=rates[label],
            name="now",
            mode=_mode(rates[label]),
            line={"color": "#1565c0"},
            showlegend=index == 0,
            legendgroup="now",
            **_cell(index),
        )
        if reference and label in reference:
            figure.add_scatter(
                x=[rates.index.min(), rates.index.max()],
                y=[reference[label]] * 2,
                name="reference",
                mode="lines",
                line={"color": "#616161", "dash": "dash"},
                showlegend=index == 0,
                legendgroup="reference",
                **_cell(index),
            )
    figure.update_yaxes(tickformat=".1%", rangemode="tozero")
    return _layout(figure, height=460)


def score_distribution_figure(shares: pd.DataFrame) -> go.Figure:
    figure = _label_grid()
    colours = {"now": "#1565c0", "reference": "#9e9e9e"}
    for index, label in enumerate(LABELS):
        for source, colour in colours.items():
            rows = shares[(shares["label"] == label) & (shares["source"] == source)]
            figure.add_bar(
                x=rows["bin"] + 0.025,
                y=rows["share"],
                name=source,
                marker_color=colour,
                showlegend=index == 0,
                legendgroup=source,
                **_cell(index),
            )
    figure.update_xaxes(range=[0, 1], dtick=0.25)
    figure.update_yaxes(type="log", tickformat=".1%")
    return _layout(figure, height=460, barmode="group", hovermode="closest")


def drift_figure(drift: pd.DataFrame, watch: float, alert: float) -> go.Figure:
    figure = go.Figure()
    figure.add_bar(
        x=drift["label"],
        y=drift["psi"],
        name="PSI",
        marker_color=[STATUS_COLOURS[s] for s in drift["status"]],
        text=[f"{v:.3f}" if pd.notna(v) else "" for v in drift["psi"]],
        textposition="outside",
    )
    for value, text in ((watch, "watch"), (alert, "alert")):
        figure.add_hline(
            y=value,
            line_dash="dash",
            line_color=STATUS_COLOURS[text],
            annotation_text=f"{text} {value:g}",
            annotation_position="top left",
        )
    top = max([alert * 1.3, *[v * 1.2 for v in drift["psi"].dropna()]])
    figure.update_yaxes(title_text="PSI", range=[0, top])
    return _layout(figure, height=280, hovermode="closest")


def accuracy_figure(frame: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    figure.add_scatter(
        x=frame.index,
        y=frame["accuracy"],
        name="accuracy",
        mode="lines+markers",
        line={"color": "#000000", "width": 3},
        customdata=frame[["feedback"]],
        hovertemplate="%{y:.1%} (n=%{customdata[0]})",
    )
    for label in LABELS:
        figure.add_scatter(
            x=frame.index,
            y=frame[f"f1_{label}"],
            name=f"F1 {label}",
            mode="lines+markers",
            customdata=frame[["labelled"]],
            hovertemplate="%{y:.2f} (n=%{customdata[0]})",
            visible="legendonly" if label not in ("toxic", "insult") else True,
        )
    figure.update_yaxes(range=[0, 1.05], tickformat=".0%")
    return _layout(figure)


def queue_figure(depth: pd.Series) -> go.Figure:
    figure = go.Figure()
    figure.add_scatter(
        x=depth.index, y=depth, name="pending", mode="lines", line_shape="hv",
        fill="tozeroy", line={"color": "#6a1b9a"},
    )  # fmt: skip
    figure.update_yaxes(title_text="items pending review", rangemode="tozero")
    return _layout(figure, height=260)
