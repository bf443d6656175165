"""Work queues and event consumers on a real redis-server: delivery, retries, takeover, outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from echostats_devstack.pytest_plugin import RedisServer
from echostats_platform.streams import (
    DEAD_LETTER_FIELDS,
    Delivery,
    WorkQueue,
    publish_event,
)

# Small enough to keep the suite fast, large enough for a loaded CI machine.
CLAIM_IDLE_MS = 300
HEARTBEAT_SECONDS = 0.08


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    # The socket timeout of create_redis's default, so blocking reads meet the real limit.
    client = Redis.from_url(
        redis_server.url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
    )
    yield client
    await client.aclose()


@pytest.fixture
def stream() -> str:
    return f"test-streams:{uuid.uuid4().hex}"


def _queue(redis: Redis, stream: str, consumer: str = "c1", **options: Any) -> WorkQueue:
    options.setdefault("claim_idle_ms", CLAIM_IDLE_MS)
    options.setdefault("heartbeat_seconds", HEARTBEAT_SECONDS)
    return WorkQueue(redis, stream, group="workers", consumer=consumer, **options)


@contextlib.asynccontextmanager
async def _running(
    queue: WorkQueue, handler: Callable[[Delivery], Awaitable[None]], **options: Any
) -> AsyncIterator[asyncio.Task[None]]:
    """Run the consumer in the background; stop it (and surface its errors) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(queue.run(handler, stop=stop, **options))
    try:
        yield task
    finally:
        stop.set()
        if not task.done():
            await asyncio.wait_for(task, timeout=5)
        elif not task.cancelled():
            task.result()


async def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _enqueue_retrying(queue: WorkQueue, payload: dict[str, str]) -> str:
    deadline = time.monotonic() + 5
    while True:
        try:
            return await queue.enqueue(payload)
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_enqueued_message_is_handled_once_and_acked(redis: Redis, stream: str) -> None:
    queue = _queue(redis, stream)
    # Enqueued before any group exists: the group reads from the stream's start.
    message_id = await queue.enqueue({"user_id": "u1", "kind": "sync"})
    handled: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        handled.append(delivery)

    async with _running(queue, handler):
        await _eventually(lambda: len(handled) == 1)
        # Past the claim idle time: an unacked message would have come back by now.
        await asyncio.sleep(CLAIM_IDLE_MS * 2 / 1000)

    assert handled == [Delivery(message_id, {"user_id": "u1", "kind": "sync"}, 1)]
    assert await queue.pending_count() == 0


async def test_failed_handler_is_retried_after_claim_idle_with_next_attempt(
    redis: Redis, stream: str
) -> None:
    queue = _queue(redis, stream)
    attempts: list[tuple[int, float]] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append((delivery.attempt, time.monotonic()))
        if delivery.attempt == 1:
            raise RuntimeError("transient")

    async with _running(queue, handler):
        await queue.enqueue({"n": "1"})
        await _eventually(lambda: len(attempts) == 2)

    assert [attempt for attempt, _ in attempts] == [1, 2]
    # Not retried in a hot loop: the message waited out the claim idle time.
    assert attempts[1][1] - attempts[0][1] >= CLAIM_IDLE_MS / 1000 * 0.9
    assert await queue.pending_count() == 0


async def test_message_of_a_dead_consumer_is_taken_over(redis: Redis, stream: str) -> None:
    first, second = _queue(redis, stream, "c1"), _queue(redis, stream, "c2")
    started = asyncio.Event()
    cancelled: list[Delivery] = []
    taken_over: list[tuple[str, Delivery]] = []

    async def hangs(delivery: Delivery) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(delivery)
            raise

    async def succeeds(delivery: Delivery) -> None:
        taken_over.append((second.consumer, delivery))

    message_id = await first.enqueue({"job": "import"})
    stop = asyncio.Event()
    doomed = asyncio.create_task(first.run(hangs, stop=stop))
    await asyncio.wait_for(started.wait(), timeout=5)
    # The worker dies mid-handler: nothing acks, nothing heartbeats any more.
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    died_at = time.monotonic()

    async with _running(second, succeeds):
        await _eventually(lambda: len(taken_over) == 1)
    took = time.monotonic() - died_at

    assert [d.id for d in cancelled] == [message_id]
    assert taken_over == [("c2", Delivery(message_id, {"job": "import"}, 2))]
    assert took >= CLAIM_IDLE_MS / 1000 * 0.9
    assert await first.pending_count() == 0


