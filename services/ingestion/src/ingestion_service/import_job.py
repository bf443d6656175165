"""The import lane's privacy-export job: parse an uploaded file and store its plays.

One run:

1. MarkJobRunning; download the GridFS upload to a temporary file (missing → FAILED).
2. A worker thread streams the rows (`imports.reader.iter_rows`), classifies them
   (`imports.rules.classify`) and hands batches of `import_batch_size` rows to the event
   loop through a bounded hand-off (two batches waiting at most), so memory stays flat
   whatever the file size and the queue's heartbeats keep running.
3. Each batch is stored with the repository's idempotent insert (plays and day buckets):
   - extended rows carry a track id: their `_id` is the live-sync rule (`identity.py`), so
     a play already stored by live sync or an earlier import is a duplicate key;
   - account-data rows have no track id: their `_id` is `<user>:acct-<hash of
     account_play_key>` (names normalised + the minute), and a row is also dropped when
     the user already has a play with the same normalised artist and track ending in that
     minute (a live-synced or extended-imported copy). That check is one windowed query
     per batch (FerretDB pushes nothing but `_id` down), never one per row.
   The plays of a batch's newest day wait for the next batch, so a day's bucket is
   written once (see `_import`). Progress (`items_processed` = rows handled so far) is
   reported after every batch.
4. The plays-stored event (per source, the whole range of the file's plays), the `import`
   step, FinishJob COMPLETED with counters, and the upload is deleted.

Counting (exact, also after a worker restart): a redelivered job reprocesses the file from
the start; inserts are idempotent, so nothing is stored twice. Every play an import
inserts is tagged `import_job_id`, and the `imported` counter is the number of the user's
plays carrying this job's tag (a single count at the end; skipped on a first delivery,
whose own insert counts are exact). Skips are counted per reason over the whole file, and
`already_present` = usable rows - imported (duplicates within the file included). So
`imported + already_present + Σ skipped_* = items_total` always.

Bad content found only now (it was validated at upload) fails the job with the parser's
message; a database or ledger outage raises, so the queue redelivers the job. Imports never
call Spotify.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from ingestion_service.history_days import day_of
from ingestion_service.identity import is_track_id
from ingestion_service.import_uploads import ImportUploads, UploadMissing
from ingestion_service.imports.formats import (
    DETECT_HEAD_BYTES,
    ImportError_,
    ImportFileKind,
    detect_kind,
)
from ingestion_service.imports.reader import ArchiveLimits, iter_rows
from ingestion_service.imports.rules import (
    ImportedPlay,
    ImportRules,
    SkipReason,
    account_play_key,
    classify,
)
from ingestion_service.job_ledger import JobEnded, JobLedgerClient, StepRecord, StepStatus
from ingestion_service.models import Play, PlaySource, PlayTrack
from ingestion_service.queues import JobMessage, PlaysStoredPublisher
from ingestion_service.repository import PlayRepository
from ingestion_service.settings import IngestionSettings

log = logging.getLogger(__name__)

IMPORT_STEP = "import"
IMPORT_TAG = "import_job_id"
# Rows whose track id is not a Spotify id after the rules accepted them (defensive).
SKIPPED_BAD_TRACK_ID = "bad_track_id"
# Batches parsed ahead of the writer: bounds memory to about three batches of plays.
QUEUED_BATCHES = 2
_MINUTE = timedelta(minutes=1)


def archive_limits(settings: IngestionSettings) -> ArchiveLimits:
    """The zip safety limits from settings."""
    return ArchiveLimits(
        max_members=settings.import_archive_max_entries,
        max_total_uncompressed=settings.import_archive_max_uncompressed_bytes,
        max_ratio=settings.import_archive_max_ratio,
    )


def import_rules(settings: IngestionSettings) -> ImportRules:
    """Which rows count as plays, from settings."""
    return ImportRules(
        min_ms_played=settings.import_min_ms_played,
        keep_incognito=settings.import_keep_incognito,
    )


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How an import job parses and stores."""

    batch_size: int = 5_000
    rules: ImportRules = field(default_factory=ImportRules)
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    spool_dir: str | None = None


