"""Settings of the auth service."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from echostats_platform.settings import (
    CommonSettings,
    CsvList,
    GrpcServerSettings,
    SecretsGuard,
    ServiceAddresses,
    SessionSettings,
    SpotifySettings,
    TokenEncryptionSettings,
)

# Every scope a later endpoint needs: profile, history, top items, playlists, playback
# state and control, followed artists and saved albums.
SPOTIFY_SCOPES = [
    "user-read-private",
    "user-read-email",
    "user-read-recently-played",
    "user-top-read",
    "playlist-read-private",
    "playlist-read-collaborative",
    "user-read-playback-state",
    "user-modify-playback-state",
    "user-read-currently-playing",
    "user-follow-read",
    "user-library-read",
]


class AuthSettings(
    SecretsGuard,
    CommonSettings,
    GrpcServerSettings,
    ServiceAddresses,
    SpotifySettings,
    TokenEncryptionSettings,
    SessionSettings,
):
    """Everything the auth service reads from the environment."""

    grpc_port: int = Field(default=50051, ge=0, le=65535)
    mongodb_database: str = "echostats_auth"
    oauth_state_ttl_seconds: int = Field(default=600, ge=30)
    spotify_scopes: CsvList = Field(default_factory=lambda: list(SPOTIFY_SCOPES))
    # Refresh a stored access token when it has less than this left.
    access_token_refresh_margin_seconds: int = Field(default=60, ge=0)
    # None means "on in development/demo/test, off in production"; production never allows it.
    dev_login_enabled: bool | None = None

    @field_validator("spotify_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [scope for scope in value.replace(",", " ").split() if scope]
        return value

    @property
    def dev_login_allowed(self) -> bool:
        """Whether dev-login may sign in the demo user in this configuration."""
        if not self.environment.allows_dev_defaults:
            return False
        return self.dev_login_enabled is not False
