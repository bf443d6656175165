"""The catalog's background work, run inside each catalog replica (no separate worker).

Two loops:
- the **plays-stored consumer**: a `WorkQueue` member of group `catalog` on ingestion's
  `ingestion:plays-stored` stream (`plays_consumer.py`), which queues unknown ids;
- the **drainer**: goes through the users with queued ids and runs `Enricher.enrich_user`
  for each within its budget; waits while Spotify's pause is in force, sleeps when idle.

Replicas share everything through Redis (the consumer group spreads events, the per-user
lock keeps two replicas off one user's queue), so running it in every replica is safe.
A user whose token cannot be had (no Spotify account linked, sign-in needed) is put on hold
for a while instead of being retried every round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc

from catalog_service.enrichment import Enricher
from catalog_service.enrichment_queue import Kind, UserHolds
from catalog_service.plays_consumer import PlaysStoredHandler
from echostats_platform.streams import WorkQueue
from echostats_spotify import SpotifyUnauthorized

log = logging.getLogger(__name__)

# How long a user whose token auth refused is left alone.
HOLD_SECONDS = 600.0
# How long a user whose enrichment failed otherwise waits before the next try.
RETRY_SECONDS = 30.0
# Calls one drainer turn may spend on one user before moving to the next (fairness).
TURN_CALLS = 100
# Users whose turns run at the same time (see `EnrichmentDrainer.round`).
USERS_AT_ONCE = 8


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class EnrichmentDrainer:
    """Runs queued enrichment for every user, round-robin, until stopped."""

    def __init__(
        self, *, enricher: Enricher, holds: UserHolds, idle_seconds: float, budget_calls: int
    ) -> None:
        self._enricher = enricher
        self._holds = holds
        self._idle = idle_seconds
        self._turn_calls = min(TURN_CALLS, budget_calls)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set; failures of a round are logged and retried."""
        while not stop.is_set():
            try:
                worked = await self.round()
            except Exception:
                log.warning("enrichment round failed", exc_info=True)
                worked = False
            if not worked:
                paused = await self._paused()
                await _pause(stop, max(self._idle, min(paused, 60.0)))

    async def _paused(self) -> float:
        try:
            return await self._enricher.queue.paused_for()
        except Exception:
            return 0.0

    async def round(self) -> bool:
        """One turn for every user with queued work; True when any call was made.

        Users take their turns USERS_AT_ONCE at a time: a user whose token auth cannot
        give costs a couple of seconds before being put on hold, and a row of them (a
        series of revoked sign-ins) would otherwise hold everyone else's enrichment up for
        minutes. Each user's queue has its own lock, so turns of different users can overlap.
        """
        queue = self._enricher.queue
        if await queue.paused_for() > 0:
            return False
        limit = asyncio.Semaphore(USERS_AT_ONCE)

        async def turn(user_id: str) -> tuple[bool, bool]:
            async with limit:
                if await queue.paused_for() > 0:
                    return False, True
                return await self._turn(user_id)

        results = await asyncio.gather(*(turn(user_id) for user_id in await queue.users()))
        return any(worked for worked, _ in results)

    async def _turn(self, user_id: str) -> tuple[bool, bool]:
        """One user's turn: (whether a call was made, whether Spotify paused us)."""
        queue = self._enricher.queue
        if await self._holds.held(user_id):
            return False, False
        try:
            report = await self._enricher.enrich_user(user_id, max_calls=self._turn_calls)
        except (grpc.aio.AioRpcError, SpotifyUnauthorized) as exc:
            # The token: the user is unknown to auth, has no Spotify account linked or
            # must sign in again. Time (and the user) will fix it, not a retry loop.
            log.info(
                "enrichment on hold for user",
                extra={"user_id": user_id, "error": type(exc).__name__},
            )
            await self._holds.hold(user_id, HOLD_SECONDS)
            return False, False
        except Exception:
            # One user's failure (Spotify down, a database hiccup) must not hold up the
            # others: that user waits a little, the round goes on.
            log.warning("enrichment failed for user", extra={"user_id": user_id}, exc_info=True)
            await self._holds.hold(user_id, RETRY_SECONDS)
            return False, False
        if report.paused_for:
            return report.calls > 0, True
        waiting = [Kind.TRACKS, Kind.ARTISTS, Kind.ALBUMS]
        if not report.closed:
            waiting.append(Kind.FEATURES)
        await queue.forget_if_empty(user_id, waiting)
        return report.calls > 0, False


async def consume_plays_stored(
    queue: WorkQueue, handler: PlaysStoredHandler, stop: asyncio.Event
) -> None:
    """Handle plays-stored events until stopped (the WorkQueue survives Redis outages)."""
    await queue.run(handler, concurrency=2, stop=stop, grace_seconds=5.0)
