"""The Redis sliding-window limiter and client-address resolution, against a real redis-server."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time

import pytest
from redis.asyncio import Redis

from echostats_devstack.pytest_plugin import RedisServer
from gateway.ratelimit import KEY_PREFIX, RateLimiter, client_address


def _client(server: RedisServer) -> Redis:
    """Another client of the shared server (a second gateway replica, an admin)."""
    return Redis.from_url(
        server.url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1
    )


async def test_admits_up_to_the_limit_then_rejects(redis: Redis) -> None:
    limiter = RateLimiter(redis, limit=3, window_seconds=60)

    decisions = [await limiter.hit("1.2.3.4") for _ in range(4)]

    assert all(d is not None for d in decisions)
    assert [d.allowed for d in decisions if d] == [True, True, True, False]
    assert [d.remaining for d in decisions if d] == [2, 1, 0, 0]
    rejected = decisions[3]
    assert rejected is not None
    assert 1 <= rejected.retry_after <= 60
    assert 1 <= rejected.reset_seconds <= 60
    assert rejected.headers() == {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(rejected.reset_seconds),
        "Retry-After": str(rejected.retry_after),
    }
    admitted = decisions[0]
    assert admitted is not None and "Retry-After" not in admitted.headers()


async def test_rejected_requests_are_not_recorded_and_key_expires(redis: Redis) -> None:
    limiter = RateLimiter(redis, limit=2, window_seconds=30)
    for _ in range(5):
        await limiter.hit("5.6.7.8")

    key = KEY_PREFIX + "5.6.7.8"
    assert await redis.zcard(key) == 2
    assert 0 < await redis.pttl(key) <= 30_000


async def test_window_slides_instead_of_resetting(redis: Redis) -> None:
    limiter = RateLimiter(redis, limit=2, window_seconds=1.0)
    first = await limiter.hit("c")
    await asyncio.sleep(0.5)
    second = await limiter.hit("c")
    assert first and first.allowed and second and second.allowed
    assert (await limiter.hit("c")).allowed is False  # type: ignore[union-attr]

    # At t=1.1 the first request has left the window but the second (t=0.5) has not: a
    # fixed window would have reset and admitted two; the sliding window admits one.
    await asyncio.sleep(0.6)
    after = [await limiter.hit("c") for _ in range(2)]
    assert [d.allowed for d in after if d] == [True, False]


async def test_clients_are_counted_separately(redis: Redis) -> None:
    limiter = RateLimiter(redis, limit=1, window_seconds=60)

    assert (await limiter.hit("10.0.0.1")).allowed  # type: ignore[union-attr]
    assert not (await limiter.hit("10.0.0.1")).allowed  # type: ignore[union-attr]
    assert (await limiter.hit("10.0.0.2")).allowed  # type: ignore[union-attr]


async def test_replicas_share_one_budget(redis: Redis, redis_server: RedisServer) -> None:
    other_client = _client(redis_server)
    try:
        replica_a = RateLimiter(redis, limit=4, window_seconds=60)
        replica_b = RateLimiter(other_client, limit=4, window_seconds=60)
        results = []
        for i in range(6):
            limiter = replica_a if i % 2 == 0 else replica_b
            results.append(await limiter.hit("shared"))
        assert [d.allowed for d in results if d] == [True] * 4 + [False] * 2
    finally:
        await other_client.aclose()


async def test_concurrent_hits_never_exceed_the_limit(redis: Redis) -> None:
    limiter = RateLimiter(redis, limit=10, window_seconds=60)

    decisions = await asyncio.gather(*(limiter.hit("burst") for _ in range(50)))

    assert sum(1 for d in decisions if d and d.allowed) == 10


async def test_fails_open_when_redis_is_down(
    redis: Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        limiter = RateLimiter(redis, limit=5, window_seconds=60, backoff_seconds=0.3)
        assert await limiter.hit("x") is not None

        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="gateway.ratelimit"):
            assert await limiter.hit("x") is None
        assert any("failing open" in r.getMessage() for r in caplog.records)

        # During the back-off Redis is not even tried, so a dead Redis costs nothing.
        started = time.monotonic()
        assert await limiter.hit("x") is None
        assert time.monotonic() - started < 0.05

        # Once Redis is back and the back-off has passed, limiting resumes.
        redis_server.start()
        await asyncio.sleep(0.35)
        decision = await limiter.hit("x")
        assert decision is not None and decision.allowed
    finally:
        # The server is shared by the session: make sure it is up for the tests that follow.
        redis_server.start()


async def test_slow_redis_is_bounded_by_the_timeout(
    redis: Redis, redis_server: RedisServer
) -> None:
    limiter = RateLimiter(redis, limit=5, window_seconds=60, timeout_seconds=0.2)
    await limiter.hit("warm-up")  # connect and load the script before Redis stalls
    admin = _client(redis_server)
    try:
        # CLIENT PAUSE stalls every client's commands: a Redis that is up but not answering.
        await admin.execute_command("CLIENT", "PAUSE", "700", "ALL")
        started = time.monotonic()
        assert await limiter.hit("y") is None
        assert time.monotonic() - started < 0.5
    finally:
        await asyncio.sleep(0.75)  # let the pause lapse before the next test
        await admin.aclose()


TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # An untrusted peer's X-Forwarded-For is ignored, whatever it claims.
        ("1.2.3.4", ["9.9.9.9"], "1.2.3.4"),
        ("1.2.3.4", [], "1.2.3.4"),
        # A trusted proxy: the right-most address it (or the proxies before it) appended.
        ("10.0.0.5", ["9.9.9.9"], "9.9.9.9"),
        # The client forged 7.7.7.7; the proxy appended the real address last.
        ("10.0.0.5", ["7.7.7.7, 9.9.9.9"], "9.9.9.9"),
        # Two trusted hops: skip them both.
        ("10.0.0.5", ["7.7.7.7, 9.9.9.9, 10.1.1.1"], "9.9.9.9"),
        # Several headers are one list, in order.
        ("10.0.0.5", ["7.7.7.7", "9.9.9.9"], "9.9.9.9"),
        # Nothing forwarded: the proxy itself is the client.
        ("10.0.0.5", [], "10.0.0.5"),
        # Only trusted hops: the farthest one seen.
        ("10.0.0.5", ["10.2.2.2"], "10.2.2.2"),
        # Garbage where an address should be never becomes an identity.
        ("10.0.0.5", ["9.9.9.9, not-an-ip"], "10.0.0.5"),
        # IPv4-mapped IPv6 peer of a trusted IPv4 proxy.
        ("::ffff:10.0.0.5", ["9.9.9.9"], "9.9.9.9"),
        ("fd00::1", ["2001:db8::1"], "2001:db8::1"),
        # Addresses are normalised, so spellings of one address share a bucket.
        ("2001:0db8:0000::0001", [], "2001:db8::1"),
        (None, ["9.9.9.9"], "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded_for: list[str], expected: str) -> None:
    assert client_address(peer, forwarded_for, TRUSTED) == expected
