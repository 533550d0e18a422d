"""Moderator UI entry point: ``streamlit run web/app.py``."""

import streamlit as st

st.set_page_config(page_title="Moderation", page_icon=":material/shield:", layout="wide")
pages = st.navigation(
    [
        st.Page("views/check.py", title="Check a comment", icon=":material/search:", default=True),
        st.Page("views/review.py", title="Review queue", icon=":material/inbox:"),
        st.Page("views/batch.py", title="Batch check", icon=":material/table:"),
        st.Page("views/policies.py", title="Policies", icon=":material/policy:"),
    ]
)
pages.run()
