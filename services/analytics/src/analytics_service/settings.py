"""Settings of the analytics service."""

from __future__ import annotations

from pydantic import Field

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
