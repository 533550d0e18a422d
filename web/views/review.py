"""The review queue: oldest first; approve, reject or relabel with one click."""

import streamlit as st

from moderation.labels import LABELS
from web import logic, ui

ui.sidebar()
st.title("Review queue")
page = ui.attempt(ui.api().reviews, ui.settings().review_page_size)
last = st.session_state.pop("last_decision", None)
if last:
    st.success(f"Recorded: {last['action']} on {last['request_id']} by {last['moderator']}.")

if page is not None:
    st.markdown(f"**{page['count']} pending**, oldest first.")
    if not page["items"]:
        st.info("The review queue is empty. Nothing is waiting for a moderator.")
    moderator = ui.moderator()
    if page["items"] and not moderator:
        st.warning("Enter your name in the sidebar: it is recorded with each decision.")
    for item in page["items"]:
        rid = item["request_id"]
        with st.container(border=True, key=f"review-{rid}"):
            st.caption(
                f"{item['created_at']} · model {item['model_version']} · "
                f"decision {item['decision']} · flagged {', '.join(item['labels']) or 'none'}"
            )
            if item.get("comment_text"):
                st.html(logic.highlight(item["comment_text"], item.get("explanations")))
            else:
                st.markdown("_The caller asked not to store this comment's text._")
            st.dataframe(
                {label: [round(item["scores"][label], 3)] for label in LABELS},
                hide_index=True,
            )
            notes = st.text_input("Note (optional)", key=f"notes-{rid}", max_chars=1000)
            relabel = st.multiselect("True labels (for Relabel)", LABELS, key=f"labels-{rid}")
            approve, reject, relabel_col = st.columns(3)
            choice = None
            if approve.button("Approve: fine", key=f"approve-{rid}", disabled=not moderator):
                choice = ("approve", None)
            if reject.button("Reject: labels right", key=f"reject-{rid}", disabled=not moderator):
                choice = ("reject", None)
            if relabel_col.button("Relabel", key=f"relabel-{rid}", disabled=not moderator):
                choice = ("relabel", relabel)
            if choice is not None:
                action, labels = choice
                decided = ui.attempt(
                    ui.api().decide_review, rid, action, moderator, labels, notes or None
                )
                if decided is not None:
                    st.session_state["last_decision"] = decided
                    st.rerun()
