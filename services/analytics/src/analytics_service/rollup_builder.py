"""Building rollups from ingestion's plays: a range of local days, or a user's whole history.

The one idempotent rule: to bring a range of plays into the rollups, recompute every local
day the range touches, **fully**, from ingestion's StreamPlays of that day's bounds, and
replace those days' rollups. A replayed event, a sync's own refresh and the event that
follows it all give the same documents, and an unchanged day is not rewritten (so the
user's data version, and with it every snapshot, stays put). A full rebuild is the same
over all days, removing days that no longer have plays.

Writes of one user are serialised by a Redis lock (`analytics:rollup-lock:<user>`): the
month documents are read-modify-write, and two writers (the event consumer and a sync's
refresh) could otherwise lose one another's days.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
from redis.asyncio import Redis
from redis.exceptions import RedisError

from analytics_service.repository import RollupRepository, WriteOutcome
from analytics_service.rollups import DayBuilder, PlayFacts, Rollup
from echostats.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from echostats.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from echostats_grpc.timestamps import to_timestamp
from echostats_platform.lease import Lease

log = logging.getLogger(__name__)

ROLLUP_LOCK_PREFIX = "analytics:rollup-lock:"
# Local days per StreamPlays call of a range refresh, and per write of a rebuild.
CHUNK_DAYS = 31


def play_facts(play: ingestion_pb.Play, zone: ZoneInfo) -> PlayFacts:
    """What a rollup needs of a play, with its end time in the local zone."""
    stamp = play.played_at
    track = play.track
    artist_ids = track.artist_ids
    # Unset optional strings read as "" in proto3: no HasField needed.
    return PlayFacts(
        datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, tz=zone),
        play.ms_played,
        track.spotify_id,
        track.name,
        artist_ids[0] if artist_ids else "",
        track.artist_name,
        track.album_id,
        track.album_name,
        track.album_image_url,
    )


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day starts."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def local_days(first: datetime, last: datetime, zone: ZoneInfo) -> list[date]:
    """Every local day from the one `first` falls on to the one `last` falls on."""
    start, end = first.astimezone(zone).date(), last.astimezone(zone).date()
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


class RollupBuilder:
    """Recomputes day rollups of a user from ingestion's plays and stores the changes."""

    def __init__(
        self,
        *,
        rollups: RollupRepository,
        ingestion: ingestion_grpc.IngestionServiceStub,
        redis: Redis,
        zone: ZoneInfo,
        stream_timeout: float = 120.0,
        rebuild_timeout: float = 3600.0,
        lock_ttl_seconds: float = 120.0,
    ) -> None:
        self._rollups = rollups
        self._ingestion = ingestion
        self._redis = redis
        self.zone = zone
        self._stream_timeout = stream_timeout
        self._rebuild_timeout = rebuild_timeout
        self._lock_ttl_ms = int(lock_ttl_seconds * 1000)

    async def refresh_range(self, user_id: str, first: datetime, last: datetime) -> WriteOutcome:
        """Recompute every local day that [first, last] touches, a month-sized chunk at a time.

        Each chunk is one StreamPlays call and one write under the user's lock, so a long
        range (an import of years) is neither one unbounded call nor one huge write, and
        what is done stays done if the handler dies (its redelivery redoes all, harmlessly).
        """
        if last < first:
            first, last = last, first
        days = local_days(first, last, self.zone)
        total = WriteOutcome(changed_days=0, plays=0, version="")
        for offset in range(0, len(days), CHUNK_DAYS):
            chunk = days[offset : offset + CHUNK_DAYS]
            start = local_midnight(chunk[0], self.zone)
            # StreamPlays' bounds are inclusive: stop just before the next local midnight.
            end = local_midnight(chunk[-1] + timedelta(days=1), self.zone) - timedelta(
                microseconds=1
            )
            async with self._user_lock(user_id):
                builders = await self._build_with_retries(user_id, start, end)
                wanted: dict[str, Rollup | None] = {day.isoformat(): None for day in chunk}
                wanted.update({day: builder.rollup() for day, builder in builders.items()})
                total = total + await self._rollups.write_days(user_id, wanted)
        return total

    async def rebuild(self, user_id: str) -> WriteOutcome:
        """Recompute every day of the user's history (days without plays any more go).

        One StreamPlays of everything, oldest day first; local days are written a month's
        worth at a time as soon as no later UTC day can add to them (a local day is over
        once the stream is two UTC days past it), so memory stays bounded.
        """
        total = WriteOutcome(changed_days=0, plays=0, version="")
        seen: set[str] = set()
        async with self._user_lock(user_id):
            builders: dict[str, DayBuilder] = {}
            request = ingestion_pb.StreamPlaysRequest(user_id=user_id)
            async for message in self._stream(request, timeout=self._rebuild_timeout):
                self._add_plays(builders, message)
                horizon = (date.fromisoformat(message.day) - timedelta(days=1)).isoformat()
                done = [day for day in builders if day < horizon]
                if len(done) >= CHUNK_DAYS:
                    seen.update(done)
                    days = {day: builders.pop(day).rollup() for day in done}
                    total = total + await self._rollups.write_days(user_id, days)
            seen.update(builders)
            days = {day: builder.rollup() for day, builder in builders.items()}
            total = total + await self._rollups.write_days(user_id, days)
            state = await self._rollups.state(user_id)
            gone: dict[str, Rollup | None] = {day: None for day in state.days if day not in seen}
            if gone:
                total = total + await self._rollups.write_days(user_id, gone)
        return total

    async def _build_with_retries(
        self, user_id: str, start: datetime, end: datetime, attempts: int = 3
    ) -> dict[str, DayBuilder]:
        """`_build`, retried on a slow or briefly unreachable ingestion.

        A failed chunk would otherwise fail the whole event, and its redelivery would read
        every chunk again from the start.
        """
        for attempt in range(1, attempts):
            try:
                return await self._build(user_id, start, end)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.UNAVAILABLE,
                ):
                    raise
                log.warning(
                    "StreamPlays chunk failed; retrying",
                    extra={"user_id": user_id, "attempt": attempt, "code": exc.code().name},
                )
        return await self._build(user_id, start, end)

    async def _build(self, user_id: str, start: datetime, end: datetime) -> dict[str, DayBuilder]:
        """Day builders of the plays that ended in [start, end] (by local day)."""
        request = ingestion_pb.StreamPlaysRequest(user_id=user_id)
        request.start.CopyFrom(to_timestamp(start))
        request.end.CopyFrom(to_timestamp(end))
        builders: dict[str, DayBuilder] = {}
        async for message in self._stream(request, timeout=self._stream_timeout):
            self._add_plays(builders, message)
        return builders

    def _add_plays(self, builders: dict[str, DayBuilder], message: ingestion_pb.PlaysOfDay) -> None:
        zone = self.zone
        for play in message.plays:
            facts = play_facts(play, zone)
            key = facts.local_time.date().isoformat()
            builder = builders.get(key)
            if builder is None:
                builder = builders[key] = DayBuilder()
            builder.add(facts)

    async def _stream(
        self, request: ingestion_pb.StreamPlaysRequest, *, timeout: float
    ) -> AsyncIterator[ingestion_pb.PlaysOfDay]:
        call = self._ingestion.StreamPlays(request, timeout=timeout)
        async for message in call:
            yield message

    def _user_lock(self, user_id: str) -> _UserLock:
        return _UserLock(self._redis, ROLLUP_LOCK_PREFIX + user_id, self._lock_ttl_ms)