async def test_heartbeat_keeps_a_long_handler_from_being_stolen(redis: Redis, stream: str) -> None:
    worker, rival = _queue(redis, stream, "c1"), _queue(redis, stream, "c2")
    runs: list[tuple[str, int]] = []

    def slow(consumer: str) -> Callable[[Delivery], Awaitable[None]]:
        async def handler(delivery: Delivery) -> None:
            runs.append((consumer, delivery.attempt))
            # Several claim idle times long; without heartbeats the rival reclaims it.
            await asyncio.sleep(CLAIM_IDLE_MS * 4 / 1000)

        return handler

    await worker.enqueue({"job": "long"})
    async with _running(worker, slow("c1")):
        await _eventually(lambda: len(runs) == 1)
        async with _running(rival, slow("c2")):
            await asyncio.sleep(CLAIM_IDLE_MS * 4 / 1000 + 0.2)

    assert runs == [("c1", 1)]
    assert await worker.pending_count() == 0


async def test_message_failing_max_deliveries_is_dead_lettered(redis: Redis, stream: str) -> None:
    dead_letters = f"{stream}:dead"
    queue = _queue(redis, stream, max_deliveries=2, dead_letter_stream=dead_letters)
    attempts: list[int] = []
    dead: list[tuple[Delivery, BaseException | None]] = []

    async def always_fails(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise ValueError("poison")

    async def on_dead(delivery: Delivery, error: BaseException | None) -> None:
        dead.append((delivery, error))

    message_id = await queue.enqueue({"track_id": "t1"})
    async with _running(queue, always_fails, on_dead=on_dead):
        await _eventually(lambda: len(dead) == 1)
        await asyncio.sleep(CLAIM_IDLE_MS * 2 / 1000)

    assert attempts == [1, 2]
    assert len(dead) == 1
    delivery, error = dead[0]
    assert (delivery.id, delivery.attempt) == (message_id, 2)
    assert isinstance(error, ValueError)
    entries = await redis.xrange(dead_letters)
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields["track_id"] == "t1"
    assert {name: fields[name] for name in DEAD_LETTER_FIELDS[:4]} == {
        "dead_letter.stream": stream,
        "dead_letter.group": "workers",
        "dead_letter.id": message_id,
        "dead_letter.attempts": "2",
    }
    assert "poison" in fields["dead_letter.error"]
    assert await queue.pending_count() == 0


async def test_message_whose_consumers_keep_dying_is_dead_lettered_unhandled(
    redis: Redis, stream: str
) -> None:
    dead_letters = f"{stream}:dead"
    options: dict[str, Any] = {"max_deliveries": 1, "dead_letter_stream": dead_letters}
    first, second = _queue(redis, stream, "c1", **options), _queue(redis, stream, "c2", **options)
    started = asyncio.Event()
    handled_again: list[Delivery] = []
    dead: list[tuple[Delivery, BaseException | None]] = []

    async def crashes(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(60)

    async def records(delivery: Delivery) -> None:
        handled_again.append(delivery)

    async def on_dead(delivery: Delivery, error: BaseException | None) -> None:
        dead.append((delivery, error))

    await first.enqueue({"n": "1"})
    doomed = asyncio.create_task(first.run(crashes, stop=asyncio.Event()))
    await asyncio.wait_for(started.wait(), timeout=5)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed

    async with _running(second, records, on_dead=on_dead):
        await _eventually(lambda: len(dead) == 1)

    assert handled_again == []
    assert [(d.attempt, error) for d, error in dead] == [(2, None)]
    assert await redis.xlen(dead_letters) == 1
    assert await second.pending_count() == 0


async def test_two_consumers_share_work_without_duplicates(redis: Redis, stream: str) -> None:
    queues = [_queue(redis, stream, name, claim_idle_ms=5_000) for name in ("c1", "c2")]
    handled: dict[str, list[str]] = {"c1": [], "c2": []}
    running = {"c1": 0, "c2": 0}
    peak = {"c1": 0, "c2": 0}

    def handler_for(consumer: str) -> Callable[[Delivery], Awaitable[None]]:
        async def handler(delivery: Delivery) -> None:
            running[consumer] += 1
            peak[consumer] = max(peak[consumer], running[consumer])
            await asyncio.sleep(0.01)
            handled[consumer].append(delivery.payload["n"])
            running[consumer] -= 1

        return handler

    await queues[0].ensure_group()
    async with (
        _running(queues[0], handler_for("c1"), concurrency=4),
        _running(queues[1], handler_for("c2"), concurrency=4),
    ):
        for n in range(100):
            await queues[0].enqueue({"n": str(n)})
        await _eventually(lambda: sum(map(len, handled.values())) >= 100)
        await asyncio.sleep(0.2)

    everything = handled["c1"] + handled["c2"]
    assert sorted(everything, key=int) == [str(n) for n in range(100)]
    assert handled["c1"] and handled["c2"]
    # Handlers really ran side by side, and never more than `concurrency` per consumer.
    assert max(peak.values()) > 1
    assert all(value <= 4 for value in peak.values())
    assert await queues[0].pending_count() == 0


async def test_stop_is_prompt_while_idle_and_never_trips_the_socket_timeout(
    redis_server: RedisServer, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Blocking reads (default block_ms=5000) must stay under this 0.5 s socket timeout.
    client = Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=0.5)
    try:
        # Production timings: reclaim rounds are 30 s apart, so reads really block for long.
        queue = _queue(client, stream, claim_idle_ms=60_000, heartbeat_seconds=15.0)
        handled: list[Delivery] = []

        async def handler(delivery: Delivery) -> None:
            handled.append(delivery)

        stop = asyncio.Event()
        with caplog.at_level(logging.WARNING, logger="echostats_platform.streams"):
            task = asyncio.create_task(queue.run(handler, stop=stop))
            await asyncio.sleep(1.2)
            await queue.enqueue({"n": "1"})
            await _eventually(lambda: len(handled) == 1)
            await asyncio.sleep(0.1)
            stop.set()
            started = time.monotonic()
            await asyncio.wait_for(task, timeout=5)
            assert time.monotonic() - started < 0.3
        assert [r.getMessage() for r in caplog.records] == []
    finally:
        await client.aclose()


async def test_stop_waits_for_in_flight_handlers(redis: Redis, stream: str) -> None:
    queue = _queue(redis, stream)
    started = asyncio.Event()
    finished: list[str] = []

    async def handler(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(delivery.id)

    message_id = await queue.enqueue({"n": "1"})
    stop = asyncio.Event()
    task = asyncio.create_task(queue.run(handler, stop=stop))
    await asyncio.wait_for(started.wait(), timeout=5)
    stop.set()
    await asyncio.wait_for(task, timeout=5)

    assert finished == [message_id]
    assert await queue.pending_count() == 0


async def test_stop_cancels_handlers_past_the_grace_and_leaves_them_pending(
    redis: Redis, stream: str
) -> None:
    queue = _queue(redis, stream)
    started = asyncio.Event()

    async def hangs(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(60)

    await queue.enqueue({"n": "1"})
    stop = asyncio.Event()
    task = asyncio.create_task(queue.run(hangs, stop=stop, grace_seconds=0.2))
    await asyncio.wait_for(started.wait(), timeout=5)
    stop.set()
    began = time.monotonic()
    await asyncio.wait_for(task, timeout=5)

    assert time.monotonic() - began < 0.6
    assert await queue.pending_count() == 1


async def test_run_recovers_after_redis_restarts(
    redis: Redis, redis_server: RedisServer, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _queue(redis, stream)
    handled: list[str] = []

    async def handler(delivery: Delivery) -> None:
        handled.append(delivery.payload["n"])

    with caplog.at_level(logging.WARNING, logger="echostats_platform.streams"):
        async with _running(queue, handler):
            await queue.enqueue({"n": "before"})
            await _eventually(lambda: handled == ["before"])

            # Off the event loop, so the consumer lives through the outage as it happens.
            await asyncio.to_thread(redis_server.stop)
            try:
                await asyncio.sleep(1.0)
            finally:
                await asyncio.to_thread(redis_server.start)

            # The restarted Redis keeps no data: stream and group are gone. A producer's first
            # call may still hit a pooled connection the restart closed, so it retries.
            await _enqueue_retrying(queue, {"n": "after"})
            await _eventually(lambda: handled == ["before", "after"], timeout=15)

    assert [group["name"] for group in await redis.xinfo_groups(stream)] == ["workers"]
    assert await queue.pending_count() == 0
    outage_lines = [r.getMessage() for r in caplog.records]
    assert any("Redis unavailable" in m or "vanished" in m for m in outage_lines)
    # Backed off, not spinning: a handful of lines for a one-second outage.
    assert len(outage_lines) < 15


@pytest.mark.parametrize(
    "client_options",
    [{}, {"protocol": 3}, {"protocol": 2}, {"legacy_responses": False}],
    ids=["default", "resp3-legacy-shapes", "resp2", "unified-shapes"],
)
async def test_consumes_with_every_redis_py_response_shape(
    redis_server: RedisServer, stream: str, client_options: dict[str, Any]
) -> None:
    client = Redis.from_url(
        redis_server.url, decode_responses=True, socket_timeout=2, **client_options
    )
    try:
        queue = _queue(client, stream)
        handled: list[Delivery] = []

        async def handler(delivery: Delivery) -> None:
            handled.append(delivery)

        message_id = await queue.enqueue({"n": "1"})
        async with _running(queue, handler):
            await _eventually(lambda: len(handled) == 1)

        assert handled == [Delivery(message_id, {"n": "1"}, 1)]
    finally:
        await client.aclose()


async def test_run_recreates_a_group_deleted_under_it(redis: Redis, stream: str) -> None:
    queue = _queue(redis, stream)
    handled: list[str] = []

    async def handler(delivery: Delivery) -> None:
        handled.append(delivery.payload["n"])

    async with _running(queue, handler):
        await queue.enqueue({"n": "1"})
        await _eventually(lambda: handled == ["1"])
        # The connection stays up while the group disappears (a flushed or restarted Redis
        # seen through redis-py's transparent reconnect): reads now answer NOGROUP.
        await redis.delete(stream)
        await queue.enqueue({"n": "2"})
        await _eventually(lambda: handled == ["1", "2"])

    assert await queue.pending_count() == 0


async def test_every_group_sees_every_event(redis: Redis, stream: str) -> None:
    ids = [await publish_event(redis, stream, {"play": str(n)}, maxlen=1000) for n in range(3)]
    seen: dict[str, list[str]] = {"analytics": [], "observability": []}

    def handler_for(group: str) -> Callable[[Delivery], Awaitable[None]]:
        async def handler(delivery: Delivery) -> None:
            seen[group].append(delivery.id)

        return handler

    consumers = [
        WorkQueue(
            redis, stream, group=group, consumer="pod-1", claim_idle_ms=1_000, heartbeat_seconds=0.2
        )
        for group in seen
    ]
    async with (
        _running(consumers[0], handler_for("analytics")),
        _running(consumers[1], handler_for("observability")),
    ):
        await _eventually(lambda: all(len(v) == 3 for v in seen.values()))

    assert seen == {"analytics": ids, "observability": ids}


async def test_enqueue_trims_to_about_maxlen(redis: Redis, stream: str) -> None:
    queue = _queue(redis, stream, maxlen=10)
    for n in range(500):
        await queue.enqueue({"n": str(n)})

    # Approximate trimming drops whole macro nodes (100 entries by default), never below 10.
    assert 10 <= await redis.xlen(stream) < 500


async def test_ensure_group_is_idempotent_and_recreates_a_lost_group(
    redis: Redis, stream: str
) -> None:
    queue = _queue(redis, stream)
    await queue.ensure_group()
    await queue.ensure_group()
    await redis.delete(stream)

    await queue.ensure_group()

    assert [group["name"] for group in await redis.xinfo_groups(stream)] == ["workers"]


async def test_rejects_settings_that_would_break_delivery(
    redis: Redis, redis_server: RedisServer
) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        WorkQueue(redis, "s", group="g", consumer="c", claim_idle_ms=1000, heartbeat_seconds=1)
    raw = Redis.from_url(redis_server.url)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            WorkQueue(raw, "s", group="g", consumer="c")
    finally:
        await raw.aclose()
