"""Enrichment work waiting in Redis: per-user sets of ids, budgets, the pause, user locks.

Keys (prefix `catalog:enrich:`):
- `{kind}:{user_id}` - SET of Spotify ids still to fetch, kind = tracks | artists |
  albums | features. An id leaves the set only after its answer is stored, so a crash, a
  restart or a rate-limit pause loses nothing: the next round takes the rest.
- `users` - SET of users with queued work (the drainer's worklist).
- `budget:{user_id}:{window}` - calls spent in the current budget window (expires with it).
- `paused-until` - Unix time before which no background call is sent (Spotify's limits
  are per app, so a long Retry-After or QUOTA_EXCEEDED pauses everyone's enrichment).
- `lock:{user_id}` - one enrichment run per user at a time across replicas.

Redis rather than Mongo because every operation is a set or counter update by key, and the
ids are re-derivable from the stored plays if Redis ever loses them (a re-sync or replay
of the plays-stored stream queues them again).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from enum import StrEnum

from redis.asyncio import Redis

PREFIX = "catalog:enrich:"
USERS_KEY = PREFIX + "users"
PAUSED_KEY = PREFIX + "paused-until"

_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Kind(StrEnum):
    """What an id in the queue is waiting for."""

    TRACKS = "tracks"
    ARTISTS = "artists"
    ALBUMS = "albums"
    FEATURES = "features"


class EnrichmentQueue:
    """The Redis side of enrichment (see the module docstring for the keys)."""

    def __init__(self, redis: Redis, *, budget_calls: int, budget_window_seconds: float) -> None:
        self._redis = redis
        self._budget_calls = budget_calls
        self._window = budget_window_seconds
        self._release = redis.register_script(_RELEASE_SCRIPT)

    @staticmethod
    def key(kind: Kind, user_id: str) -> str:
        """The set of ids of `kind` queued for the user."""
        return f"{PREFIX}{kind.value}:{user_id}"

    async def add(self, kind: Kind, user_id: str, ids: Iterable[str]) -> int:
        """Queue ids for the user; returns how many were not queued already."""
        unique = list(dict.fromkeys(i for i in ids if i))
        if not unique:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(self.key(kind, user_id), *unique)
            pipe.sadd(USERS_KEY, user_id)
            added, _ = await pipe.execute()
        return int(added)

    async def take(self, kind: Kind, user_id: str, count: int) -> list[str]:
        """Up to `count` queued ids (they stay queued until `done`)."""
        members = await self._redis.srandmember(self.key(kind, user_id), count)
        return sorted(members or [])

    async def done(self, kind: Kind, user_id: str, ids: Iterable[str]) -> None:
        """Remove handled ids from the user's queue."""
        handled = list(ids)
        if handled:
            await self._redis.srem(self.key(kind, user_id), *handled)

    async def size(self, kind: Kind, user_id: str) -> int:
        """Ids of `kind` queued for the user."""
        return int(await self._redis.scard(self.key(kind, user_id)))

    async def users(self) -> list[str]:
        """Users with queued work (possibly stale: `forget_if_empty` cleans up)."""
        return sorted(await self._redis.smembers(USERS_KEY))

    async def forget_if_empty(self, user_id: str, kinds: Iterable[Kind]) -> bool:
        """Drop the user from the worklist when none of `kinds` has ids left."""
        for kind in kinds:
            if await self.size(kind, user_id):
                return False
        await self._redis.srem(USERS_KEY, user_id)
        return True

    # -- budget -----------------------------------------------------------------------------

    def _budget_key(self, user_id: str) -> str:
        return f"{PREFIX}budget:{user_id}:{int(time.time() // self._window)}"

    async def budget_left(self, user_id: str) -> int:
        """Calls the user's enrichment may still make in this window."""
        spent = await self._redis.get(self._budget_key(user_id))
        return max(0, self._budget_calls - int(spent or 0))

    async def spend(self, user_id: str, calls: int) -> None:
        """Charge calls to the user's budget for this window."""
        if calls <= 0:
            return
        key = self._budget_key(user_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incrby(key, calls)
            pipe.expire(key, int(self._window) + 60)
            await pipe.execute()

    # -- pause ------------------------------------------------------------------------------

    async def pause(self, seconds: float) -> None:
        """No background enrichment call for `seconds` (keeps the later of two pauses)."""
        until = time.time() + max(1.0, seconds)
        current = await self.paused_for()
        if current >= seconds:
            return
        await self._redis.set(PAUSED_KEY, repr(until), px=int(max(1.0, seconds) * 1000))

    async def paused_for(self) -> float:
        """Seconds left of the current pause (0 when not paused)."""
        raw = await self._redis.get(PAUSED_KEY)
        return max(0.0, float(raw) - time.time()) if raw else 0.0

    # -- per-user lock ----------------------------------------------------------------------

    async def lock(self, user_id: str, seconds: float) -> str | None:
        """Take the user's enrichment lock; returns its token, or None if someone holds it."""
        token = uuid.uuid4().hex
        taken = await self._redis.set(
            f"{PREFIX}lock:{user_id}", token, nx=True, px=int(seconds * 1000)
        )
        return token if taken else None

    async def unlock(self, user_id: str, token: str) -> None:
        """Release the lock if it is still ours."""
        await self._release(keys=[f"{PREFIX}lock:{user_id}"], args=[token])


class UserHolds:
    """Users whose enrichment failed for a reason only time fixes (no token, sign-in needed)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def hold(self, user_id: str, seconds: float) -> None:
        """Skip the user's enrichment for `seconds`."""
        await self._redis.set(f"{PREFIX}hold:{user_id}", "1", px=int(seconds * 1000))

    async def held(self, user_id: str) -> bool:
        """Whether the user's enrichment is on hold."""
        return bool(await self._redis.exists(f"{PREFIX}hold:{user_id}"))
