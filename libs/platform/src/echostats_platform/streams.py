"""Work queues and event consumers on Redis Streams consumer groups, delivering at-least-once.

This module owns how EchoStats moves queued work and published facts through Redis
(ARCHITECTURE §2 and §6). One class serves both:

* a **work queue** is a stream with one consumer group; every worker replica runs
  `WorkQueue(redis, "ingestion:imports", group="import-workers", consumer=<pod name>)`, and
  the group hands each message to one of them;
* an **event stream** (`publish_event`) carries facts such as "plays stored"; each interested
  service reads it through a group of its *own* (`group="analytics"`, `group="observability"`),
  so every group sees every event while the replicas inside a group share them.

Delivery is at-least-once. A message is acknowledged (XACK) only after its handler returns.
Until then it sits in the group's pending list, and another consumer takes it over
(XAUTOCLAIM) once it has been idle for `claim_idle_ms`: after a failed handler, a crashed or
cancelled worker, or an acknowledgement lost in a Redis outage. So a handler may run more than
once for one message and **must be idempotent** (upsert by a natural key, not "insert" or
"increment"). A running handler keeps its message by re-claiming it every `heartbeat_seconds`,
so slow jobs are not stolen. A message delivered more than `max_deliveries` times is moved to
the dead-letter stream instead of being retried forever.

Consumers block on XREADGROUP (no polling loops), survive Redis restarts (the group is
recreated, reading the stream from its start so nothing enqueued meanwhile is skipped) and
stop promptly. Trimming (`maxlen`) can delete entries that are still pending, which loses them;
keep `maxlen` far above any backlog a group can build up. Clients must decode responses
(`create_redis` does), because payloads are `dict[str, str]`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# Errors that mean "Redis is unreachable right now", as opposed to a wrong command.
REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)

# Fields added to a payload when it is moved to the dead-letter stream.
DEAD_LETTER_FIELDS = (
    "dead_letter.stream",
    "dead_letter.group",
    "dead_letter.id",
    "dead_letter.attempts",
    "dead_letter.error",
)

# Re-claim a message for its current consumer only if that consumer still owns it: a plain
# XCLAIM would silently take back a message another consumer already claimed. JUSTID resets
# the idle time without counting another delivery.
_HEARTBEAT_SCRIPT = """
local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #owned == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""


@dataclass(frozen=True)
class Delivery:
    """One delivery of a stream message to a handler."""

    id: str
    payload: dict[str, str]
    # How many times the group has delivered this message, this delivery included (1 first).
    attempt: int


Handler = Callable[[Delivery], Awaitable[None]]
OnDead = Callable[[Delivery, BaseException | None], Awaitable[None]]


