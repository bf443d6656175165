"""Fixtures for the Spotify client tests: a fake Spotify peer (httpx.MockTransport), a
recording recorder, a counting token provider, a fake sleep, and a client of the
session's real redis-server (`redis_server` from the devstack's pytest plugin)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from echostats_devstack.pytest_plugin import RedisServer
from echostats_platform.settings import SpotifySettings
from echostats_spotify import (
    ApiCallRecord,
    PriorityGate,
    RetryPolicy,
    SpotifyAccountsClient,
    SpotifyClient,
)
from echostats_spotify.capabilities import CapabilityRegistry

API = "https://api.spotify.test"
ACCOUNTS = "https://accounts.spotify.test"


class ListRecorder:
    """Keeps every record, in order."""

    def __init__(self) -> None:
        self.records: list[ApiCallRecord] = []

    def record(self, rec: ApiCallRecord) -> None:
        self.records.append(rec)

    @property
    def statuses(self) -> list[int]:
        return [r.status_code for r in self.records]


class FakeTokens:
    """Hands out token-0, then token-1, ... on each forced refresh; logs every request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.generation = 0

    async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
        force_refresh = rejected_token is not None
        self.calls.append((user_id, force_refresh))
        if force_refresh:
            self.generation += 1
        return f"token-{self.generation}"

    @property
    def forced(self) -> int:
        return sum(1 for _, forced in self.calls if forced)


@dataclass
class FakeSleep:
    """Records the delays the client asked to sleep, without sleeping."""

    slept: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def make_settings(**overrides: Any) -> SpotifySettings:
    values: dict[str, Any] = {
        "spotify_client_id": "client-id",
        "spotify_client_secret": "client-secret",
        "spotify_redirect_uri": "http://127.0.0.1:8000/api/v1/auth/callback",
        "spotify_accounts_url": ACCOUNTS,
        "spotify_api_url": API,
        "spotify_timeout_seconds": 5.0,
        "spotify_max_retries": 3,
        "spotify_max_retry_after_seconds": 30.0,
    }
    values.update(overrides)
    return SpotifySettings(**values)


@dataclass
class Harness:
    """A SpotifyClient wired to a fake Spotify, with everything it touched observable."""

    client: SpotifyClient
    recorder: ListRecorder
    tokens: FakeTokens
    sleep: FakeSleep
    requests: list[httpx.Request]
    http: httpx.AsyncClient


Handler = Callable[[httpx.Request], Any]


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Harness]]:
    """Build SpotifyClient harnesses around a request handler; closes them afterwards."""
    opened: list[httpx.AsyncClient] = []

    def build(
        handler: Handler,
        *,
        settings: dict[str, Any] | None = None,
        rate_limit_jitter: float = 0.0,
        gate: PriorityGate | None = None,
        capabilities: CapabilityRegistry | None = None,
        recorder: Any = None,
        tokens: Any = None,
    ) -> Harness:
        requests: list[httpx.Request] = []

        async def observed(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            result = handler(request)
            if hasattr(result, "__await__"):
                result = await result
            return result

        http = httpx.AsyncClient(transport=httpx.MockTransport(observed))
        opened.append(http)
        sleep = FakeSleep()
        list_recorder = ListRecorder()
        fake_tokens = FakeTokens()
        client = SpotifyClient(
            make_settings(**(settings or {})),
            http,
            recorder if recorder is not None else list_recorder,
            tokens if tokens is not None else fake_tokens,
            caller="ingestion",
            policy=RetryPolicy(
                backoff_base=0.01,
                backoff_max=1.0,
                backoff_jitter=0.0,
                rate_limit_jitter=rate_limit_jitter,
                sleep=sleep,
            ),
            gate=gate,
            capabilities=capabilities,
        )
        return Harness(client, list_recorder, fake_tokens, sleep, requests, http)

    yield build
    for http in opened:
        await http.aclose()


FIXED_NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class AccountsHarness:
    """A SpotifyAccountsClient wired to a fake Accounts service."""

    accounts: SpotifyAccountsClient
    requests: list[httpx.Request]
    recorder: ListRecorder
    sleep: FakeSleep


@pytest.fixture
async def make_accounts() -> AsyncIterator[Callable[..., AccountsHarness]]:
    """Build SpotifyAccountsClient harnesses around a request handler (clock fixed)."""
    opened: list[httpx.AsyncClient] = []

    def build(handler: Handler, **settings_overrides: Any) -> AccountsHarness:
        requests: list[httpx.Request] = []

        def observed(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            return handler(request)

        http = httpx.AsyncClient(transport=httpx.MockTransport(observed))
        opened.append(http)
        recorder = ListRecorder()
        sleep = FakeSleep()
        accounts = SpotifyAccountsClient(
            make_settings(**settings_overrides),
            http,
            recorder,
            caller="auth",
            policy=RetryPolicy(backoff_base=0.0, backoff_jitter=0.0, sleep=sleep),
            clock=lambda: FIXED_NOW,
        )
        return AccountsHarness(accounts, requests, recorder, sleep)

    yield build
    for http in opened:
        await http.aclose()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """An asyncio client of the shared redis-server; each test uses a key prefix of its own."""
    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
