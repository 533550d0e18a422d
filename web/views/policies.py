"""Policies: edit a community's policy, see what the change would do, then save it."""

import streamlit as st

from web import logic, ui

NEW = "New policy…"

ui.sidebar()
st.title("Policies")
admin = ui.admin_api()
if admin is None:
    st.info("Enter the admin key in the sidebar: policies change only with it.")
    st.stop()

policies = ui.attempt(admin.policies)
if policies is None:
    st.stop()
by_id = {p["policy_id"]: p for p in policies}
choice = st.selectbox("Policy", [*by_id, NEW], key="policy_choice")
if choice == NEW:
    policy_id = st.text_input("New policy id", key="policy_id", placeholder="kids-forum")
    current = None
else:
    policy_id, current = choice, by_id[choice]
    st.caption(
        f"Version {current['version']}, saved {current['updated_at']} by {current['updated_by']}."
    )

editor, forecast_column = st.columns([3, 2], gap="large")
with editor:
    description = st.text_input(
        "Description", value=(current or {}).get("description", ""), key=f"desc-{choice}"
    )
    st.markdown("**Thresholds** (empty: the model's own)")
    thresholds = st.data_editor(
        logic.policy_thresholds_frame(current),
        key=f"thresholds-{choice}",
        hide_index=True,
        disabled=["label"],
        column_config={
            "review at": st.column_config.NumberColumn(min_value=0.0, max_value=1.0, step=0.01),
            "block at": st.column_config.NumberColumn(min_value=0.0, max_value=1.0, step=0.01),
        },
    )
    terms = {}
    for name, help_text in (
        ("block_terms", "always blocked"),
        ("review_terms", "always sent to review"),
        ("allow_terms", "never flagged: names and words the model misreads"),
    ):
        terms[name] = st.text_area(
            f"{name.replace('_', ' ').capitalize()} (one a line: {help_text})",
            value="\n".join((current or {}).get(name, [])),
            key=f"{name}-{choice}",
            height=100,
        )
    unsupported = (current or {}).get("unsupported_language") or logic.UNSUPPORTED_CHOICES[0]
    unsupported_language = st.selectbox(
        "Text in a language the model was not trained for",
        logic.UNSUPPORTED_CHOICES,
        index=logic.UNSUPPORTED_CHOICES.index(unsupported),
        key=f"unsupported-{choice}",
    )
    body = logic.policy_body(
        thresholds, description, terms["block_terms"], terms["review_terms"],
        terms["allow_terms"], unsupported_language,
    )  # fmt: skip
    if current and current.get("webhook"):
        st.caption("Its webhook is kept; change it through the API.")
    save = st.button("Save policy", type="primary", disabled=not policy_id)

with forecast_column:
    st.markdown("**Forecast on recent traffic**")
    days = st.slider("Days of traffic", 1, 30, 7, key="forecast_days")
    if st.button("Forecast this change", disabled=not policy_id):
        st.session_state["forecast"] = ui.attempt(admin.preview_policy, policy_id, body, days)
    forecast = st.session_state.get("forecast")
    if forecast and forecast.get("policy_id") == policy_id:
        sample = forecast["sample"]
        st.dataframe(logic.forecast_frame(forecast), hide_index=True, key="forecast_table")
        changed = ", ".join(f"{k}: {v}" for k, v in forecast["changed"].items()) or "none"
        st.caption(
            f"{sample['items']} sampled predictions over {sample['days']} days "
            f"(sample rate {sample['sample_rate']:g}; {sample['without_text']} without text, "
            f"judged by thresholds only). Decisions that change: {changed}."
        )

if save:
    if current and current.get("webhook"):
        st.error("This policy has a webhook: save it through the API, which needs its secret.")
    else:
        saved = ui.attempt(
            admin.put_policy, policy_id, body, current["version"] if current else None
        )
        if saved is not None:
            st.session_state.pop("forecast", None)
            st.success(f"Saved {saved['policy_id']} version {saved['version']}.")
