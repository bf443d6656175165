"""A leader lease in Redis, so that one replica of a scaled-out service runs the scheduler.

ARCHITECTURE §6: every service scales by replicas, but periodic scheduling (say, "enqueue a
sync for every user who is due") must happen once, not once per replica. Each replica builds a
`Lease` on the same key with an owner id of its own (pod name plus a random suffix) and calls
`run_while_leader`; whoever holds the key runs the work and renews the key, and when the holder
dies the key expires after `ttl_ms` and another replica takes over.

A lease is not a lock with fencing: after a long pause (GC, network partition) two replicas
can briefly both believe they lead. The work it guards must therefore be idempotent too (it
enqueues jobs that are themselves deduplicated), which is the case for everything scheduled
here. Every state change is one Lua script, so checking the holder and acting on it is atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Take the key if it is free, or extend it if we already hold it.
_ACQUIRE_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# Delete the key only if we hold it, so a late release never frees someone else's lease.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# How long a stopping leader waits for Redis to accept its release before leaving the key to
# expire by itself.
_RELEASE_TIMEOUT_SECONDS = 2.0


class Lease:
    """A Redis key held by one owner at a time for `ttl_ms`, renewable by that owner."""

    def __init__(self, redis: Redis, key: str, *, owner: str, ttl_ms: int) -> None:
        """Describe the lease; nothing touches Redis until `acquire`."""
        if not owner:
            raise ValueError("owner must be a non-empty id unique to this replica")
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive")
        self.key = key
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    async def acquire(self) -> bool:
        """Take the lease if it is free or renew it if we hold it; True when we hold it now."""
        return bool(await self._acquire(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def release(self) -> bool:
        """Give the lease up if we hold it; True when it was ours and is now free."""
        return bool(await self._release(keys=[self.key], args=[self.owner]))

    async def held(self) -> bool:
        """True when we hold the lease right now."""
        return await self._redis.get(self.key) == self.owner


async def run_while_leader(
    lease: Lease,
    work: Callable[[], Awaitable[None]],
    *,
    interval_seconds: float,
    stop: asyncio.Event,
) -> None:
    """Every `interval_seconds`, take or renew the lease and run `work()` only while holding it.

    `work()` errors are logged and retried next interval. While `work()` runs, the lease is
    renewed every third of its ttl; if it turns out to belong to someone else, or cannot be
    renewed for a whole ttl (Redis unreachable), `work()` is cancelled. `stop` ends the loop
    after the current `work()` and releases the lease so another replica takes over at once.
    """
    # Renewing at every interval keeps the lease only if it outlives the interval.
    if interval_seconds <= 0 or interval_seconds * 1000 >= lease.ttl_ms:
        raise ValueError("interval_seconds must be positive and shorter than the lease ttl")
    try:
        while not stop.is_set():
            if await _try_acquire(lease):
                await _work_under_lease(lease, work)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
    finally:
        # Shielded so a cancelled leader still hands over instead of making others wait a ttl.
        with contextlib.suppress(RedisError, OSError, asyncio.CancelledError):
            await asyncio.shield(
                asyncio.wait_for(lease.release(), timeout=_RELEASE_TIMEOUT_SECONDS)
            )


async def _try_acquire(lease: Lease) -> bool:
    """Acquire or renew, treating an unreachable Redis as "not leader"."""
    try:
        return await lease.acquire()
    except (RedisError, OSError) as exc:
        log.warning("lease %s: Redis unavailable (%s); not leading this round", lease.key, exc)
        return False


async def _work_under_lease(lease: Lease, work: Callable[[], Awaitable[None]]) -> None:
    """Run `work()` once, renewing the lease meanwhile and cancelling it if the lease is lost."""
    task = asyncio.ensure_future(work())
    renew_every = lease.ttl_ms / 3000
    renewed_at = time.monotonic()
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=renew_every)
            if done:
                break
            try:
                if await lease.acquire():
                    renewed_at = time.monotonic()
                    continue
                lost = True
            except (RedisError, OSError) as exc:
                # Unknown holder; past a whole ttl the lease has surely expired.
                lost = time.monotonic() - renewed_at >= lease.ttl_ms / 1000
                log.warning("lease %s: renewal failed (%s)", lease.key, exc)
            if lost:
                log.warning("lease %s lost by %s; cancelling its work", lease.key, lease.owner)
                return
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            log.error("leader work under lease %s failed", lease.key, exc_info=failure)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