@dataclass(slots=True)
class _Batch:
    """Up to `batch_size` parsed rows: their plays and the rows skipped, by reason."""

    rows: int = 0
    plays: list[Play] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What a run did (`ran` is False when the ledger had already ended the job)."""

    job_id: str
    counters: dict[str, int]
    ran: bool = True


def account_key(artist_name: str, track_name: str, played_at: datetime) -> str:
    """The identity within the user of an account-data play (no track id).

    A hash of `account_play_key` (normalised names + the minute): the key doubles as a
    field name in the day buckets, where the names' dots and dollars are not allowed.
    """
    digest = hashlib.sha256(
        account_play_key(artist_name, track_name, played_at).encode()
    ).hexdigest()
    return f"acct-{digest[:32]}"


def to_play(user_id: str, imported: ImportedPlay) -> Play:
    """An imported row as a play (account rows get their name-and-minute identity)."""
    track = PlayTrack(
        spotify_id=imported.track_id or "",
        name=imported.track_name,
        artist_name=imported.artist_name,
        album_name=imported.album_name or "",
        # Exports do not say how long the track is; catalog enrichment knows later.
        duration_ms=0,
    )
    return Play(
        user_id=user_id,
        track=track,
        played_at=imported.played_at,
        ms_played=imported.ms_played,
        source=PlaySource(imported.source),
        account_key=(
            None
            if imported.track_id
            else account_key(imported.artist_name, imported.track_name, imported.played_at)
        ),
    )


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _hold_back_newest_day(plays: list[Play]) -> tuple[list[Play], list[Play]]:
    """(plays to store now, plays of the newest UTC day among them, held for later)."""
    if not plays:
        return [], []
    days = [day_of(play.played_at) for play in plays]
    newest = max(days)
    ready = [play for play, day in zip(plays, days, strict=True) if day != newest]
    held = [play for play, day in zip(plays, days, strict=True) if day == newest]
    return ready, held


def _parse_file(
    path: Path,
    filename: str,
    user_id: str,
    options: ImportOptions,
    emit: Callable[[_Batch], bool],
) -> None:
    """Stream, classify and batch every row (runs in a thread); stops when `emit` says so."""
    with path.open("rb") as fp:
        kind: ImportFileKind = detect_kind(filename, fp.read(DETECT_HEAD_BYTES))
    batch = _Batch()
    for row in iter_rows(path, filename, limits=options.limits):
        batch.rows += 1
        outcome = classify(row, kind, options.rules)
        if isinstance(outcome, SkipReason):
            batch.skipped[outcome.value] += 1
        elif outcome.track_id is not None and not is_track_id(outcome.track_id):
            batch.skipped[SKIPPED_BAD_TRACK_ID] += 1
        else:
            batch.plays.append(to_play(user_id, outcome))
        if batch.rows >= options.batch_size:
            if not emit(batch):
                return
            batch = _Batch()
    if batch.rows:
        emit(batch)


def format_detail(counters: dict[str, int]) -> str:
    """The `import` step's detail, e.g. "Imported 12,345 plays; 2,000 already present; ..."."""
    imported = counters.get("imported", 0)
    parts = [
        f"Imported {imported:,} play{'' if imported == 1 else 's'}",
        f"{counters.get('already_present', 0):,} already present",
    ]
    skipped = [
        f"{count:,} {name.removeprefix('skipped_').replace('_', ' ')}"
        for name, count in sorted(counters.items())
        if name.startswith("skipped_") and count
    ]
    if skipped:
        parts.append("skipped " + ", ".join(skipped))
    return "; ".join(parts)


