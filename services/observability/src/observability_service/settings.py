"""Settings of the observability service."""

from __future__ import annotations

from pydantic import Field

from echostats_platform.settings import (
    CommonSettings,
    GrpcServerSettings,
    SecretsGuard,
    ServiceAddresses,
)


class ObservabilitySettings(SecretsGuard, CommonSettings, GrpcServerSettings, ServiceAddresses):
    """Everything the observability service reads from the environment."""

    grpc_port: int = Field(default=50056, ge=0, le=65535)
    mongodb_database: str = "echostats_observability"
    github_api_url: str = "https://api.github.com"
    github_repository: str = "spotify-devs/echostats"
    update_check_cache_seconds: int = Field(default=3600, ge=0)
    # When GitHub cannot be reached, retry after this long rather than on every request.
    update_check_failure_cache_seconds: int = Field(default=300, ge=0)
    update_check_timeout_seconds: float = Field(default=5.0, gt=0)

    # A pending or running job whose record has not changed for this long is taken for the
    # work of a lost worker: the reaper fails it and frees its group for a new job.
    job_stale_after_seconds: int = Field(default=30 * 60, ge=1)
    job_reaper_interval_seconds: float = Field(default=60.0, gt=0)

    # Outbound call records older than this are deleted (TTL index on MongoDB, plus a
    # periodic sweep that also covers FerretDB, which has no TTL indexes).
    api_log_retention_days: int = Field(default=30, ge=1)
    api_log_retention_interval_seconds: float = Field(default=3600.0, gt=0)

    # While the database is down at start-up, index creation is retried this often.
    index_retry_interval_seconds: float = Field(default=5.0, gt=0)
