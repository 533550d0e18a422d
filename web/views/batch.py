"""Batch check: a CSV (or pasted lines) in, a table of results and a CSV download out."""

import streamlit as st

from web import logic, ui

ui.sidebar()
st.title("Batch check")
st.markdown(
    "Upload a CSV with a header row (the `comment_text` column is used, else the first), "
    "or paste one comment a line."
)
upload = st.file_uploader("CSV of comments", type=["csv"])
pasted = st.text_area("Or paste comments, one a line", height=120)
if st.button("Check all", type="primary"):
    comments: list[str] | None = None
    if upload is not None:
        try:
            comments = logic.read_comments_csv(upload.getvalue())
        except ValueError as exc:
            st.error(f"Could not read {upload.name}: {exc}")
    else:
        comments = [line for line in pasted.splitlines() if line.strip()]
        if not comments:
            st.warning("Upload a CSV or paste at least one comment.")
            comments = None
    if comments:
        size = ui.settings().batch_size
        results: list[dict] = []
        progress = st.progress(0.0, text=f"Checking {len(comments)} comments")
        for chunk in logic.chunks(comments, size):
            answered = ui.attempt(ui.api().predict_batch, chunk)
            if answered is None:
                results = []
                break
            results.extend(answered)
            progress.progress(len(results) / len(comments))
        if results:
            st.session_state["batch"] = logic.results_frame(comments, results)

frame = st.session_state.get("batch")
if frame is not None:
    counts = frame["decision"].value_counts()
    cols = st.columns(3)
    for col, decision in zip(cols, ("allow", "review", "block"), strict=True):
        col.metric(decision, int(counts.get(decision, 0)))
    st.dataframe(frame, hide_index=True)
    st.download_button(
        "Download results (CSV)", logic.to_csv(frame), "moderation-results.csv", "text/csv"
    )
