"""Fixtures shared by the gateway tests: a client of the session's real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from echostats_devstack.pytest_plugin import RedisServer
from gateway.ratelimit import KEY_PREFIX


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of the shared redis-server, with no rate-limit buckets left from before."""
    client = Redis.from_url(
        redis_server.url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1
    )
    # The server is shared by the whole session: remove only the keys the gateway owns.
    stale = [key async for key in client.scan_iter(match=KEY_PREFIX + "*")]
    if stale:
        await client.delete(*stale)
    yield client
    await client.aclose()