class WorkQueue:
    """One consumer of a Redis Streams consumer group: enqueue messages and handle them."""

    def __init__(
        self,
        redis: Redis,
        stream: str,
        *,
        group: str,
        consumer: str,
        claim_idle_ms: int = 60_000,
        heartbeat_seconds: float = 15.0,
        max_deliveries: int = 5,
        dead_letter_stream: str | None = None,
        block_ms: int = 5_000,
        maxlen: int | None = None,
    ) -> None:
        """Describe the consumer; nothing touches Redis until `ensure_group`, `enqueue` or `run`."""
        if claim_idle_ms <= 0:
            raise ValueError("claim_idle_ms must be positive")
        # A heartbeat slower than the claim idle time lets healthy long jobs be stolen.
        if not 0 < heartbeat_seconds * 1000 < claim_idle_ms:
            raise ValueError("heartbeat_seconds must be positive and shorter than claim_idle_ms")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if block_ms <= 0:
            raise ValueError("block_ms must be positive")
        if maxlen is not None and maxlen <= 0:
            raise ValueError("maxlen must be positive")
        if not redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("the Redis client must use decode_responses=True")
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self._redis = redis
        self._claim_idle_ms = claim_idle_ms
        self._heartbeat_seconds = heartbeat_seconds
        self._max_deliveries = max_deliveries
        self._dead_letter_stream = dead_letter_stream
        self._maxlen = maxlen
        self._block_ms = _block_within_socket_timeout(redis, block_ms)
        self._heartbeat = redis.register_script(_HEARTBEAT_SCRIPT)
        # XAUTOCLAIM walks the pending list like SCAN; the cursor carries over between rounds.
        self._reclaim_cursor = "0-0"

    async def ensure_group(self) -> None:
        """Create the stream and the group (reading from the stream's start) unless it exists."""
        # Id 0, not $: a group created late, or recreated after Redis lost it, must still see
        # the messages enqueued before it existed.
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def enqueue(self, payload: Mapping[str, str]) -> str:
        """Append a message to the stream and return its id."""
        return await _xadd(self._redis, self.stream, payload, self._maxlen)

    async def pending_count(self) -> int:
        """Messages delivered to the group but not acknowledged yet (0 when the group is gone)."""
        try:
            summary = await self._redis.xpending(self.stream, self.group)
        except ResponseError as exc:
            if _group_gone(exc):
                return 0
            raise
        return int(summary["pending"])

    async def run(
        self,
        handler: Handler,
        *,
        concurrency: int = 1,
        stop: asyncio.Event,
        on_dead: OnDead | None = None,
        grace_seconds: float = 30.0,
    ) -> None:
        """Handle messages, up to `concurrency` at once, until `stop` is set; ack on success.

        A handler that raises leaves its message pending; it is delivered again (attempt + 1)
        once idle for `claim_idle_ms`. After `max_deliveries` the message goes to the dead-letter
        stream, is acknowledged, and `on_dead(delivery, error)` is awaited (`error` is None when
        the earlier consumers died instead of raising). On `stop`, no new message is taken and
        in-flight handlers get `grace_seconds` to finish; the rest are cancelled and stay pending
        for another consumer. Redis outages are logged and waited out. Cancelling the task that
        runs this cancels the handlers at once, like a crash. Run one `run()` per instance.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        inflight: dict[str, asyncio.Task[None]] = {}
        dispatcher = asyncio.create_task(
            self._dispatch(handler, on_dead, concurrency, inflight),
            name=f"stream-dispatch:{self.stream}:{self.group}:{self.consumer}",
        )
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({dispatcher, stopped}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await _cancel(dispatcher, stopped)
            await _cancel(*inflight.values())
            raise
        # The dispatcher never returns; if it is done, it failed on something other than an
        # outage (a bug or a wrong command), which must surface after the handlers drain.
        failure = (
            dispatcher.exception() if dispatcher.done() and not dispatcher.cancelled() else None
        )
        await _cancel(dispatcher, stopped)
        if inflight:
            _, unfinished = await asyncio.wait(list(inflight.values()), timeout=grace_seconds)
            if unfinished:
                log.warning(
                    "stopping %s/%s: cancelling %d handlers still running after %.1fs; "
                    "their messages stay pending for another consumer",
                    self.stream,
                    self.group,
                    len(unfinished),
                    grace_seconds,
                )
                await _cancel(*unfinished)
        if failure is not None:
            raise failure

    async def _dispatch(
        self,
        handler: Handler,
        on_dead: OnDead | None,
        concurrency: int,
        inflight: dict[str, asyncio.Task[None]],
    ) -> None:
        """Fetch messages into free handler slots forever: reclaimed ones first, then new ones."""
        backoff = _Backoff()
        reclaim_interval = self._claim_idle_ms / 2000
        # Reclaim at once on start: a restarted worker picks up what a dead one left behind.
        next_reclaim = 0.0
        group_ready = False
        while True:
            if len(inflight) >= concurrency:
                await asyncio.wait(list(inflight.values()), return_when=asyncio.FIRST_COMPLETED)
                continue
            free = concurrency - len(inflight)
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                now = time.monotonic()
                if now >= next_reclaim:
                    deliveries = await self._reclaim(free, skip=inflight.keys())
                    # A full batch of stale messages suggests more are waiting: go again.
                    next_reclaim = now if len(deliveries) == free else now + reclaim_interval
                else:
                    block_ms = min(self._block_ms, max(1, int((next_reclaim - now) * 1000)))
                    deliveries = await self._read(free, block_ms)
                backoff.reset()
            except ResponseError as exc:
                if not _group_gone(exc):
                    raise
                # Redis restarted without persistence, or someone deleted the stream.
                log.warning("consumer group %s/%s vanished; recreating it", self.stream, self.group)
                group_ready = False
                # Short at first; grows only if the group keeps vanishing.
                await asyncio.sleep(backoff.next_delay())
                continue
            except REDIS_UNAVAILABLE as exc:
                delay = backoff.next_delay()
                log.warning(
                    "Redis unavailable for %s/%s (%s); retrying in %.2fs",
                    self.stream,
                    self.group,
                    exc,
                    delay,
                )
                group_ready = False
                await asyncio.sleep(delay)
                continue
            for delivery in deliveries:
                task = asyncio.create_task(self._process(delivery, handler, on_dead))
                inflight[delivery.id] = task
                task.add_done_callback(lambda _, key=delivery.id: inflight.pop(key, None))

    async def _read(self, count: int, block_ms: int) -> list[Delivery]:
        """Block for up to `block_ms` on XREADGROUP for at most `count` never-delivered messages."""
        response = await self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return [Delivery(mid, dict(fields), 1) for mid, fields in _read_entries(response)]

    async def _reclaim(self, count: int, *, skip: Container[str]) -> list[Delivery]:
        """Take over up to `count` messages idle for `claim_idle_ms` (their consumer is gone)."""
        cursor, claimed, *rest = await self._redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            self._claim_idle_ms,
            start_id=self._reclaim_cursor,
            count=count,
        )
        self._reclaim_cursor = cursor
        if rest and rest[0]:
            # Trimmed by MAXLEN while pending: at-least-once could not be kept for these.
            log.error(
                "%d pending messages of %s/%s were trimmed before being handled: %s",
                len(rest[0]),
                self.stream,
                self.group,
                rest[0],
            )
        # Entries deleted from the stream come back without fields; our own running messages
        # are not taken twice.
        claimed = [(mid, fields) for mid, fields in claimed if fields and mid not in skip]
        if not claimed:
            return []
        # XAUTOCLAIM does not report delivery counts; XPENDING does.
        async with self._redis.pipeline(transaction=False) as pipe:
            for mid, _ in claimed:
                pipe.xpending_range(self.stream, self.group, min=mid, max=mid, count=1)
            rows = await pipe.execute()
        deliveries = [
            Delivery(mid, dict(fields), int(row[0]["times_delivered"]))
            for (mid, fields), row in zip(claimed, rows, strict=True)
            if row
        ]
        log.info(
            "reclaimed %d idle messages of %s/%s for %s",
            len(deliveries),
            self.stream,
            self.group,
            self.consumer,
        )
        return deliveries

    async def _process(self, delivery: Delivery, handler: Handler, on_dead: OnDead | None) -> None:
        """Run the handler for one delivery and settle the message (ack, retry or dead-letter)."""
        if delivery.attempt > self._max_deliveries:
            await self._dead_letter(delivery, None, on_dead)
            return
        heartbeat = asyncio.create_task(self._keep_claimed(delivery.id))
        try:
            await handler(delivery)
        except Exception as exc:
            if delivery.attempt >= self._max_deliveries:
                await self._dead_letter(delivery, exc, on_dead)
            else:
                log.warning(
                    "handler failed for %s %s (attempt %d of %d); retrying after %d ms idle",
                    self.stream,
                    delivery.id,
                    delivery.attempt,
                    self._max_deliveries,
                    self._claim_idle_ms,
                    exc_info=True,
                )
            return
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        try:
            await self._redis.xack(self.stream, self.group, delivery.id)
        except RedisError as exc:
            # The work is done but will be redone after claim_idle_ms: handlers are idempotent.
            log.warning("could not ack %s %s (%s)", self.stream, delivery.id, exc)

    async def _keep_claimed(self, message_id: str) -> None:
        """Reset the message's idle time every heartbeat while its handler runs."""
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            try:
                owned = await self._heartbeat(
                    keys=[self.stream], args=[self.group, self.consumer, message_id]
                )
            except RedisError as exc:
                log.warning("heartbeat for %s %s failed (%s)", self.stream, message_id, exc)
                continue
            if not owned:
                log.warning(
                    "%s %s was claimed by another consumer while its handler ran; "
                    "it may be handled twice",
                    self.stream,
                    message_id,
                )
                return

    async def _dead_letter(
        self, delivery: Delivery, error: BaseException | None, on_dead: OnDead | None
    ) -> None:
        """Move a message that used up its deliveries to the dead-letter stream and ack it."""
        fields = dict(
            zip(
                DEAD_LETTER_FIELDS,
                (self.stream, self.group, delivery.id, str(delivery.attempt), repr(error)[:1000]),
                strict=True,
            )
        )
        try:
            # One transaction, so a message is never acked without its dead letter being kept.
            async with self._redis.pipeline(transaction=True) as pipe:
                if self._dead_letter_stream is not None:
                    pipe.xadd(self._dead_letter_stream, {**delivery.payload, **fields})
                pipe.xack(self.stream, self.group, delivery.id)
                await pipe.execute()
        except RedisError as exc:
            log.warning("could not dead-letter %s %s (%s)", self.stream, delivery.id, exc)
            return
        log.error(
            "dead-lettered %s %s after %d deliveries to %s: %r",
            self.stream,
            delivery.id,
            delivery.attempt,
            self._dead_letter_stream or "nowhere (dropped)",
            error,
        )
        if on_dead is not None:
            try:
                await on_dead(delivery, error)
            except Exception:
                log.exception("on_dead failed for %s %s", self.stream, delivery.id)


