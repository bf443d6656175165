"""Settings of the analytics service (its gRPC API, the plays-stored consumer, the rebuild lane)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from echostats_platform.settings import (
    CommonSettings,
    GrpcServerSettings,
    SecretsGuard,
    ServiceAddresses,
)


class AnalyticsSettings(SecretsGuard, CommonSettings, GrpcServerSettings, ServiceAddresses):
    """Everything the analytics service reads from the environment."""

    grpc_port: int = Field(default=50054, ge=0, le=65535)
    mongodb_database: str = "echostats_analytics"

    # The time zone local days, hours and weekdays are counted in (ECHOSTATS_ANALYTICS_TIMEZONE).
    analytics_timezone: str = "UTC"
    # Items kept per ranked list in a stored snapshot (top lists serve up to 100).
    snapshot_top_items: int = Field(default=100, ge=10, le=1000)
    # Items shown per ranked list in the overview.
    overview_top_items: int = Field(default=10, ge=1, le=100)
    # One snapshot computation per user and period: the lock lives this long at most, and a
    # reader waits this long for another replica's computation before computing itself.
    snapshot_lock_seconds: float = Field(default=30.0, gt=0)
    # Catalog calls are best effort (hydration, genres, features): a short deadline.
    catalog_timeout_seconds: float = Field(default=3.0, gt=0)
    catalog_batch_size: int = Field(default=500, ge=1, le=5000)
    # Catalog answers remembered in the process: settled facts (features, genres) this long,
    # and any answer ("not known" too) this long. 0 by default: a new listener's snapshot
    # would otherwise miss what enrichment learnt meanwhile about artists others share.
    catalog_remember_seconds: float = Field(default=600.0, ge=0)
    catalog_recent_seconds: float = Field(default=0.0, ge=0)

    # -- background work inside the service process (ECHOSTATS_ANALYTICS_*, ECHOSTATS_QUEUE_*)
    # Consume `ingestion:plays-stored` and run rollup builds here (off for one-off tools).
    analytics_background: bool = True
    analytics_event_concurrency: int = Field(default=2, ge=1, le=32)
    queue_claim_idle_ms: int = Field(default=60_000, ge=100)
    queue_heartbeat_seconds: float = Field(default=15.0, gt=0)
    queue_max_deliveries: int = Field(default=5, ge=1, le=100)
    queue_block_ms: int = Field(default=5_000, ge=10)
    queue_maxlen: int = Field(default=100_000, ge=100)
    worker_consumer_name: str | None = None
    worker_shutdown_grace_seconds: float = Field(default=20.0, ge=0)

    @field_validator("analytics_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value