class ImportJob:
    """Stores the plays of one uploaded export for one import-lane job."""

    def __init__(
        self,
        *,
        ledger: JobLedgerClient,
        plays: PlayRepository,
        uploads: ImportUploads,
        events: PlaysStoredPublisher,
        options: ImportOptions,
    ) -> None:
        self._ledger = ledger
        self._plays = plays
        self._uploads = uploads
        self._events = events
        self._options = options

    async def run(self, message: JobMessage, *, attempt: int = 1) -> ImportResult:
        """Import the job's upload (idempotent; see the module docstring)."""
        job_id = message.job_id
        try:
            job = await self._ledger.mark_running(job_id)
            fd, name = tempfile.mkstemp(prefix="import-job-", dir=self._options.spool_dir)
            os.close(fd)
            path = Path(name)
            try:
                try:
                    await self._uploads.download_to(message.file_id, path)
                except UploadMissing:
                    return await self._fail(
                        message, "The uploaded file is no longer stored; upload it again"
                    )
                return await self._import(message, path, job.items_total, attempt=attempt)
            finally:
                path.unlink(missing_ok=True)  # noqa: ASYNC240 - instant, and must run when cancelled
        except JobEnded as ended:
            log.warning("job already ended; leaving it", extra={"job_id": ended.job_id})
            await self._uploads.delete_quietly(message.file_id)
            return ImportResult(job_id, {}, ran=False)

    async def _fail(self, message: JobMessage, error: str) -> ImportResult:
        await self._ledger.record_step(
            message.job_id, StepRecord(IMPORT_STEP, StepStatus.FAILED, error=error)
        )
        await self._ledger.finish(message.job_id, completed=False, error_message=error)
        await self._uploads.delete_quietly(message.file_id)
        log.info("import failed", extra={"job_id": message.job_id, "error": error})
        return ImportResult(message.job_id, {})

    async def _import(
        self, message: JobMessage, path: Path, items_total: int, *, attempt: int
    ) -> ImportResult:
        job_id, user_id = message.job_id, message.user_id
        filename = message.filename or path.name
        await self._ledger.record_step(
            job_id,
            StepRecord(
                IMPORT_STEP, StepStatus.RUNNING, f"Importing {items_total:,} rows of {filename}"
            ),
        )
        rows = inserted = usable = 0
        skipped: Counter[str] = Counter()
        # Per source: (first, last) end-of-play time of the file's usable plays, and how
        # many of them this delivery inserted (for the plays-stored events).
        ranges: dict[str, tuple[datetime, datetime]] = {}
        inserted_by_source: Counter[str] = Counter()
        # The plays of the batch's newest day are held back and stored with the next batch
        # (or at the end). A batch boundary then rarely splits a day (exports are in time
        # order), so each day bucket is created by one insert rather than split into
        # parts (history_days.py). Held plays count as stored for the account-row check
        # below, as they would had they been written with their own batch.
        held: list[Play] = []
        try:
            async with contextlib.aclosing(self._batches(path, filename, user_id)) as batches:
                async for batch in batches:
                    rows += batch.rows
                    usable += len(batch.plays)
                    skipped.update(batch.skipped)
                    kept = await self._drop_known_account_plays(user_id, batch.plays, held)
                    for play in batch.plays:
                        source = play.source.value
                        first, last = ranges.get(source, (play.played_at, play.played_at))
                        ranges[source] = (min(first, play.played_at), max(last, play.played_at))
                    ready, held = _hold_back_newest_day(held + kept)
                    stored = await self._store(ready, job_id, attempt=attempt)
                    inserted += stored.total()
                    inserted_by_source.update(stored)
                    await self._ledger.update_progress(
                        job_id,
                        items_processed=rows,
                        items_total=max(items_total, rows),
                        counters=self._counters(inserted, usable, skipped),
                    )
            stored = await self._store(held, job_id, attempt=attempt)
        except ImportError_ as exc:
            # What was parsed before the bad content is stored, held plays included.
            await self._store(held, job_id, attempt=attempt)
            return await self._fail(message, f"{filename}: {exc.message}")
        inserted += stored.total()
        inserted_by_source.update(stored)
        if usable == 0:
            reasons = format_detail(self._counters(0, 0, skipped))
            return await self._fail(message, f"{filename}: no row is a music play ({reasons})")
        if attempt > 1:
            # An earlier delivery may have inserted part of the file: count by the tag.
            inserted = await self._plays.count_tagged(user_id, IMPORT_TAG, job_id)
        counters = self._counters(inserted, usable, skipped)
        for source, (first, last) in sorted(ranges.items()):
            # The whole range, not only what this delivery stored: an earlier delivery
            # may have stored part of it and died before announcing it.
            await self._events.publish(
                user_id=user_id,
                count=inserted_by_source.get(source, 0),
                first_played_at=first,
                last_played_at=last,
                source=source,
                job_id=job_id,
            )
        detail = format_detail(counters)
        await self._ledger.record_step(
            job_id, StepRecord(IMPORT_STEP, StepStatus.COMPLETED, detail, inserted)
        )
        await self._ledger.finish(job_id, completed=True, items_processed=rows, counters=counters)
        await self._uploads.delete_quietly(message.file_id)
        log.info("import stored", extra={"job_id": job_id, "user_id": user_id, **counters})
        return ImportResult(job_id, counters)

    @staticmethod
    def _counters(inserted: int, usable: int, skipped: Counter[str]) -> dict[str, int]:
        counters = {"imported": inserted, "already_present": max(0, usable - inserted)}
        counters.update({f"skipped_{reason}": count for reason, count in skipped.items()})
        return counters

    async def _store(self, plays: list[Play], job_id: str, *, attempt: int) -> Counter[str]:
        """Insert plays, one insert per source; how many each source inserted.

        A zip may mix both kinds, and the events say how many plays of each were stored.
        """
        by_source: dict[str, list[Play]] = defaultdict(list)
        for play in plays:
            by_source[play.source.value].append(play)
        inserted: Counter[str] = Counter()
        for source, fresh in by_source.items():
            outcome = await self._plays.insert_plays(
                fresh, tags={IMPORT_TAG: job_id}, repair=attempt > 1
            )
            inserted[source] += outcome.inserted
        return inserted

    async def _drop_known_account_plays(
        self, user_id: str, plays: list[Play], held: list[Play]
    ) -> list[Play]:
        """The batch without account rows whose play the user already has from elsewhere.

        `held` are earlier batches' plays not written yet: they count as the user's.
        """
        account = [play for play in plays if play.account_key is not None]
        if not account:
            return plays
        start = _minute(min(play.played_at for play in account))
        end = _minute(max(play.played_at for play in account)) + _MINUTE
        known: dict[str, str] = {}
        for _id, artist, track, played_at in await self._plays.names_in_window(user_id, start, end):
            known.setdefault(account_key(artist, track, played_at), _id)
        for play in held:
            known.setdefault(
                account_key(play.track.artist_name, play.track.name, play.played_at), play.id
            )
        # A match with the same `_id` is this very play (an earlier import or delivery):
        # it goes through the insert, which counts it and repairs its day bucket.
        return [
            play
            for play in plays
            if play.account_key is None or known.get(play.account_key, play.id) == play.id
        ]

    async def _batches(self, path: Path, filename: str, user_id: str) -> AsyncIterator[_Batch]:
        """Parsed batches from the worker thread, at most `QUEUED_BATCHES` ahead."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Batch | BaseException | None] = asyncio.Queue()
        slots = threading.BoundedSemaphore(QUEUED_BATCHES)
        stop = threading.Event()

        def hand_over(item: _Batch | BaseException | None) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: the worker is going away
                return False
            return True

        def emit(batch: _Batch) -> bool:
            # Waits for a free slot, checking now and then whether the reader gave up.
            while not slots.acquire(timeout=0.1):
                if stop.is_set():
                    return False
            return not stop.is_set() and hand_over(batch)

        def produce() -> None:
            try:
                _parse_file(path, filename, user_id, self._options, emit)
            except BaseException as exc:  # handed to the reader, which raises it
                hand_over(exc)
            else:
                hand_over(None)

        thread = threading.Thread(target=produce, name="import-parser", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                try:
                    yield item
                finally:
                    with contextlib.suppress(ValueError):
                        slots.release()
        finally:
            # On errors and cancellation too: the parser stops at its next batch.
            stop.set()