async def publish_event(
    redis: Redis, stream: str, payload: Mapping[str, str], *, maxlen: int | None = 100_000
) -> str:
    """Append a fact to an event stream (trimmed to about `maxlen`) and return its id.

    Consumers read it with `WorkQueue(redis, stream, group=<their service>, consumer=...)`:
    one group per consuming service, so each service sees every event.
    """
    return await _xadd(redis, stream, payload, maxlen)


async def _xadd(redis: Redis, stream: str, payload: Mapping[str, str], maxlen: int | None) -> str:
    """XADD with approximate trimming (whole macro nodes, far cheaper than exact)."""
    if not payload:
        raise ValueError("a stream message needs at least one field")
    return str(await redis.xadd(stream, dict(payload), maxlen=maxlen, approximate=True))


def _read_entries(response: Any) -> list[tuple[str, dict[str, str]]]:
    """Flatten an XREADGROUP reply of one stream into (id, fields) pairs."""
    if not response:
        return []
    # redis-py answers [[stream, entries]] (its default shape), {stream: entries} (unified
    # shapes) or {stream: [entries]} (protocol=3 with legacy shapes).
    per_stream = response.values() if isinstance(response, dict) else (e for _, e in response)
    flat: list[tuple[str, dict[str, str]]] = []
    for entries in per_stream:
        flat.extend(entries[0] if entries and isinstance(entries[0], list) else entries)
    return flat


