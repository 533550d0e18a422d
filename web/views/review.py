"""The review queue as a work tool: by priority, the current item claimed and highlighted,
decided by keyboard (the shortcuts on each button), bulk decisions, undo of one's own."""

import time
from datetime import UTC, datetime

import streamlit as st

from moderation.labels import LABELS
from web import logic, ui
from web.client import ApiError

KEYS = logic.REVIEW_SHORTCUTS
state = st.session_state
state.setdefault("review_current", None)
state.setdefault("review_index", 0)
state.setdefault("review_claims", {})  # request_id -> this session's lease
state.setdefault("review_undo", [])
state.setdefault("review_flash", [])


def flash(kind: str, text: str) -> None:
    state["review_flash"].append((kind, text))


def move(ids: list[str], current: str | None, delta: int) -> None:
    state["review_current"] = logic.step(ids, current, delta)


def toggle(request_id: str) -> None:
    key = f"select-{request_id}"
    state[key] = not state.get(key, False)


def decide(request_id: str, action: str, moderator: str) -> None:
    labels = state.get(f"labels-{request_id}") if action == "relabel" else None
    try:
        answer = ui.api().decide_review(
            request_id,
            action,
            moderator,
            labels,
            state.get(f"note-{request_id}") or None,
            state.get("review_reason"),
        )
    except ApiError as exc:
        flash("error", exc.message)
        return
    state["review_undo"].append(request_id)
    state["review_current"] = None
    flash(
        "success",
        f"Recorded: {answer['action']} on {request_id} by {answer['moderator']} "
        f"(reason {answer['reason']}).",
    )


def decide_selected(selected: list[str], action: str, moderator: str) -> None:
    try:
        answer = ui.api().decide_reviews(
            selected, action, moderator, None, None, state.get("review_reason")
        )
    except ApiError as exc:
        flash("error", exc.message)
        return
    line, decided = logic.bulk_summary(action, answer)
    state["review_undo"].extend(decided)
    for request_id in decided:
        state.pop(f"select-{request_id}", None)
    flash("success" if len(decided) == len(selected) else "warning", line)


def undo(moderator: str) -> None:
    request_id = state["review_undo"][-1]
    try:
        answer = ui.api().undo_review(request_id, moderator)
    except ApiError as exc:
        if exc.status in (403, 409):  # not undoable any more: the next undo is an older one
            state["review_undo"].pop()
        flash("error", exc.message)
        return
    state["review_undo"].pop()
    state["review_current"] = request_id
    state["review_claims"][request_id] = {**answer, "request_id": request_id}
    flash("success", f"Undone: {request_id} is pending again and held by you.")


def claim(request_id: str, moderator: str) -> str | None:
    """Hold the current item (renewing the lease); the refusal's message when another does."""
    claims = state["review_claims"]
    if not logic.needs_claim(claims.get(request_id), request_id, moderator, int(time.time())):
        return None
    try:
        claims[request_id] = ui.api().claim_review(request_id, moderator)
    except ApiError as exc:
        claims.pop(request_id, None)
        return exc.message
    return None


ui.sidebar()
st.title("Review queue")
moderator = ui.moderator()
st.caption("Keys: " + logic.shortcut_legend())
for kind, text in state["review_flash"]:
    getattr(st, kind)(text)
state["review_flash"] = []

label_col, policy_col, order_col = st.columns([2, 2, 3])
label = label_col.selectbox("Label", [logic.ALL_LABELS, *LABELS, "none"], key="review_label")
policy = policy_col.text_input("Policy", key="review_policy", placeholder="any policy")
order = order_col.radio(
    "Order", ["priority", "oldest"], horizontal=True, key="review_order", help="lanes: priority"
)
query = logic.queue_query(label, policy, order)
page = ui.attempt(
    ui.api().reviews,
    ui.settings().review_page_size,
    None,
    query["order"],
    query["label"],
    query["policy"],
    moderator or None,
)

