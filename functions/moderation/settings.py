"""The core's settings (data, registry, store, API limits), read from the environment (or a
.env file): the API, the aggregator, training and the local stack share them; the moderator
UI and the dashboard have their own (``web/settings.py``, ``dashboard/settings.py``).

Each field is documented in docs/configuration.md. AWS endpoints are not settings of
ours: boto3 reads its standard ``AWS_ENDPOINT_URL`` (the local moto server) itself.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", protected_namespaces=("settings_",)
    )

    # data and training
    data_dir: Path = Field(Path("../shared/data/jigsaw"), description="Jigsaw CSV folder")
    artifacts_dir: Path = Field(Path("artifacts"), description="where training writes bundles")
    wandb_project: str = "toxic-moderation"
    wandb_entity: str | None = None
    wandb_api_key: SecretStr | None = None
    wandb_dir: Path = Path(".")

    # model registry
    model_bucket: str = "toxic-moderation-models"
    model_alias: str = "production"
    model_version: str | None = Field(None, description="pin a version (vN) instead of alias")
    model_refresh_seconds: float = Field(
        300, ge=0, description="how often a warm container re-reads the alias (0: never)"
    )
    model_cache_dir: Path = Field(Path("/tmp/toxic-model"), description="bundle download dir")

    # store
    predictions_table: str = "toxic-moderation-predictions"
    cache_table: str = "toxic-moderation-cache"
    aggregates_table: str = "toxic-moderation-aggregates"
    policies_table: str = "toxic-moderation-policies"
    audit_table: str = Field(
        "toxic-moderation-audit", description="moderators' claims, decisions and undos (no TTL)"
    )
    dead_letter_queue_url: str | None = Field(
        None, description="the aggregator's dead-letter queue (records it cannot count)"
    )
    text_retention_days: int = Field(
        30, ge=1, description="days before a logged prediction, with its raw text, expires (TTL)"
    )
    cache_ttl_days: int = Field(7, ge=1, description="days a cached score lives")

    # api
    max_comment_chars: int = Field(10_000, ge=1)
    # 128 KiB: 10,000 characters of emoji JSON-escaped by the client (\ud83d\udd25, 12 bytes
    # each) must fit, whatever the client's JSON encoder does with non-ASCII
    max_body_bytes: int = Field(131_072, ge=1024)
    max_batch: int = Field(100, ge=1)
    unsupported_language_decision: Literal["allow", "review", "block"] | None = Field(
        "review",
        description="the decision for a comment the English model was not trained to judge: "
        "written mostly outside the Latin script, or detected as another language (empty: "
        "score it like any other)",
    )
    require_api_key: bool = Field(
        False, description="reject calls without an API Gateway key identity (true on AWS)"
    )

    # policies
    admin_api_key: SecretStr | None = Field(
        None, description="a key whose x-api-key requests are admin requests (local stack)"
    )
    admin_api_key_ids: str = Field(
        "", description="comma-separated API Gateway key ids that are admin keys (AWS)"
    )
    policy_cache_seconds: float = Field(
        30, ge=0, description="how long a warm container uses a policy before reading it again"
    )
    traffic_sample_rate: float = Field(
        1.0, ge=0, le=1, description="share of predictions kept for policy forecasts"
    )
    forecast_max_items: int = Field(
        5_000, ge=100, description="most sampled predictions one policy forecast replays"
    )

    # review work
    review_reasons: str = Field(
        "ok,spam,harassment,hate,threat,sexual,other",
        description="comma-separated reason codes a moderator's decision may carry",
    )
    review_lease_seconds: int = Field(
        300, ge=10, description="how long a claim holds an item for one moderator"
    )
    review_undo_seconds: int = Field(
        300, ge=0, description="how long a moderator may undo (reopen) their own decision"
    )

    # webhooks
    webhook_queue_url: str | None = Field(
        None, description="the SQS queue of webhook deliveries (dispatch writes, delivery reads)"
    )
    webhook_dead_letter_queue_url: str | None = Field(
        None, description="where deliveries go after WEBHOOK_RETRY_WINDOW_SECONDS of failures"
    )
    webhook_timeout_seconds: float = Field(
        5, gt=0, le=30, description="how long one delivery waits for the receiver"
    )
    webhook_retry_base_seconds: float = Field(
        30, ge=0, description="the wait after the first failed delivery; it doubles each time"
    )
    webhook_retry_max_delay_seconds: float = Field(
        14_400, ge=0, description="the longest wait between two deliveries of one event"
    )
    webhook_retry_window_seconds: float = Field(
        86_400, ge=0, description="how long an event is retried before it is dead-lettered"
    )

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(code.strip() for code in self.review_reasons.split(",") if code.strip())

    @property
    def wandb_online(self) -> bool:
        return self.wandb_api_key is not None and bool(self.wandb_api_key.get_secret_value())


@lru_cache
def get_settings() -> Settings:
    return Settings()
