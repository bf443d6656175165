"""Fixtures for the observability service tests: the real gRPC server on real FerretDB and Redis.

Redis and FerretDB are the session's shared servers from the devstack's pytest plugin.
Each test module gets a MongoDB database of its own (dropped at the end) and its own
server, built by the service's `open_server(settings, port=0)` and called over a
grpc.aio channel from the kit, exactly as the gateway and the workers call it. Tests
use fresh user ids, so tests of one module share the server without sharing data.
Test modules cannot import this file (--import-mode=importlib): they get the helpers
below through fixtures and type them `Any`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from echostats.observability.v1 import observability_service_pb2_grpc as pb_grpc
from echostats_devstack.pytest_plugin import FerretDBServer, RedisServer
from echostats_grpc.client import create_channel
from echostats_platform.mongo import create_mongo_client
from observability_service.server import open_server
from observability_service.settings import ObservabilitySettings

LOOPBACK = "127.0.0.1"
RPC_TIMEOUT = 30.0


@dataclass
class ObservabilityServer:
    """A running observability server and a stub on a channel to it."""

    settings: ObservabilitySettings
    port: int
    stub: pb_grpc.ObservabilityServiceStub


@contextlib.asynccontextmanager
async def serve(settings: ObservabilitySettings) -> AsyncIterator[ObservabilityServer]:
    """Run the real observability server (port 0) for the block, with a channel to it."""
    async with open_server(settings, port=0) as built:
        await built.start()
        channel = create_channel(f"{LOOPBACK}:{built.port}", default_timeout=RPC_TIMEOUT)
        try:
            yield ObservabilityServer(
                settings, built.port, pb_grpc.ObservabilityServiceStub(channel)
            )
        finally:
            await channel.close()
            await built.stop(grace=1.0)


def make_settings(
    redis_server: RedisServer, ferretdb_server: FerretDBServer, **overrides: Any
) -> ObservabilitySettings:
    """Settings on the shared Redis and FerretDB with a fresh database; GitHub unreachable."""
    fields: dict[str, Any] = {
        "environment": "test",
        "redis_url": redis_server.url,
        "mongodb_uri": ferretdb_server.uri,
        "mongodb_database": f"echostats_observability_test_{uuid.uuid4().hex[:12]}",
        "grpc_host": LOOPBACK,
        # The discard port: nothing here can ever reach the real GitHub.
        "github_api_url": f"http://{LOOPBACK}:9",
        "index_retry_interval_seconds": 0.5,
    }
    fields.update(overrides)
    return ObservabilitySettings(**fields)


async def drop_database(settings: ObservabilitySettings) -> None:
    """Drop a test database."""
    mongo = create_mongo_client(settings, app_name="observability-tests-cleanup")
    try:
        await mongo.drop_database(settings.mongodb_database)
    finally:
        await mongo.close()


@pytest.fixture(scope="module")
async def settings_factory(
    redis_server: RedisServer, ferretdb_server: FerretDBServer
) -> AsyncIterator[Callable[..., ObservabilitySettings]]:
    """Builds settings on the session's servers: `settings_factory(**overrides)`.

    Each call gets a fresh database unless `mongodb_database` is given; every database
    made here is dropped when the module ends.
    """
    made: list[ObservabilitySettings] = []

    def factory(**overrides: Any) -> ObservabilitySettings:
        settings = make_settings(redis_server, ferretdb_server, **overrides)
        made.append(settings)
        return settings

    yield factory
    for settings in made:
        await drop_database(settings)


@pytest.fixture(scope="module")
def serve_observability() -> Callable[
    [ObservabilitySettings], contextlib.AbstractAsyncContextManager[ObservabilityServer]
]:
    """`async with serve_observability(settings) as server:` runs one more server."""
    return serve


@pytest.fixture(scope="module")
def obs_settings(settings_factory: Callable[..., ObservabilitySettings]) -> ObservabilitySettings:
    """This module's settings, with a database of its own (dropped at the end)."""
    return settings_factory()


@pytest.fixture(scope="module")
async def observability(
    obs_settings: ObservabilitySettings,
) -> AsyncIterator[ObservabilityServer]:
    """The observability server under test, one per module."""
    async with serve(obs_settings) as server:
        yield server


@pytest.fixture(scope="module")
async def database(obs_settings: ObservabilitySettings) -> AsyncIterator[AsyncDatabase]:
    """This module's database, through the client factory the service uses."""
    mongo = create_mongo_client(obs_settings, app_name="observability-tests")
    try:
        yield mongo[obs_settings.mongodb_database]
    finally:
        await mongo.close()
