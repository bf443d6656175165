"""Simulator configuration: the registered app, lifetimes, app mode and knobs.

`SimulatorConfig` is an immutable value built in code (tests) or from `SIMULATOR_*`
environment variables (`SimulatorConfig.from_env`, used by `python -m spotify_simulator`).
`Mode` lives here, not in `modes.py`, so that every module can import it without cycles.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090
DEFAULT_CLIENT_ID = "echostats-dev-client"
# Documented development default for the simulator's one registered app; not a real secret.
DEFAULT_CLIENT_SECRET = "echostats-dev-secret"  # noqa: S105


class Mode(StrEnum):
    """Which kind of Spotify app the simulator pretends the client is."""

    EXTENDED = "extended"  # Extended Quota Mode: the full API
    DEVELOPMENT = "development"  # Development Mode: endpoints and fields removed (ref §4)


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything a simulator process needs; defaults match `make dev`."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    # Empty: any loopback (127.0.0.1 / [::1], any port) or https redirect URI is accepted.
    # Non-empty: only these URIs, like an app registered in the Developer Dashboard
    # (a loopback URI listed without a port accepts any port, as Spotify does).
    redirect_uris: tuple[str, ...] = ()
    mode: Mode = Mode.EXTENDED
    access_token_ttl_s: int = 3600
    auth_code_ttl_s: int = 600
    # Spotify refresh tokens die 6 months after the user's authorization (ref §1, 2026).
    # None disables the limit.
    refresh_token_ttl_s: int | None = 180 * 24 * 3600
    # Sliding-window rate limit per app (ref §6); None = off.
    rate_limit: int | None = None
    rate_limit_window_s: float = 30.0
    catalog_seed: int = 20_240_101
    catalog_tracks: int = 10_000
    request_log_size: int = 10_000
    # Recently-played reachability: None keeps every logged play reachable; Spotify itself
    # only serves the last 50 (ref §2), which tests can show by setting 50.
    recent_window: int | None = None
    # Plays each seeded user has at start and after reset (from echostats_synthetic).
    seeded_plays: int = 30

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65_535:
            raise ValueError(f"port out of range: {self.port}")
        if self.access_token_ttl_s <= 0 or self.auth_code_ttl_s <= 0:
            raise ValueError("token and code lifetimes must be positive")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be positive or None")
        if self.catalog_tracks < 1:
            raise ValueError("catalog_tracks must be at least 1")
        if self.recent_window is not None and self.recent_window < 1:
            raise ValueError("recent_window must be positive or None")
        if self.seeded_plays < 0:
            raise ValueError("seeded_plays must not be negative")
        # Coerce plain strings (from env or tests) to the enum.
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "redirect_uris", tuple(self.redirect_uris))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SimulatorConfig:
        """Build a config from SIMULATOR_* variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        if value := env.get("SIMULATOR_HOST"):
            kwargs["host"] = value
        if value := env.get("SIMULATOR_PORT"):
            kwargs["port"] = int(value)
        if value := env.get("SIMULATOR_CLIENT_ID"):
            kwargs["client_id"] = value
        if value := env.get("SIMULATOR_CLIENT_SECRET"):
            kwargs["client_secret"] = value
        if value := env.get("SIMULATOR_MODE"):
            kwargs["mode"] = Mode(value.strip().lower())
        if value := env.get("SIMULATOR_REDIRECT_URIS"):
            kwargs["redirect_uris"] = tuple(u.strip() for u in value.split(",") if u.strip())
        if value := env.get("SIMULATOR_TOKEN_TTL"):
            kwargs["access_token_ttl_s"] = int(value)
        if value := env.get("SIMULATOR_RATE_LIMIT"):
            kwargs["rate_limit"] = int(value) or None
        if value := env.get("SIMULATOR_CATALOG_SEED"):
            kwargs["catalog_seed"] = int(value)
        if value := env.get("SIMULATOR_CATALOG_TRACKS"):
            kwargs["catalog_tracks"] = int(value)
        if value := env.get("SIMULATOR_RECENT_WINDOW"):
            kwargs["recent_window"] = int(value) or None
        if value := env.get("SIMULATOR_SEEDED_PLAYS"):
            kwargs["seeded_plays"] = int(value)
        return cls(**kwargs)  # type: ignore[arg-type]
