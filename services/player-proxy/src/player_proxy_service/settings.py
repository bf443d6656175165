"""Settings of the player-proxy service."""

from __future__ import annotations

from pydantic import Field

from echostats_platform.settings import (
    CommonSettings,
    GrpcServerSettings,
    SecretsGuard,
    ServiceAddresses,
)


class PlayerProxySettings(SecretsGuard, CommonSettings, GrpcServerSettings, ServiceAddresses):
    """Everything the player-proxy service reads from the environment."""

    grpc_port: int = Field(default=50055, ge=0, le=65535)
