"""Data shaping for the pages: plain functions, no Streamlit, each with its own tests."""

import csv
import html
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from moderation.labels import LABELS, decide

TEXT_COLUMNS = ("comment_text", "text", "comment")
DECISION_COLOURS = {"allow": "green", "review": "orange", "block": "red"}


def effective_thresholds(
    model_thresholds: Mapping[str, float],
    overrides: Mapping[str, float] | None = None,
    global_threshold: float | None = None,
) -> dict[str, float]:
    """The thresholds a moderator is looking at: one global value when set, else the
    per-label sliders, else the model's own."""
    if global_threshold is not None:
        return dict.fromkeys(LABELS, float(global_threshold))
    return {label: float((overrides or {}).get(label, model_thresholds[label])) for label in LABELS}


def apply_thresholds(
    scores: Mapping[str, float],
    thresholds: Mapping[str, float],
    block_thresholds: Mapping[str, float],
) -> tuple[list[str], str]:
    """Labels and decision under new thresholds, without a new request (the API's rule)."""
    return decide(scores, thresholds, block_thresholds)


def highlight(text: str, explanations: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> str:
    """The comment as HTML with the n-grams behind each flagged label marked; every piece of
    the comment is escaped, so a comment can never inject markup into the page."""
    marks: dict[int, set[str]] = {}
    for label, items in (explanations or {}).items():
        for item in items:
            for start, end in item["spans"]:
                for position in range(max(0, start), min(len(text), end)):
                    marks.setdefault(position, set()).add(label)
    pieces: list[str] = []
    position = 0
    while position < len(text):
        labels = marks.get(position)
        end = position + 1
        while end < len(text) and marks.get(end) == labels:
            end += 1
        chunk = html.escape(text[position:end]).replace("\n", "<br>")
        if labels:
            title = html.escape(", ".join(sorted(labels)))
            chunk = f'<mark title="{title}">{chunk}</mark>'
        pieces.append(chunk)
        position = end
    return "".join(pieces)


def scores_figure(scores: Mapping[str, float], thresholds: Mapping[str, float]) -> go.Figure:
    """Six bars, one per label, with each label's threshold drawn across its bar."""
    flagged = [scores[label] >= thresholds[label] for label in LABELS]
    figure = go.Figure(
        [
            go.Bar(
                x=list(LABELS),
                y=[scores[label] for label in LABELS],
                marker_color=["crimson" if hit else "steelblue" for hit in flagged],
                name="score",
                hovertemplate="%{x}: %{y:.3f}<extra></extra>",
            ),
            go.Scatter(
                x=list(LABELS),
                y=[thresholds[label] for label in LABELS],
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 48, "line": {"width": 3}},
                marker_color="black",
                name="threshold",
                hovertemplate="%{x} threshold: %{y:.3f}<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        yaxis={"range": [0, 1], "title": "score"},
        height=320,
        margin={"l": 40, "r": 10, "t": 10, "b": 40},
        legend={"orientation": "h", "y": 1.1},
    )
    return figure


def read_comments_csv(data: bytes, max_rows: int = 10_000) -> list[str]:
    """Comments from an uploaded CSV with a header row: the ``comment_text`` (or ``text``,
    ``comment``) column, else the first column. Blank rows are skipped."""
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(decoded)))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError("the file is empty: expected a header row, then one comment a row")
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(name) for name in TEXT_COLUMNS if name in header), 0)
    comments = [row[column] for row in rows[1:] if len(row) > column and row[column].strip()]
    if not comments:
        raise ValueError(f"no comments under the column {rows[0][column]!r}")
    if len(comments) > max_rows:
        raise ValueError(f"{len(comments)} comments: at most {max_rows} a file")
    return comments


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def results_frame(comments: Sequence[str], results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per comment, in upload order: decision, flagged labels, the six scores."""
    return pd.DataFrame(
        [
            {
                "comment_text": comment,
                "decision": result["decision"],
                "labels": ", ".join(result["labels"]),
                **{label: round(float(result["scores"][label]), 4) for label in LABELS},
                "request_id": result["request_id"],
            }
            for comment, result in zip(comments, results, strict=True)
        ]
    )


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def feedback_payload(
    predicted: Sequence[str], correct: bool, true_labels: Sequence[str] | None
) -> tuple[bool, list[str]]:
    """``correct`` and the true labels to send: a "correct" mark confirms the labels shown;
    an "incorrect" one must name labels that differ from them."""
    if correct:
        return True, sorted(predicted)
    labels = sorted(true_labels or [])
    if labels == sorted(predicted):
        raise ValueError("the true labels you picked are the predicted ones: pick what is right")
    return False, labels


# ---------------------------------------------------------------- policies
POLICY_COLUMNS = ("label", "review at", "block at", "never block")
UNSUPPORTED_CHOICES = ("model default", "allow", "review", "block")


def terms_from_text(text: str) -> list[str]:
    """One term a line; blank lines dropped, duplicates kept once in order."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        if line.strip():
            seen.setdefault(" ".join(line.split()), None)
    return list(seen)


def policy_thresholds_frame(policy: Mapping[str, Any] | None) -> pd.DataFrame:
    """A row per label with the policy's review and block thresholds (empty: the model's)."""
    policy = policy or {}
    review = policy.get("thresholds") or {}
    block = policy.get("block_thresholds") or {}
    rows = [
        {
            "label": label,
            "review at": review.get(label),
            "block at": None if block.get(label) == "never" else block.get(label),
            "never block": block.get(label) == "never",
        }
        for label in LABELS
    ]
    return pd.DataFrame(rows, columns=list(POLICY_COLUMNS))


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def policy_body(
    thresholds: pd.DataFrame,
    description: str,
    block_terms: str,
    review_terms: str,
    allow_terms: str,
    unsupported_language: str,
) -> dict[str, Any]:
    """The PUT /policies body for what the page shows; empty cells keep the model's values."""
    review: dict[str, float] = {}
    block: dict[str, float | str] = {}
    for row in thresholds.to_dict("records"):
        label = row["label"]
        if (value := _number(row["review at"])) is not None:
            review[label] = value
        if bool(row["never block"]):
            block[label] = "never"
        elif (value := _number(row["block at"])) is not None:
            block[label] = value
    return {
        "description": description.strip(),
        "thresholds": review,
        "block_thresholds": block,
        "block_terms": terms_from_text(block_terms),
        "review_terms": terms_from_text(review_terms),
        "allow_terms": terms_from_text(allow_terms),
        "unsupported_language": None
        if unsupported_language == UNSUPPORTED_CHOICES[0]
        else unsupported_language,
    }


def forecast_frame(forecast: Mapping[str, Any]) -> pd.DataFrame:
    """The forecast as a table: a row per figure, the current policy beside the candidate."""
    rows = [
        ("allowed", "allow"),
        ("sent to review", "review"),
        ("blocked", "block"),
        ("review inflow per day", "review_inflow_per_day"),
        ("precision (moderator-labelled)", "precision"),
        ("recall (moderator-labelled)", "recall"),
    ]
    current, candidate = forecast["current"], forecast["candidate"]
    return pd.DataFrame(
        [
            {"figure": name, "current": current.get(key), "candidate": candidate.get(key)}
            for name, key in rows
        ]
    )


# ---------------------------------------------------------------- review queue
#: what each key does on the review page (Streamlit keeps C and R for itself, so reject is X)
REVIEW_SHORTCUTS: dict[str, str] = {
    "next": "J",
    "previous": "K",
    "approve": "A",
    "reject": "X",
    "relabel": "L",
    "undo": "U",
    "select": "S",
    "approve selected": "Shift+A",
    "reject selected": "Shift+X",
}
ALL_LABELS = "all labels"


def shortcut_legend(shortcuts: Mapping[str, str] = REVIEW_SHORTCUTS) -> str:
    """The keys as one line of markdown, for the top of the page."""
    return " · ".join(f"`{key}` {what}" for what, key in shortcuts.items())


def queue_query(label: str, policy: str, order: str) -> dict[str, str | None]:
    """The queue's filters as GET /reviews parameters: a label or policy lane is always in
    priority order (the API lists lanes no other way)."""
    lane_label = None if label == ALL_LABELS else label
    lane_policy = policy.strip() or None
    filtered = lane_label is not None or lane_policy is not None
    return {
        "label": lane_label,
        "policy": lane_policy,
        "order": "priority" if filtered else order,
    }


def current_item(ids: Sequence[str], wanted: str | None, index: int) -> tuple[str | None, int]:
    """The item under the cursor: the one wanted while it is listed, else the one now at the
    cursor's place (a decided item's successor), else the last; None for an empty queue."""
    if not ids:
        return None, 0
    if wanted in ids:
        return wanted, ids.index(wanted)
    position = min(max(index, 0), len(ids) - 1)
    return ids[position], position


def step(ids: Sequence[str], current: str | None, delta: int) -> str | None:
    """The item ``delta`` places from ``current``, stopping at either end."""
    if not ids:
        return None
    position = ids.index(current) if current in ids else 0
    return ids[min(max(position + delta, 0), len(ids) - 1)]


def needs_claim(
    claim: Mapping[str, Any] | None, request_id: str, moderator: str, now: int, margin: int = 60
) -> bool:
    """Whether to claim ``request_id`` now: it is not this moderator's already, or their lease
    ends within ``margin`` seconds."""
    if not claim or claim.get("request_id") != request_id or claim.get("moderator") != moderator:
        return True
    return int(claim.get("lease_expires_at") or 0) - now < margin


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age_text(created_at: str | None, now: datetime) -> str:
    """How long an item has waited, to the minute past an hour ("2 h 5 min", "4 min", "30 s")."""
    if not created_at:
        return "-"
    seconds = max(0, int((now - _parse_time(created_at)).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours = seconds // 60, seconds // 3600
    if hours < 1:
        return f"{minutes} min"
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


def lease_text(item: Mapping[str, Any], moderator: str, now: int) -> str | None:
    """Who holds an item while the lease runs ("held by you until 10:05:00 UTC"), else None."""
    holder, until = item.get("lease_holder"), int(item.get("lease_expires_at") or 0)
    if not holder or until <= now:
        return None
    who = "you" if holder == moderator else holder
    return f"held by {who} until {datetime.fromtimestamp(until, UTC):%H:%M:%S} UTC"


def item_line(item: Mapping[str, Any], width: int = 60) -> str:
    """One queue row: the lane, the top score and the start of the comment."""
    top = max(item["scores"].values()) if item.get("scores") else 0.0
    text = " ".join((item.get("comment_text") or "(text not stored)").split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    return f"{item.get('lead_label') or 'none'} {top:.2f} · {text}"


def css_key(key: str) -> str:
    """The CSS class Streamlit gives a container with ``key`` (``st-key-`` and the key with
    anything but letters, digits, ``_`` and ``-`` turned into ``-``)."""
    return "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())


def highlight_css(request_id: str | None) -> str:
    """A style that marks the current item's row and its detail card."""
    rules = [".st-key-review-current {background: rgba(255, 196, 0, 0.12);}"]
    if request_id:
        rules.append(
            f".{css_key(f'review-{request_id}')} "
            "{background: rgba(255, 196, 0, 0.25); border-left: 4px solid #f0a000;}"
        )
    return "<style>" + " ".join(rules) + "</style>"


def bulk_summary(action: str, answer: Mapping[str, Any]) -> tuple[str, list[str]]:
    """What a bulk decision did, in a line, and the ids it decided."""
    results = answer.get("results") or []
    decided = [r["request_id"] for r in results if r["status"] == "decided"]
    refused = [r for r in results if r["status"] != "decided"]
    line = f"Bulk {action}: {len(decided)} decided"
    if refused:
        reasons = "; ".join(
            f"{r['request_id']}: {r.get('message') or r['status']}" for r in refused
        )
        line += f", {len(refused)} not ({reasons})"
    return line + ".", decided