def _group_gone(exc: ResponseError) -> bool:
    """True for the errors Redis answers when the stream or the group no longer exists."""
    # NOGROUP: no such key or group. UNBLOCKED: the stream was deleted while we blocked on it.
    return str(exc).startswith(("NOGROUP", "UNBLOCKED"))


def _block_within_socket_timeout(redis: Redis, block_ms: int) -> int:
    """Cap the XREADGROUP block below the client's socket timeout."""
    # redis-py reads a blocking reply under the ordinary socket timeout, so a quiet stream
    # blocking longer than it would look like a dead server. The margin covers Redis, which
    # expires blocked reads on its own clock tick (100 ms at the default hz 10), late.
    timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
    if timeout is None:
        return block_ms
    timeout_ms = int(timeout * 1000)
    return max(1, min(block_ms, max(timeout_ms // 2, timeout_ms - 500)))


class _Backoff:
    """Exponential backoff with jitter, so replicas do not reconnect in lockstep."""

    def __init__(self, base: float = 0.1, cap: float = 5.0) -> None:
        self._base = base
        self._cap = cap
        self._failures = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._base * 2**self._failures)
        self._failures += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self._failures = 0


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    """Cancel tasks, again and again, until they have finished."""
    # On Python 3.11 a cancellation that lands just as redis-py's timeout-guarded read
    # completes can be swallowed (the read returns normally), which would leave the
    # dispatcher reading, or a handler running, after `stop`. Whatever we cancel here loses
    # nothing: its message stays pending and is delivered again.
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.05)
