"""Fixtures for the auth service tests: real Redis and FerretDB, a real Spotify simulator.

Redis and FerretDB are the session's shared servers from the devstack's pytest plugin;
each test module gets a MongoDB database of its own, dropped at the end. The simulator
runs in-process (uvicorn, in the test's event loop) on a free loopback port, so the auth
service reaches it over real HTTP exactly as it reaches Spotify.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from auth_service.settings import AuthSettings
from echostats_devstack.pytest_plugin import FerretDBServer, RedisServer
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from echostats_platform.settings import ServiceAddresses
from spotify_simulator import SimulatorConfig, create_app

LOOPBACK = "127.0.0.1"
# The simulator's registered app; AuthSettings must present the same credentials.
SIM_CLIENT_ID = "echostats-dev-client"
SIM_CLIENT_SECRET = "echostats-dev-secret"
# Seconds the test waits for the in-process simulator to accept connections.
SIMULATOR_START_TIMEOUT = 10.0


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


class _InProcessServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C and SIGTERM belong to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the test runner's handlers in place (uvicorn would swallow Ctrl-C)."""
        yield


@pytest.fixture(scope="module")
async def simulator() -> AsyncIterator[Simulator]:
    """The Spotify simulator served by uvicorn on a free loopback port, for one module."""
    # Bound here (port 0) and handed to uvicorn, so no other process can take the port
    # between picking and binding it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = int(sock.getsockname()[1])
    config = SimulatorConfig(
        host=LOOPBACK, port=port, client_id=SIM_CLIENT_ID, client_secret=SIM_CLIENT_SECRET
    )
    server = _InProcessServer(
        uvicorn.Config(create_app(config), lifespan="off", log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(SIMULATOR_START_TIMEOUT):
            while not server.started:
                if serving.done():
                    serving.result()  # raises what stopped it
                    raise RuntimeError("the simulator stopped before it was ready")
                await asyncio.sleep(0.01)
        url = f"http://{LOOPBACK}:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield Simulator(url=url, http=http)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        sock.close()


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
