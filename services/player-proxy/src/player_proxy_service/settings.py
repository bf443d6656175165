"""Settings of the player-proxy service."""

from __future__ import annotations

from pydantic import Field

from echostats_platform.settings import (
    CommonSettings,
    GrpcServerSettings,
    SecretsGuard,
    ServiceAddresses,
    SpotifySettings,
)


class PlayerProxySettings(
    SecretsGuard, CommonSettings, GrpcServerSettings, ServiceAddresses, SpotifySettings
):
    """Everything the player-proxy service reads from the environment."""

    grpc_port: int = Field(default=50055, ge=0, le=65535)
    # Upcoming queue items returned when the caller does not say (the API documents 20).
    queue_max_items: int = Field(default=20, ge=1, le=50)
    # Followed artists: Spotify pages by cursor; at most this many pages per request.
    followed_artists_max_pages: int = Field(default=10, ge=1, le=100)
