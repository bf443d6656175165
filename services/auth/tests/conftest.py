"""Fixtures for the auth service tests: real Redis and FerretDB, a real Spotify simulator.

Redis and FerretDB are the session's shared servers from the devstack's pytest plugin;
each test module gets a MongoDB database of its own, dropped at the end. The simulator
runs in-process (uvicorn, in the test's event loop) on a free loopback port, so the auth
service reaches it over real HTTP exactly as it reaches Spotify.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from auth_service.settings import AuthSettings
from echostats_devstack.pytest_plugin import FerretDBServer, RedisServer
from echostats_devstack.simulator_control import SimulatorControl as Simulator
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from echostats_platform.settings import ServiceAddresses
from spotify_simulator.in_process import serve_in_process

LOOPBACK = "127.0.0.1"
# The simulator's registered app; AuthSettings must present the same credentials.
SIM_CLIENT_ID = "echostats-dev-client"
SIM_CLIENT_SECRET = "echostats-dev-secret"


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
