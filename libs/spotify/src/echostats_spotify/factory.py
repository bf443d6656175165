"""Builds the process's one HTTP connection pool to Spotify and the clients on top of it.

Build these once at start-up and pass them in; `SpotifyClients.aclose` closes the pool
on shutdown. The auth service, whose token provider needs the Accounts client, builds the
pieces itself: `create_http_client`, then `SpotifyAccountsClient`, then `SpotifyClient`.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from echostats_platform.settings import VERSION, SpotifySettings
from echostats_spotify.accounts import SpotifyAccountsClient
from echostats_spotify.capabilities import CapabilityRegistry
from echostats_spotify.client import SpotifyClient, TokenProvider
from echostats_spotify.priority import PriorityGate
from echostats_spotify.recording import CallRecorder
from echostats_spotify.transport import RetryPolicy

# Spotify's limit is per app and it advises about one request at a time per token, so a
# process needs few connections; keep-alive saves a TLS handshake per call.
DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_MAX_KEEPALIVE = 16


def create_http_client(
    settings: SpotifySettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> httpx.AsyncClient:
    """An AsyncClient for Spotify: timeouts, pool limits, EchoStats User-Agent, no redirects."""
    timeout = settings.spotify_timeout_seconds
    version = getattr(settings, "version", VERSION)
    return httpx.AsyncClient(
        # Calls pass their own (budget-bounded) timeout; this is the ceiling for anything
        # else, with a shorter connect phase so an unreachable host fails fast.
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(DEFAULT_MAX_KEEPALIVE, max_connections),
            keepalive_expiry=30.0,
        ),
        headers={"User-Agent": f"EchoStats/{version}"},
        # Spotify does not redirect API calls; following one could leak the Bearer token.
        follow_redirects=False,
        transport=transport,
    )


@dataclass(frozen=True, slots=True)
class SpotifyClients:
    """The connection pool and both clients built on it."""

    http: httpx.AsyncClient
    accounts: SpotifyAccountsClient
    api: SpotifyClient

    async def aclose(self) -> None:
        """Close the connection pool (call once on shutdown)."""
        await self.http.aclose()


def build_spotify_clients(
    settings: SpotifySettings,
    *,
    caller: str,
    recorder: CallRecorder,
    token_provider: TokenProvider,
    http: httpx.AsyncClient | None = None,
    policy: RetryPolicy | None = None,
    background_concurrency: int = 4,
    capabilities: CapabilityRegistry | None = None,
) -> SpotifyClients:
    """Build the pool (unless given), the Accounts client and the Web API client."""
    http = http or create_http_client(settings)
    accounts = SpotifyAccountsClient(settings, http, recorder, caller=caller, policy=policy)
    api = SpotifyClient(
        settings,
        http,
        recorder,
        token_provider,
        caller=caller,
        policy=policy,
        gate=PriorityGate(background_concurrency),
        capabilities=capabilities,
    )
    return SpotifyClients(http=http, accounts=accounts, api=api)
