"""Settings of the ingestion service and its worker process (one class for both).

The gRPC service and `python -m ingestion_service.worker` read the same ECHOSTATS_*
environment, so a deployment configures both from one place. Every knob the tests need
short (queue claim idle, heartbeat, scheduler interval) is here.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from echostats_platform.settings import (
    CommonSettings,
    GrpcServerSettings,
    SecretsGuard,
    ServiceAddresses,
    SpotifySettings,
)


class IngestionSettings(
    SecretsGuard, CommonSettings, GrpcServerSettings, ServiceAddresses, SpotifySettings
):
    """Everything the ingestion service and worker read from the environment."""

    grpc_port: int = Field(default=50052, ge=0, le=65535)
    mongodb_database: str = "echostats_ingestion"

    # -- periodic scheduler (ECHOSTATS_SYNC_INTERVAL_SECONDS, ECHOSTATS_SCHEDULER_LEASE_*) --
    # Spotify keeps only the last 50 plays reachable and a play lasts >= 30 s, so polling
    # more often than every ~25 minutes loses nothing; 15 minutes leaves a margin.
    sync_interval_seconds: float = Field(default=900.0, gt=0)
    # The lease that makes one worker replica the scheduler; a dead leader's lease lapses
    # after this long and another replica takes over.
    scheduler_lease_ttl_seconds: float = Field(default=60.0, gt=0)
    # How often a replica tries to take or renew the lease (well under the TTL).
    scheduler_lease_renew_seconds: float = Field(default=15.0, gt=0)
    # Page size when reading auth's ListActiveUsers.
    scheduler_users_page_size: int = Field(default=500, ge=1, le=1000)

    # -- worker lanes (ECHOSTATS_SYNC_CONCURRENCY, ECHOSTATS_IMPORT_CONCURRENCY) -----------
    # Separate lanes, so a long import never holds a slot a live sync needs.
    sync_concurrency: int = Field(default=4, ge=1, le=64)
    import_concurrency: int = Field(default=1, ge=1, le=16)

    # -- Redis Streams work queues (ECHOSTATS_QUEUE_*) ---------------------------------------
    # A delivery idle this long (its worker died) is claimed by another worker.
    queue_claim_idle_ms: int = Field(default=60_000, ge=100)
    # A running handler refreshes its claim this often, so long jobs are never stolen.
    queue_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # After this many deliveries a job is dead-lettered and finished as failed.
    queue_max_deliveries: int = Field(default=5, ge=1, le=100)
    queue_block_ms: int = Field(default=5_000, ge=10)
    queue_maxlen: int = Field(default=100_000, ge=100)
    # Unique per process unless set (a restarted worker's old deliveries are reclaimed).
    worker_consumer_name: str | None = None
    # On SIGTERM, running jobs get this long to finish; the rest are redelivered later.
    worker_shutdown_grace_seconds: float = Field(default=20.0, ge=0)

    # -- the sync pipeline (ECHOSTATS_FIRST_SYNC_MAX_PAGES, ...) ------------------------------
    # First sync (no cursor yet): how many pages of 50 to walk back from now.
    first_sync_max_pages: int = Field(default=20, ge=1, le=1000)
    # Forward paging safety net: Spotify serves at most a few pages after a cursor.
    sync_max_forward_pages: int = Field(default=200, ge=1, le=10_000)
    # The plays-stored fact stream (analytics consumes it) is trimmed to about this length.
    plays_events_maxlen: int = Field(default=100_000, ge=100)

    # -- the demo user's synthetic history (ECHOSTATS_DEMO_HISTORY_*) ------------------------
    demo_history_months: int = Field(default=13, ge=1, le=120)
    demo_history_plays_per_day: float = Field(default=40.0, gt=0, le=500)
    demo_history_batch_size: int = Field(default=2_000, ge=1, le=100_000)
    # The listener's local time zone, for the daily rhythm of the generated plays.
    demo_history_timezone: str = "UTC"
    # Must match the simulator's catalog (SIMULATOR_CATALOG_SEED / _TRACKS), so every demo
    # track exists there and later enrichment finds it.
    demo_catalog_seed: int = 20240101
    demo_catalog_tracks: int = Field(default=10_000, ge=100)

    # -- privacy-export imports (ECHOSTATS_IMPORT_*) -----------------------------------------
    # Largest upload accepted (declared size and bytes actually received); 413 above it.
    import_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    # Rows per insert and per progress update; also bounds the worker's memory (two batches
    # queued between the parsing thread and the writer, one being written).
    import_batch_size: int = Field(default=5_000, ge=1, le=100_000)
    # Spotify's own rule: a stream counts as a play from 30 s on.
    import_min_ms_played: int = Field(default=30_000, ge=0)
    # Private-session plays are the user's listening too; kept unless switched off.
    import_keep_incognito: bool = True
    # GridFS chunk size of stored uploads. 1 MiB chunks broke downloads on FerretDB (a
    # cursor batch of ~100 chunks exceeded the message size: ProtocolError); keep it small.
    import_chunk_size_bytes: int = Field(default=255 * 1024, ge=16 * 1024, le=512 * 1024)
    # Where uploads are spooled for parsing (None: the system temp directory).
    import_spool_dir: str | None = None
    # Zip safety: refuse archives with more members, more uncompressed bytes in total, or a
    # member that expands more than this ratio (zip bombs).
    import_archive_max_entries: int = Field(default=1_000, ge=1)
    import_archive_max_uncompressed_bytes: int = Field(default=4 * 1024 * 1024 * 1024, ge=1)
    import_archive_max_ratio: float = Field(default=100.0, gt=1)

    @model_validator(mode="after")
    def _check_timings(self) -> Self:
        # A heartbeat slower than the claim idle time would let healthy long jobs be
        # stolen; a lease renewed less often than its TTL would lapse between renewals.
        if self.queue_heartbeat_seconds * 1000 >= self.queue_claim_idle_ms:
            raise ValueError("queue_heartbeat_seconds must be shorter than queue_claim_idle_ms")
        if self.scheduler_lease_renew_seconds >= self.scheduler_lease_ttl_seconds:
            raise ValueError(
                "scheduler_lease_renew_seconds must be shorter than scheduler_lease_ttl_seconds"
            )
        return self
