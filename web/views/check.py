"""Check a comment: scores, decision, highlighted n-grams, thresholds, feedback."""

import streamlit as st

from moderation.labels import LABELS
from web import logic, ui

ui.sidebar()
st.title("Check a comment")
card = ui.model()

with st.form("check-form"):
    text = st.text_area("Comment", height=140, placeholder="Type or paste a comment")
    submitted = st.form_submit_button("Check", type="primary")
if submitted:
    if not text.strip():
        st.warning("Type a comment first.")
    else:
        result = ui.attempt(ui.api().predict, text)
        if result is not None:
            st.session_state["checked"] = {"text": text, "result": result}
            st.session_state.pop("feedback_sent", None)

checked = st.session_state.get("checked")
if card is not None and checked is not None:
    result = checked["result"]
    with st.sidebar:
        st.subheader("Thresholds")
        use_global = st.toggle("One threshold for every label", key="use_global")
        global_value = st.slider("Global threshold", 0.0, 1.0, 0.5, 0.01, key="global")
        overrides = {
            label: st.slider(label, 0.0, 1.0, float(card["thresholds"][label]), 0.01, key=label)
            for label in LABELS
        }
    thresholds = logic.effective_thresholds(
        card["thresholds"], overrides, global_value if use_global else None
    )
    labels, decision = logic.apply_thresholds(
        result["scores"], thresholds, card["block_thresholds"]
    )
    colour = logic.DECISION_COLOURS[decision]
    st.markdown(f"### Decision: :{colour}[{decision.upper()}]")
    st.markdown("Labels over threshold: " + (", ".join(f"`{x}`" for x in labels) or "none"))
    st.caption(
        f"Model {result['model_name']} {result['model_version']} · request {result['request_id']}"
        + (" · served from cache" if result["cached"] else "")
    )
    st.plotly_chart(logic.scores_figure(result["scores"], thresholds), key="scores")
    st.markdown("**What drove the flagged labels** (hover a mark for its labels)")
    shown = {k: v for k, v in (result.get("explanations") or {}).items() if k in labels}
    st.html(f'<div class="comment">{logic.highlight(checked["text"], shown)}</div>')

    st.subheader("Feedback")
    verdict = st.radio("Is this prediction right?", ["Correct", "Incorrect"], horizontal=True)
    true_labels = notes = None
    if verdict == "Incorrect":
        true_labels = st.multiselect("The true labels (none: the comment is fine)", LABELS)
        notes = st.text_input("Note (optional)", max_chars=1000)
    if st.button("Submit feedback"):
        try:
            correct, truth = logic.feedback_payload(labels, verdict == "Correct", true_labels)
        except ValueError as exc:
            st.warning(str(exc))
        else:
            sent = ui.attempt(ui.api().feedback, result["request_id"], correct, truth, notes)
            if sent is not None:
                st.session_state["feedback_sent"] = sent
    sent = st.session_state.get("feedback_sent")
    if sent:
        if sent["duplicate"]:
            st.info("This feedback was already recorded.")
        else:
            st.success("Feedback recorded. Thank you.")
