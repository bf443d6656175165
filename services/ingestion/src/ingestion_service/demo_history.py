"""The demo user's history: many months of deterministic synthetic plays, stored as a job.

Runs on the import lane. The plays come from `echostats_synthetic` over the same catalog
the simulator serves (so every track exists there) and with the listener seed of the
user's Spotify id (`listener_seed`), the seed the simulator's own feed for that user uses,
so a later live sync of the demo user dedupes against this history instead of adding to it.

The history ends at the job's `created_at` and starts `demo_history_months` calendar months
earlier. Both bounds come from the ledger job, not the clock, so a redelivered job
regenerates exactly the same plays; they are inserted in batches (`insert_many`,
ordered=False), duplicates counted as already present, with progress after every batch.
Then the plays-stored event is published, the marker is set in `sync_state` (so
SeedDemoHistory answers started=False from then on) and the job finishes with counters
{imported, already_present}. A redelivery after the marker only finishes the job.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from echostats_synthetic import SyntheticPlay, generate_catalog, generate_history, listener_seed
from ingestion_service.job_ledger import JobEnded, JobLedgerClient, StepRecord, StepStatus
from ingestion_service.models import InsertOutcome, Play, PlaySource, PlayTrack
from ingestion_service.queues import JobMessage, PlaysStoredPublisher
from ingestion_service.repository import PlayRepository, SyncStateRepository
from ingestion_service.sync_pipeline import plural

log = logging.getLogger(__name__)

DEMO_HISTORY = "demo_history"

# Resolves the key the listener's synthetic taste is seeded from (the Spotify user id).
ListenerKey = Callable[[str], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class DemoHistoryOptions:
    """What history to generate and how to store it."""

    months: int = 13
    plays_per_day: float = 40.0
    batch_size: int = 2_000
    timezone: str = "UTC"
    catalog_seed: int = 20240101
    catalog_tracks: int = 10_000


@dataclass(frozen=True, slots=True)
class DemoHistoryResult:
    """What a run did."""

    job_id: str
    total: int
    imported: int
    already_present: int
    artists: int = 0
    # False when the ledger had already ended the job and nothing was run.
    ran: bool = True


def months_before(moment: datetime, months: int) -> datetime:
    """The same wall-clock moment `months` calendar months earlier (day clamped)."""
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def to_play(user_id: str, synthetic: SyntheticPlay) -> Play:
    """A synthetic play as a stored demo play."""
    track = synthetic.track
    context = synthetic.context
    return Play(
        user_id=user_id,
        track=PlayTrack(
            spotify_id=track.id,
            name=track.name,
            artist_name=track.artists[0].name if track.artists else "",
            album_name=track.album.name,
            duration_ms=track.duration_ms,
            album_image_url=track.album.image_url,
            artist_ids=tuple(artist.id for artist in track.artists),
            album_id=track.album.id,
        ),
        played_at=synthetic.played_at,
        ms_played=synthetic.ms_played,
        source=PlaySource.DEMO,
        context_type=context.type if context else None,
        context_uri=context.uri if context else None,
    )


def generate_demo_plays(
    user_id: str, *, listener: str, start: datetime, end: datetime, options: DemoHistoryOptions
) -> list[Play]:
    """Every demo play of the user that ended in [start, end), oldest first (deterministic)."""
    catalog = generate_catalog(options.catalog_seed, options.catalog_tracks)
    history = generate_history(
        catalog,
        seed=listener_seed(listener),
        start=start,
        end=end,
        plays_per_day=options.plays_per_day,
        tz=ZoneInfo(options.timezone),
    )
    return [to_play(user_id, synthetic) for synthetic in history]


def _batches(plays: Sequence[Play], size: int) -> list[Sequence[Play]]:
    return [plays[i : i + size] for i in range(0, len(plays), size)]


class DemoHistoryJob:
    """Generates and stores the demo history for one import-lane job."""

    def __init__(
        self,
        *,
        ledger: JobLedgerClient,
        plays: PlayRepository,
        state: SyncStateRepository,
        events: PlaysStoredPublisher,
        listener_key: ListenerKey,
        options: DemoHistoryOptions,
    ) -> None:
        self._ledger = ledger
        self._plays = plays
        self._state = state
        self._events = events
        self._listener_key = listener_key
        self._options = options

    async def run(self, message: JobMessage, *, attempt: int = 1) -> DemoHistoryResult:
        """Store the user's demo history (idempotent), reporting progress to the ledger."""
        job_id, user_id = message.job_id, message.user_id
        try:
            job = await self._ledger.mark_running(job_id)
            marker = await self._state.demo_history_marker(user_id)
            if marker is not None:
                # Stored by an earlier delivery that died before finishing the job.
                counters = marker.counters
                await self._ledger.finish(job_id, completed=True, counters=counters)
                return DemoHistoryResult(
                    job_id,
                    sum(counters.values()),
                    counters.get("imported", 0),
                    counters.get("already_present", 0),
                )
            return await self._store(message, job.created_at.ToDatetime(tzinfo=UTC))
        except JobEnded as ended:
            log.warning("job already ended; leaving it", extra={"job_id": ended.job_id})
            return DemoHistoryResult(job_id, 0, 0, 0, ran=False)

    async def _store(self, message: JobMessage, created_at: datetime) -> DemoHistoryResult:
        job_id, user_id = message.job_id, message.user_id
        options = self._options
        end = created_at.replace(microsecond=0)
        start = months_before(end, options.months)
        listener = await self._listener_key(user_id)
        # Generating ~15k plays takes a fraction of a second of CPU: off the event loop, so
        # the queue's heartbeats and the other lane keep running meanwhile.
        plays = await asyncio.to_thread(
            generate_demo_plays, user_id, listener=listener, start=start, end=end, options=options
        )
        total = len(plays)
        artists = len({artist for play in plays for artist in play.track.artist_ids})
        await self._ledger.update_progress(job_id, items_processed=0, items_total=total)
        await self._ledger.record_step(
            job_id,
            StepRecord(
                DEMO_HISTORY,
                StepStatus.RUNNING,
                f"Storing {plural(total, 'demo play')} over {options.months} months",
            ),
        )
        outcome = InsertOutcome()
        processed = 0
        for batch in _batches(plays, options.batch_size):
            outcome = outcome + await self._plays.insert_plays(batch)
            processed += len(batch)
            await self._ledger.update_progress(
                job_id,
                items_processed=processed,
                items_total=total,
                counters=self._counters(outcome),
            )
        if plays:
            # The whole range, not only what this delivery inserted: an earlier delivery
            # may have stored part of it and died before announcing it.
            await self._events.publish(
                user_id=user_id,
                count=outcome.inserted,
                first_played_at=plays[0].played_at,
                last_played_at=plays[-1].played_at,
                source=PlaySource.DEMO.value,
                job_id=job_id,
            )
        counters = self._counters(outcome)
        await self._state.mark_demo_history_seeded(user_id, job_id=job_id, counters=counters)
        detail = (
            f"Generated {plural(total, 'play')} by {plural(artists, 'artist')} over "
            f"{options.months} months: {outcome.inserted} new, "
            f"{outcome.already_present} already present"
        )
        await self._ledger.record_step(
            job_id, StepRecord(DEMO_HISTORY, StepStatus.COMPLETED, detail, outcome.inserted)
        )
        await self._ledger.finish(job_id, completed=True, items_processed=total, counters=counters)
        log.info(
            "demo history stored",
            extra={"job_id": job_id, "user_id": user_id, "total": total, **counters},
        )
        return DemoHistoryResult(
            job_id, total, outcome.inserted, outcome.already_present, artists=artists
        )

    @staticmethod
    def _counters(outcome: InsertOutcome) -> dict[str, int]:
        return {"imported": outcome.inserted, "already_present": outcome.already_present}
