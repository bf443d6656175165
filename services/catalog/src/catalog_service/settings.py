"""Settings of the catalog service (its gRPC server and its background enrichment)."""

from __future__ import annotations

from pydantic import Field

from echostats_platform.settings import (
    CommonSettings,
    GrpcServerSettings,
    SecretsGuard,
    ServiceAddresses,
    SpotifySettings,
)


class CatalogSettings(
    SecretsGuard, CommonSettings, GrpcServerSettings, ServiceAddresses, SpotifySettings
):
    """Everything the catalog service reads from the environment."""

    grpc_port: int = Field(default=50053, ge=0, le=65535)
    mongodb_database: str = "echostats_catalog"

    # -- enrichment (ECHOSTATS_ENRICH_*) --
    # Run the background side (plays-stored consumer and queue drainer) in this process.
    enrich_background: bool = True
    # Spotify calls one user's enrichment may make per budget window (single lookups in
    # development mode cost one call per id, so this bounds what one import can spend).
    enrich_budget_calls: int = Field(default=600, ge=1)
    enrich_budget_window_seconds: float = Field(default=3600.0, gt=0)
    # Calls the sync pipeline's audio_features step may spend before leaving the rest to
    # the background (it runs inside a sync job, so it must stay short).
    enrich_step_max_calls: int = Field(default=200, ge=0)
    # How long the background drainer sleeps when it found nothing to do.
    enrich_idle_seconds: float = Field(default=2.0, gt=0)
    # How long one user's enrichment lock lives (renewed by finishing; a dead replica's
    # lock simply lapses).
    enrich_lock_seconds: float = Field(default=120.0, gt=0)
    # How long an endpoint family found closed (403/404) is remembered before one probe.
    capability_closed_ttl_seconds: float = Field(default=6 * 3600.0, gt=0)
    # Spotify recomputes top items about daily: a sync refreshes them at most this often.
    top_items_min_interval_seconds: float = Field(default=6 * 3600.0, ge=0)
    # Consumer group on ingestion's plays-stored stream.
    plays_consumer_group: str = "catalog"
    plays_consumer_name: str = ""
    queue_claim_idle_ms: int = Field(default=60_000, ge=1000)
    queue_heartbeat_seconds: float = Field(default=15.0, gt=0)
    queue_max_deliveries: int = Field(default=5, ge=1)
    queue_block_ms: int = Field(default=5000, ge=1)
    # Timeout of one StreamPlays read (a day at a time, so short).
    stream_plays_timeout_seconds: float = Field(default=60.0, gt=0)
