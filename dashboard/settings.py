"""The dashboard's own settings, from ``DASHBOARD_*`` environment variables. The table it
reads is the core's ``AGGREGATES_TABLE`` (``moderation.settings``)."""

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", extra="ignore")

    refresh_seconds: int = Field(60, ge=5, description="auto-refresh period (and query cache)")
    latency_objective_ms: float = Field(
        100.0, gt=0, description="latency objective drawn on the latency chart"
    )
    min_labelled: int = Field(
        30, ge=1, description="labelled items below which an accuracy figure is flagged"
    )
    min_drift_requests: int = Field(
        200, ge=1, description="requests below which a drift statistic is flagged as noisy"
    )
    psi_watch: float = Field(0.1, gt=0, description="PSI from which a label is on watch")
    psi_alert: float = Field(0.25, gt=0, description="PSI from which a label is in alert")
    minute_resolution_max_hours: float = Field(
        6, gt=0, description="longest range drawn per minute; longer ranges per hour"
    )
    max_range_days: int = Field(31, ge=1, description="longest custom range")
    accuracy_periods: int = Field(
        24, ge=1, description="points on the accuracy-over-time chart (buckets pooled)"
    )

    @model_validator(mode="after")
    def _alert_above_watch(self) -> "DashboardSettings":
        if self.psi_alert < self.psi_watch:
            raise ValueError("psi_alert must not be below psi_watch")
        return self


@lru_cache
def get_dashboard_settings() -> DashboardSettings:
    return DashboardSettings()