class _UserLock:
    """A Redis lock held while one user's rollups are written (waits for it; degrades open).

    If Redis is unreachable the write goes ahead unlocked: a lost race there only costs a
    day that the next event or rebuild writes again, while refusing would stop analytics.
    """

    def __init__(self, redis: Redis, key: str, ttl_ms: int) -> None:
        self._lease = Lease(redis, key, owner=uuid.uuid4().hex, ttl_ms=ttl_ms)
        self._held = False
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        # A holder that died without releasing loses the lock when its lease lapses (ttl).
        while True:
            try:
                if await self._lease.acquire():
                    self._held = True
                    # A long rebuild keeps the lock: renew it well within its ttl.
                    self._renewer = asyncio.create_task(self._renew())
                    return
            except RedisError as exc:
                log.warning("rollup lock unavailable; writing unlocked", extra={"error": repr(exc)})
                return
            await asyncio.sleep(0.02)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease.ttl_ms / 3000)
            try:
                await self._lease.acquire()
            except RedisError as exc:
                log.warning("could not renew rollup lock", extra={"error": repr(exc)})

    async def __aexit__(self, *exc_info: object) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if self._held:
            try:
                await self._lease.release()
            except RedisError as exc:
                log.warning("could not release rollup lock", extra={"error": repr(exc)})
