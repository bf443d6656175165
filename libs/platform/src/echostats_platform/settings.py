"""Typed settings read from the environment (prefix ECHOSTATS_), composed per process.

Each process declares one settings class built from the mixins below, builds it once at
start-up and passes it in; nothing reads os.environ deep in the code. Outside development,
demo and test, default secrets are refused at start-up.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

VERSION = "0.1.0"

# Development-only defaults. Production refuses every one of them (see _refuse_defaults).
DEV_SESSION_SECRET = "dev-only-session-secret-change-me-0123456789"  # noqa: S105
DEV_TOKEN_KEY = "dev:" + base64.urlsafe_b64encode(b"echostats-dev-only-token-key-32b").decode()
DEV_SPOTIFY_CLIENT_SECRET = "echostats-dev-secret"  # noqa: S105


class Environment(StrEnum):
    """Where the process runs; decides which unsafe conveniences are allowed."""

    DEVELOPMENT = "development"
    DEMO = "demo"
    TEST = "test"
    PRODUCTION = "production"

    @property
    def allows_dev_defaults(self) -> bool:
        """Whether built-in development secrets and dev-login may be used."""
        return self is not Environment.PRODUCTION


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class CommonSettings(BaseSettings):
    """Settings every process has: environment, logging, MongoDB, Redis, metrics."""

    model_config = SettingsConfigDict(env_prefix="ECHOSTATS_", extra="ignore")

    environment: Environment = Environment.PRODUCTION
    version: str = VERSION
    log_level: str = "INFO"
    mongodb_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    # Short, so a request fails over to 503 well inside the gateway's 30 s budget.
    mongodb_timeout_ms: int = Field(default=2500, ge=100)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_seconds: float = Field(default=2.0, gt=0)
    # Prometheus metrics on an internal port; 0 turns the endpoint off.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"


class GrpcServerSettings(BaseSettings):
    """Where a service listens for gRPC."""

    model_config = SettingsConfigDict(env_prefix="ECHOSTATS_", extra="ignore")

    grpc_host: str = "0.0.0.0"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    grpc_shutdown_grace_seconds: float = Field(default=10.0, ge=0)


class ServiceAddresses(BaseSettings):
    """gRPC targets of the services (`host:port` or `dns:///name:port` for round robin)."""

    model_config = SettingsConfigDict(env_prefix="ECHOSTATS_", extra="ignore")

    auth_addr: str = "127.0.0.1:50051"
    ingestion_addr: str = "127.0.0.1:50052"
    catalog_addr: str = "127.0.0.1:50053"
    analytics_addr: str = "127.0.0.1:50054"
    player_proxy_addr: str = "127.0.0.1:50055"
    observability_addr: str = "127.0.0.1:50056"
    grpc_default_timeout_seconds: float = Field(default=10.0, gt=0)

    def service_targets(self) -> dict[str, str]:
        """Every service's name and target, in a stable order."""
        return {
            "auth": self.auth_addr,
            "ingestion": self.ingestion_addr,
            "catalog": self.catalog_addr,
            "analytics": self.analytics_addr,
            "player-proxy": self.player_proxy_addr,
            "observability": self.observability_addr,
        }


class SpotifySettings(BaseSettings):
    """The Spotify app and the base URLs (real Spotify, or the simulator)."""

    model_config = SettingsConfigDict(env_prefix="ECHOSTATS_", extra="ignore")

    spotify_client_id: str = "echostats-dev-client"
    # Empty means a public PKCE client (no secret); Spotify then rotates refresh tokens.
    spotify_client_secret: str = DEV_SPOTIFY_CLIENT_SECRET
    spotify_redirect_uri: str = "http://127.0.0.1:8000/api/v1/auth/callback"
    spotify_accounts_url: str = "https://accounts.spotify.com"
    spotify_api_url: str = "https://api.spotify.com"
    spotify_timeout_seconds: float = Field(default=10.0, gt=0)
    spotify_max_retries: int = Field(default=3, ge=0, le=10)
    # A Retry-After longer than this is not slept through: the call fails as rate limited
    # and background work pauses instead.
    spotify_max_retry_after_seconds: float = Field(default=30.0, ge=0)


class TokenEncryptionSettings(BaseSettings):
    """AES-256-GCM keys for Spotify tokens at rest: `kid:base64key,...`, first one active."""

    model_config = SettingsConfigDict(env_prefix="ECHOSTATS_", extra="ignore")

    token_encryption_keys: CsvList = Field(default_factory=lambda: [DEV_TOKEN_KEY])

    @field_validator("token_encryption_keys", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("token_encryption_keys")
    @classmethod
    def _check_keys(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one token encryption key is required")
        seen: set[str] = set()
        for entry in value:
            kid, sep, b64 = entry.partition(":")
            if not sep or not kid:
                raise ValueError("each key must look like <key id>:<base64 32-byte key>")
            if kid in seen:
                raise ValueError(f"duplicate token encryption key id {kid!r}")
            seen.add(kid)
            try:
                raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"key {kid!r} is not valid base64") from exc
            if len(raw) != 32:
                raise ValueError(f"key {kid!r} must decode to 32 bytes (AES-256)")
        return value

    def token_keys(self) -> dict[str, bytes]:
        """The keys by id, in configuration order (the first one encrypts)."""
        keys: dict[str, bytes] = {}
        for entry in self.token_encryption_keys:
            kid, _, b64 = entry.partition(":")
            keys[kid] = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        return keys


def refuse_dev_defaults(settings: BaseSettings, checks: dict[str, bool]) -> None:
    """Raise when production configuration still uses a built-in development secret."""
    environment = getattr(settings, "environment", Environment.PRODUCTION)
    if environment.allows_dev_defaults:
        return
    offending = [name for name, is_default in checks.items() if is_default]
    if offending:
        raise ValueError(
            "production configuration uses development defaults for: "
            + ", ".join(sorted(offending))
            + " (set them in the environment)"
        )


class SessionSettings(BaseSettings):
    """Session tokens (JWT, HS256) and the cookie that carries them."""

    model_config = SettingsConfigDict(env_prefix="ECHOSTATS_", extra="ignore")

    session_secret: str = DEV_SESSION_SECRET
    session_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    session_cookie_name: str = "echostats_session"

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < 32:
            raise ValueError("session secret must be at least 32 characters")
        return value


class SecretsGuard:
    """Mixin: refuses development secrets in production after validation."""

    @model_validator(mode="after")
    def _refuse_defaults(self) -> Any:
        checks: dict[str, bool] = {}
        if isinstance(self, SessionSettings):
            checks["ECHOSTATS_SESSION_SECRET"] = self.session_secret == DEV_SESSION_SECRET
        if isinstance(self, TokenEncryptionSettings):
            checks["ECHOSTATS_TOKEN_ENCRYPTION_KEYS"] = DEV_TOKEN_KEY in self.token_encryption_keys
        if isinstance(self, SpotifySettings):
            checks["ECHOSTATS_SPOTIFY_CLIENT_SECRET"] = (
                self.spotify_client_secret == DEV_SPOTIFY_CLIENT_SECRET
            )
        refuse_dev_defaults(self, checks)  # type: ignore[arg-type]
        return self
