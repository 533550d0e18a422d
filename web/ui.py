"""What every page shares: the API client, the moderator's name, the queue count, errors.

Page scripts call these and render; nothing here talks to anything but the API."""

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from web.client import ApiClient, ApiError
from web.settings import WebSettings, load_settings

T = TypeVar("T")


def _secrets() -> dict[str, Any]:
    try:
        return {key: st.secrets[key] for key in ("api_url", "api_key") if key in st.secrets}
    except Exception:  # noqa: BLE001 - no secrets.toml is the normal case, not an error
        return {}


@st.cache_resource
def settings() -> WebSettings:
    return load_settings(_secrets())


@st.cache_resource
def make_client() -> ApiClient:
    return ApiClient(settings())


def api() -> ApiClient:
    return make_client()


@st.cache_resource
def _admin_client(key: str) -> ApiClient:
    return ApiClient(settings(), api_key=key)


def admin_api() -> ApiClient | None:
    """A client with the admin key: the settings' (local stack), else the one typed in the
    sidebar for this session (never stored); None when there is none."""
    configured = settings().admin_api_key
    if configured is not None:
        return _admin_client(configured.get_secret_value())
    typed = st.sidebar.text_input("Admin key", type="password", key="admin_key")
    return _admin_client(typed) if typed else None


def attempt[T](call: Callable[..., T], *args: Any) -> T | None:
    """Run an API call; on failure show its message in the page and return None."""
    try:
        return call(*args)
    except ApiError as exc:
        st.error(exc.message, icon=":material/error:")
        return None


@st.cache_data(ttl=300, show_spinner=False)
def model_card() -> dict[str, Any]:
    return api().model()


def model() -> dict[str, Any] | None:
    return attempt(model_card)


def moderator() -> str:
    return str(st.session_state.get("moderator_name", "")).strip()


def _remember_moderator() -> None:
    st.session_state["moderator_name"] = st.session_state["moderator_input"]


def sidebar() -> None:
    """The moderator's name and the review-queue depth, on every page. The name lives under
    its own key: Streamlit drops a widget's state when another page is shown."""
    with st.sidebar:
        st.text_input(
            "Moderator name",
            value=moderator(),
            key="moderator_input",
            on_change=_remember_moderator,
            help="recorded with every review decision",
            placeholder="your name",
        )
        try:
            count = api().queue_count()
            st.metric("Review queue", f"{count} pending")
        except ApiError as exc:
            st.metric("Review queue", "unknown")
            st.caption(exc.message)