if page is not None:
    items = {item["request_id"]: item for item in page["items"]}
    ids = list(items)
    current, state["review_index"] = logic.current_item(
        ids, state["review_current"], state["review_index"]
    )
    state["review_current"] = current
    depth, oldest, shown = st.columns(3)
    depth.metric("Pending", page["count"])
    oldest.metric(
        "Oldest waiting", logic.age_text(page.get("oldest_created_at"), datetime.now(UTC))
    )
    shown.metric("On this page", len(ids))
    ordered = "by priority" if query["order"] == "priority" else "oldest first"
    st.markdown(f"**{page['count']} pending**, {ordered}.")
    if not ids:
        st.info("The review queue is empty. Nothing is waiting for a moderator.")
    if ids and not moderator:
        st.warning("Enter your name in the sidebar: it is recorded with each decision.")
    refusal = claim(current, moderator) if current and moderator else None
    st.html(logic.highlight_css(current))

    queue_col, item_col = st.columns([2, 3])
    now = int(time.time())
    with queue_col:
        for request_id, item in items.items():
            marker = "▶ " if request_id == current else ""
            with st.container(key=f"review-{request_id}"):
                st.checkbox(f"{marker}{logic.item_line(item)}", key=f"select-{request_id}")
                if held := logic.lease_text(item, moderator, now):
                    st.caption(held)
        selected = [rid for rid in ids if state.get(f"select-{rid}")]
        bulk_approve, bulk_reject = st.columns(2)
        bulk_args = (selected, "approve", moderator)
        bulk_approve.button(
            f"Approve selected ({len(selected)})",
            key="review-bulk-approve",
            shortcut=KEYS["approve selected"],
            disabled=not (moderator and selected),
            on_click=decide_selected,
            args=bulk_args,
        )
        bulk_reject.button(
            f"Reject selected ({len(selected)})",
            key="review-bulk-reject",
            shortcut=KEYS["reject selected"],
            disabled=not (moderator and selected),
            on_click=decide_selected,
            args=(selected, "reject", moderator),
        )

    with item_col:
        with st.container(border=True, key="review-current"):
            item = items.get(current) if current else None
            if item is not None:
                st.caption(
                    f"{current} · {item['created_at']} · model {item['model_version']} · "
                    f"policy {item.get('policy_id') or 'default'} · decision {item['decision']}"
                    f" · flagged {', '.join(item['labels']) or 'none'}"
                )
                if refusal:
                    st.error(f"Not yours to decide: {refusal}", icon=":material/lock:")
                elif lease := state["review_claims"].get(current):
                    held = logic.lease_text({**lease, "lease_holder": moderator}, moderator, now)
                    st.markdown(f":orange-badge[Claimed: {held}]")
                if item.get("comment_text"):
                    st.html(logic.highlight(item["comment_text"], item.get("explanations")))
                else:
                    st.markdown("_The caller asked not to store this comment's text._")
                st.dataframe(
                    {label: [round(item["scores"][label], 3)] for label in LABELS},
                    hide_index=True,
                )
            reasons = page.get("reasons") or []
            st.selectbox(
                "Reason",
                [None, *reasons],
                key="review_reason",
                format_func=lambda code: "default (ok / other)" if code is None else code,
            )
            if item is not None:
                st.text_input("Note (optional)", key=f"note-{current}", max_chars=1000)
                st.multiselect(
                    "True labels (for Relabel)",
                    LABELS,
                    default=item["labels"],
                    key=f"labels-{current}",
                )
            can_decide = bool(item is not None and moderator and not refusal)
            buttons = st.columns(6)
            buttons[0].button(
                "Previous",
                key="review-previous",
                shortcut=KEYS["previous"],
                disabled=not ids,
                on_click=move,
                args=(ids, current, -1),
            )
            buttons[1].button(
                "Next",
                key="review-next",
                shortcut=KEYS["next"],
                disabled=not ids,
                on_click=move,
                args=(ids, current, 1),
            )
            for column, action, title in (
                (buttons[2], "approve", "Approve: fine"),
                (buttons[3], "reject", "Reject: labels right"),
                (buttons[4], "relabel", "Relabel"),
            ):
                column.button(
                    title,
                    key=f"review-{action}",
                    shortcut=KEYS[action],
                    disabled=not can_decide,
                    on_click=decide,
                    args=(current, action, moderator),
                )
            buttons[5].button(
                "Undo",
                key="review-undo",
                shortcut=KEYS["undo"],
                disabled=not (moderator and state["review_undo"]),
                on_click=undo,
                args=(moderator,),
                help="reopen your last decision (within the API's undo window)",
            )
            st.button(
                "Select",
                key="review-select",
                shortcut=KEYS["select"],
                disabled=current is None,
                on_click=toggle,
                args=(current,),
                help="add the current item to (or take it from) the bulk selection",
            )
