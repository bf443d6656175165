"""Settings of the ingestion service."""

from __future__ import annotations

from pydantic import Field

from echostats_platform.settings import (
    CommonSettings,
    GrpcServerSettings,
    SecretsGuard,
    ServiceAddresses,
)


class IngestionSettings(SecretsGuard, CommonSettings, GrpcServerSettings, ServiceAddresses):
    """Everything the ingestion service reads from the environment."""

    grpc_port: int = Field(default=50052, ge=0, le=65535)
    mongodb_database: str = "echostats_ingestion"
