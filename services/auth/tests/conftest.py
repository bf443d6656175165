"""Fixtures for the auth service tests: real Redis and FerretDB, a real Spotify simulator.

Redis and FerretDB are the session's shared servers from the devstack's pytest plugin;
each test module gets a MongoDB database of its own, dropped at the end. The simulator
runs in-process (uvicorn, in the test's event loop) on a free loopback port, so the auth
service reaches it over real HTTP exactly as it reaches Spotify.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from auth_service.settings import AuthSettings
from echostats_devstack.pytest_plugin import FerretDBServer, RedisServer
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from echostats_platform.settings import ServiceAddresses
from spotify_simulator.in_process import serve_in_process

LOOPBACK = "127.0.0.1"
# The simulator's registered app; AuthSettings must present the same credentials.
SIM_CLIENT_ID = "echostats-dev-client"
SIM_CLIENT_SECRET = "echostats-dev-secret"


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a URL, one value each."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


@dataclass
class Simulator:
    """The running simulator: its base URL and a client for its control API."""

    url: str
    http: httpx.AsyncClient

    async def add_user(self, **fields: Any) -> str:
        """Create a fresh simulated Spotify user (so tests never share one); returns its id."""
        user_id = f"test_{uuid.uuid4().hex[:12]}"
        response = await self.http.post("/_sim/users", json={"id": user_id, **fields})
        assert response.status_code == 201, response.text
        return user_id

    async def authorize(self, authorize_url: str, *, sim_user: str) -> dict[str, str]:
        """Play the browser at /authorize; returns the query of the redirect back to us."""
        # Appended by hand: httpx's `params=` would replace the URL's own query.
        response = await self.http.get(f"{authorize_url}&sim_user={sim_user}")
        assert response.status_code == 302, response.text
        return query_of(response.headers["location"])

    async def token_requests(self) -> int:
        """How many POST /api/token requests (code exchanges and refreshes) it has served."""
        response = await self.http.get(
            "/_sim/requests", params={"path_prefix": "/api/token", "method": "POST"}
        )
        response.raise_for_status()
        return int(response.json()["count"])

    async def revoke_refresh_tokens(self, user_id: str) -> int:
        """Revoke the user's refresh tokens at Spotify (the user removed the app)."""
        response = await self.http.post("/_sim/tokens/revoke", json={"user_id": user_id})
        response.raise_for_status()
        return int(response.json()["revoked"])

    async def me(self, access_token: str) -> httpx.Response:
        """GET /v1/me with an access token, to prove the token is real."""
        return await self.http.get("/v1/me", headers={"Authorization": f"Bearer {access_token}"})


@pytest.fixture(scope="module")
async def simulator() -> AsyncIterator[Simulator]:
    """The Spotify simulator served by uvicorn on a free loopback port, for one module."""
    async with (
        serve_in_process(client_id=SIM_CLIENT_ID, client_secret=SIM_CLIENT_SECRET) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        yield Simulator(url=url, http=http)


@pytest.fixture(scope="module")
async def auth_settings(
    redis_server: RedisServer, ferretdb_server: FerretDBServer
) -> AsyncIterator[AuthSettings]:
    """Settings on the shared Redis and FerretDB, with a database of this module's own.

    Spotify and the peer services point at the discard port (nothing listens there); a
    test module swaps in the simulator's URL, so nothing here can reach the real Spotify.
    """
    nowhere = f"{LOOPBACK}:9"
    # Peer services are not part of these tests: calls to them fail fast, and a stack a
    # developer runs on the default ports is never touched.
    peers = {name: nowhere for name in ServiceAddresses.model_fields if name.endswith("_addr")}
    settings = AuthSettings(
        **peers,
        environment="test",
        redis_url=redis_server.url,
        mongodb_uri=ferretdb_server.uri,
        mongodb_database=f"echostats_auth_test_{uuid.uuid4().hex[:12]}",
        spotify_accounts_url=f"http://{nowhere}",
        spotify_api_url=f"http://{nowhere}",
        spotify_client_id=SIM_CLIENT_ID,
        spotify_client_secret=SIM_CLIENT_SECRET,
        grpc_host=LOOPBACK,
        # Explicit, so an ECHOSTATS_DEV_LOGIN_ENABLED in the developer's shell changes nothing.
        dev_login_enabled=None,
    )
    yield settings
    mongo = create_mongo_client(settings, app_name="auth-tests-cleanup")
    try:
        await mongo.drop_database(settings.mongodb_database)
    finally:
        await mongo.close()


@pytest.fixture(scope="module")
async def database(auth_settings: AuthSettings) -> AsyncIterator[AsyncDatabase]:
    """This module's MongoDB database, through the client factory the service uses."""
    mongo = create_mongo_client(auth_settings, app_name="auth-tests")
    try:
        yield mongo[auth_settings.mongodb_database]
    finally:
        await mongo.close()


@pytest.fixture
async def redis(auth_settings: AuthSettings) -> AsyncIterator[Redis]:
    """A Redis client built like the service's (decoded responses, short timeouts)."""
    client = create_redis(auth_settings)
    try:
        yield client
    finally:
        await client.aclose()
