"""The leader lease on a real redis-server: exclusivity, renewal, release, takeover, leadership."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from echostats_devstack.pytest_plugin import RedisServer
from echostats_platform.lease import Lease, run_while_leader


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(
        redis_server.url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
    )
    yield client
    await client.aclose()


@pytest.fixture
def key() -> str:
    return f"test-lease:{uuid.uuid4().hex}"


async def test_only_one_of_two_owners_acquires(redis: Redis, key: str) -> None:
    first = Lease(redis, key, owner="pod-a", ttl_ms=5_000)
    second = Lease(redis, key, owner="pod-b", ttl_ms=5_000)

    results = await asyncio.gather(first.acquire(), second.acquire())

    assert sorted(results) == [False, True]
    winner, loser = (first, second) if results[0] else (second, first)
    assert await winner.held()
    assert not await loser.held()
    assert await redis.get(key) == winner.owner


async def test_holder_renews_beyond_the_original_ttl(redis: Redis, key: str) -> None:
    lease = Lease(redis, key, owner="pod-a", ttl_ms=300)
    assert await lease.acquire()

    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await lease.acquire()
        assert 200 < await redis.pttl(key) <= 300

    # 450 ms after the first acquire, well past its 300 ms ttl.
    assert await lease.held()


async def test_release_by_a_non_owner_does_nothing(redis: Redis, key: str) -> None:
    holder = Lease(redis, key, owner="pod-a", ttl_ms=5_000)
    other = Lease(redis, key, owner="pod-b", ttl_ms=5_000)
    assert await holder.acquire()

    assert await other.release() is False
    assert await holder.held()
    assert not await other.acquire()

    assert await holder.release() is True
    assert await redis.exists(key) == 0
    assert await other.acquire()


async def test_another_owner_takes_over_after_the_ttl(redis: Redis, key: str) -> None:
    crashed = Lease(redis, key, owner="pod-a", ttl_ms=200)
    successor = Lease(redis, key, owner="pod-b", ttl_ms=200)
    assert await crashed.acquire()
    assert not await successor.acquire()

    await asyncio.sleep(0.3)

    assert await successor.acquire()
    assert not await crashed.held()
    # The old holder cannot renew its way back in.
    assert not await crashed.acquire()


async def test_run_while_leader_runs_work_on_exactly_one_replica(redis: Redis, key: str) -> None:
    runs: dict[str, int] = {"pod-a": 0, "pod-b": 0}
    running: list[str] = []
    overlaps: list[list[str]] = []

    def work_for(owner: str) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            running.append(owner)
            if len(running) > 1:
                overlaps.append(list(running))
            await asyncio.sleep(0.01)
            runs[owner] += 1
            running.remove(owner)

        return work

    stops = {owner: asyncio.Event() for owner in runs}
    tasks = {
        owner: asyncio.create_task(
            run_while_leader(
                Lease(redis, key, owner=owner, ttl_ms=300),
                work_for(owner),
                interval_seconds=0.03,
                stop=stops[owner],
            )
        )
        for owner in runs
    }
    try:
        await asyncio.sleep(0.6)
        leaders = [owner for owner, count in runs.items() if count]
        assert len(leaders) == 1
        leader = leaders[0]
        follower = next(owner for owner in runs if owner != leader)
        assert runs[leader] >= 5

        # The leader stops and releases: the follower takes over without waiting a ttl.
        stops[leader].set()
        await asyncio.wait_for(tasks[leader], timeout=2)
        handed_over = time.monotonic()
        while runs[follower] == 0:
            assert time.monotonic() - handed_over < 0.2
            await asyncio.sleep(0.01)
        assert await redis.get(key) == follower
    finally:
        for owner in runs:
            stops[owner].set()
        await asyncio.wait_for(asyncio.gather(*tasks.values()), timeout=2)

    assert overlaps == []
    assert await redis.exists(key) == 0


async def test_work_is_cancelled_when_the_lease_is_lost(redis: Redis, key: str) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def long_work() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    stop = asyncio.Event()
    lease = Lease(redis, key, owner="pod-a", ttl_ms=300)
    task = asyncio.create_task(run_while_leader(lease, long_work, interval_seconds=0.1, stop=stop))
    try:
        await asyncio.wait_for(started.wait(), timeout=2)
        # Another replica holds the key now (say Redis restarted empty and it won the race).
        await redis.set(key, "pod-b", px=5_000)

        # Renewals run every ttl/3 = 100 ms.
        await asyncio.wait_for(cancelled.wait(), timeout=0.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=2)

    # Stopping released nothing that was not ours.
    assert await redis.get(key) == "pod-b"


async def test_failing_work_is_retried_next_interval(redis: Redis, key: str) -> None:
    calls: list[float] = []

    async def flaky_work() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("scheduler hiccup")

    stop = asyncio.Event()
    lease = Lease(redis, key, owner="pod-a", ttl_ms=1_000)
    task = asyncio.create_task(
        run_while_leader(lease, flaky_work, interval_seconds=0.05, stop=stop)
    )
    try:
        deadline = time.monotonic() + 2
        while len(calls) < 3:
            assert time.monotonic() < deadline, "work was not retried"
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=2)

    assert len(calls) >= 3
    assert not task.cancelled() and task.exception() is None


async def test_rejects_an_interval_the_lease_cannot_outlive(redis: Redis, key: str) -> None:
    async def work() -> None:
        return None

    with pytest.raises(ValueError, match="shorter than the lease ttl"):
        await run_while_leader(
            Lease(redis, key, owner="pod-a", ttl_ms=1_000),
            work,
            interval_seconds=1.0,
            stop=asyncio.Event(),
        )
