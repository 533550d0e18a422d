"""The web app's settings: environment variables first, then Streamlit secrets."""

import os
from collections.abc import Mapping
from typing import Any

from pydantic import Field, HttpUrl, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    api_url: HttpUrl = Field(
        HttpUrl("http://127.0.0.1:8000"), description="the moderation API's base URL"
    )
    api_key: SecretStr | None = Field(None, description="sent as x-api-key (API Gateway key)")
    admin_api_key: SecretStr | None = Field(
        None,
        description="the admin key the Policies page sends (unset: the page asks for it)",
    )
    api_timeout_s: float = Field(10.0, gt=0, description="seconds before a call is given up")
    batch_size: int = Field(100, ge=1, description="comments per /predict/batch call")
    review_page_size: int = Field(10, ge=1, le=100, description="queue items shown at once")


def load_settings(secrets: Mapping[str, Any] | None = None) -> WebSettings:
    """Settings from the environment; a Streamlit secret fills a field the environment
    leaves unset (``.streamlit/secrets.toml`` with ``api_url = ...``, ``api_key = ...``)."""
    fallback = {
        name: value
        for name, value in (secrets or {}).items()
        if name in WebSettings.model_fields and name.upper() not in os.environ
    }
    return WebSettings(**fallback)
