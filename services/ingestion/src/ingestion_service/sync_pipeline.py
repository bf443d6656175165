"""The sync pipeline a worker runs for one sync job, and how it reports to the job ledger.

Order: recently_played → audio_features → playlists → top_items → analytics_refresh. Each
step is recorded in the job ({action, status, detail, items, error}); a step that fails is
recorded as failed and the next steps still run, so nothing an earlier step stored is lost.
The job then finishes COMPLETED when every step completed or was skipped, or FAILED with
"<action>: <reason>" for each failed step. items_processed = new plays stored.

recently_played stores plays here; audio_features, playlists and top_items are catalog
RPCs (EnrichForUser, SyncPlaylists, SyncTopItems) that report their own honest counts;
analytics_refresh is analytics' RefreshAfterSync (roll up the fetched days, refresh the
snapshots), SKIPPED with the reason when analytics is unreachable. Nothing claims work
that was not done.

Restart safety: the work queue redelivers a job whose worker died, so every part of a run
is idempotent. MarkJobRunning may be called again; plays dedupe by `_id`; the cursor only
moves forward, and only past pages already stored; steps are re-recorded by action. A
job the ledger has already ended (finished, or failed by its reaper) is left alone.

Errors in a step (Spotify, auth, the database) fail that step. Errors talking to the ledger
or publishing the plays-stored event are not step failures: they propagate, the message
stays pending, and the queue delivers the job again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
from pymongo.errors import PyMongoError

from echostats.analytics.v1 import analytics_service_pb2 as analytics_pb
from echostats.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from echostats.catalog.v1 import catalog_service_pb2 as catalog_pb
from echostats.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from echostats_grpc.client import error_reason, error_retry_after
from echostats_grpc.timestamps import to_timestamp
from echostats_platform.errors import (
    REASON_NO_SPOTIFY_CREDENTIALS,
    REASON_REAUTH_REQUIRED,
    Unauthenticated,
)
from echostats_spotify import (
    Priority,
    RateLimited,
    SpotifyClient,
    SpotifyHTTPError,
    SpotifyUpstreamError,
)
from echostats_spotify.errors import (
    REASON_DEADLINE_EXCEEDED,
    REASON_QUOTA_EXCEEDED,
    REASON_RATE_LIMITED,
)
from ingestion_service.job_ledger import JobEnded, JobLedgerClient, StepRecord, StepStatus
from ingestion_service.models import InsertOutcome, PlaySource
from ingestion_service.queues import JobMessage, PlaysStoredPublisher
from ingestion_service.recently_played import (
    ENDPOINT,
    CursorWalk,
    Direction,
    parse_page,
)
from ingestion_service.repository import PlayRepository, SyncStateRepository

log = logging.getLogger(__name__)

RECENTLY_PLAYED = "recently_played"
AUDIO_FEATURES = "audio_features"
PLAYLISTS = "playlists"
TOP_ITEMS = "top_items"
ANALYTICS_REFRESH = "analytics_refresh"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 track`, `2 tracks`."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def describe_failure(exc: BaseException) -> str:
    """A short, user-readable reason for a failed step (no internals)."""
    if isinstance(exc, RateLimited):
        wait = f"; retry after {exc.retry_after} s" if exc.retry_after else ""
        if exc.quota_exceeded:
            return f"Spotify quota exceeded{wait}"
        return f"Spotify rate limit{wait}"
    if isinstance(exc, SpotifyHTTPError) and isinstance(exc, Unauthenticated):
        return "Spotify rejected the user's authorization; sign in again"
    if isinstance(exc, SpotifyHTTPError):
        if exc.status_code == 0:
            if exc.reason == REASON_DEADLINE_EXCEEDED:
                return "Spotify did not answer in time"
            return "Spotify unreachable"
        return f"Spotify API error ({exc.status_code})"
    if isinstance(exc, PeerServiceError):
        return str(exc)
    if isinstance(exc, grpc.aio.AioRpcError):
        # Besides auth (the user's Spotify access token), steps call catalog, whose
        # failures arrive as PeerServiceError, and analytics, whose step never raises.
        reason = error_reason(exc)
        if reason == REASON_REAUTH_REQUIRED:
            return "Spotify sign-in required; the user must sign in again"
        if reason == REASON_NO_SPOTIFY_CREDENTIALS:
            return "No Spotify account is linked to this user"
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return "User not found"
        return f"Auth service error ({exc.code().name})"
    if isinstance(exc, PyMongoError):
        return "Database error while storing plays"
    return f"Internal error ({type(exc).__name__})"


# A catalog step may fetch a few hundred tracks from Spotify (development-mode apps look
# them up one by one), within its budget; it reports what is left to the background.
CATALOG_STEP_TIMEOUT_SECONDS = 120.0


def _step_outcome(report: catalog_pb.StepReport) -> StepOutcome:
    """A catalog StepReport as this pipeline's outcome."""
    try:
        status = StepStatus(report.status)
    except ValueError:
        status = StepStatus.COMPLETED
    return StepOutcome(status, report.detail, int(report.items))


class PeerServiceError(Exception):
    """Another service (not auth) failed a step's call; the message names it and the code."""

    def __init__(self, service: str, exc: grpc.aio.AioRpcError) -> None:
        super().__init__(f"{service} service error ({exc.code().name})")


def _from_catalog_error(exc: grpc.aio.AioRpcError) -> BaseException:
    """Catalog's Spotify failures as Spotify errors (so `describe_failure` names them),
    auth's refusals it passes on as they are, anything else as a catalog failure."""
    reason = error_reason(exc)
    if reason in (REASON_RATE_LIMITED, REASON_QUOTA_EXCEEDED):
        return RateLimited(
            exc.details() or "Spotify rate limit",
            quota_exceeded=reason == REASON_QUOTA_EXCEEDED,
            retry_after=error_retry_after(exc),
            status_code=429,
            method="GET",
            endpoint="",
        )
    if reason == "UPSTREAM_ERROR":
        return SpotifyUpstreamError(
            exc.details() or "Spotify failed", status_code=502, method="GET", endpoint=""
        )
    if reason in (REASON_REAUTH_REQUIRED, REASON_NO_SPOTIFY_CREDENTIALS):
        return exc
    return PeerServiceError("Catalog", exc)


@dataclass
class SyncRun:
    """What one run of the pipeline has done so far (shared by its steps)."""

    message: JobMessage
    attempt: int
    fetched: int = 0
    skipped: int = 0
    pages: int = 0
    stored: InsertOutcome = field(default_factory=InsertOutcome)
    # End-of-play range of every play fetched (new or not), for the redelivery event.
    seen_first: datetime | None = None
    seen_last: datetime | None = None

    @property
    def new(self) -> int:
        """New plays stored by this run."""
        return self.stored.inserted

    def saw(self, times: list[datetime]) -> None:
        """Widen the range of fetched plays."""
        if times:
            self.seen_first = min([*times, *([self.seen_first] if self.seen_first else [])])
            self.seen_last = max([*times, *([self.seen_last] if self.seen_last else [])])


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """How a step that did not raise ended."""

    status: StepStatus
    detail: str
    items: int = 0


@dataclass(frozen=True, slots=True)
class SyncResult:
    """How a job ended (for logs and tests)."""

    job_id: str
    completed: bool
    new_plays: int
    fetched: int
    error_message: str | None
    # False when the ledger had already ended the job and nothing was run.
    ran: bool = True


@dataclass(frozen=True, slots=True)
class Step:
    """One pipeline step: its action name, what it does, and its "running" note if any."""

    action: str
    run: Callable[[SyncRun], Awaitable[StepOutcome]]
    # Steps that call out are recorded as running first, so a slow one shows in the UI.
    running_detail: str | None = None


class SyncPipeline:
    """Runs the sync steps for one job and records them in the ledger."""

    def __init__(
        self,
        *,
        ledger: JobLedgerClient,
        spotify: SpotifyClient,
        plays: PlayRepository,
        state: SyncStateRepository,
        events: PlaysStoredPublisher,
        first_sync_max_pages: int,
        max_forward_pages: int,
        analytics: analytics_grpc.AnalyticsServiceStub | None = None,
        catalog: catalog_grpc.CatalogServiceStub | None = None,
        catalog_timeout: float = CATALOG_STEP_TIMEOUT_SECONDS,
    ) -> None:
        self._analytics = analytics
        self._ledger = ledger
        self._spotify = spotify
        self._plays = plays
        self._state = state
        self._events = events
        self._first_sync_max_pages = first_sync_max_pages
        self._max_forward_pages = max_forward_pages
        self._catalog = catalog
        self._catalog_timeout = catalog_timeout
        self.steps: tuple[Step, ...] = (
            Step(RECENTLY_PLAYED, self.recently_played, "Fetching recently played tracks"),
            Step(AUDIO_FEATURES, self.audio_features, "Enriching new tracks"),
            Step(PLAYLISTS, self.playlists, "Syncing playlists"),
            Step(TOP_ITEMS, self.top_items, "Syncing top items"),
            Step(ANALYTICS_REFRESH, self.analytics_refresh),
        )

    async def run(self, message: JobMessage, *, attempt: int = 1) -> SyncResult:
        """Run every step for the job, record them, publish new plays, finish the job."""
        job_id = message.job_id
        try:
            await self._ledger.mark_running(job_id)
            run = SyncRun(message=message, attempt=attempt)
            failures: list[str] = []
            for step in self.steps:
                record = await self._run_step(step, run)
                if record.status is StepStatus.FAILED:
                    failures.append(f"{step.action}: {record.error}")
            await self._publish(run)
            error_message = "; ".join(failures) or None
            await self._ledger.finish(
                job_id,
                completed=not failures,
                error_message=error_message,
                items_processed=run.new,
                counters={
                    "fetched": run.fetched,
                    "new": run.new,
                    "already_present": run.stored.already_present,
                    "skipped": run.skipped,
                },
            )
        except JobEnded as ended:
            log.warning("job already ended; leaving it", extra={"job_id": ended.job_id})
            return SyncResult(job_id, False, 0, 0, None, ran=False)
        log.info(
            "sync finished",
            extra={
                "job_id": job_id,
                "user_id": message.user_id,
                "completed": not failures,
                "new_plays": run.new,
                "fetched": run.fetched,
                "attempt": attempt,
            },
        )
        return SyncResult(job_id, not failures, run.new, run.fetched, error_message)

    async def _run_step(self, step: Step, run: SyncRun) -> StepRecord:
        job_id = run.message.job_id
        if step.running_detail is not None:
            await self._ledger.record_step(
                job_id, StepRecord(step.action, StepStatus.RUNNING, step.running_detail)
            )
        try:
            outcome = await step.run(run)
            record = StepRecord(step.action, outcome.status, outcome.detail, outcome.items)
        except Exception as exc:
            error = describe_failure(exc)
            log.warning(
                "sync step failed",
                exc_info=not isinstance(
                    exc, SpotifyHTTPError | grpc.aio.AioRpcError | PeerServiceError
                ),
                extra={"job_id": job_id, "action": step.action, "error": error},
            )
            record = StepRecord(
                step.action,
                StepStatus.FAILED,
                self._failed_detail(step.action, run),
                run.new if step.action == RECENTLY_PLAYED else 0,
                error,
            )
        await self._ledger.record_step(job_id, record)
        return record

    @staticmethod
    def _failed_detail(action: str, run: SyncRun) -> str:
        if action != RECENTLY_PLAYED:
            return "Step failed"
        if not run.fetched:
            return "Could not fetch recently played tracks"
        # What was stored before the failure stays stored: say so.
        return f"Fetched {plural(run.fetched, 'recent track')}, {run.new} new, before the error"

    # -- steps -----------------------------------------------------------------------------

    async def recently_played(self, run: SyncRun) -> StepOutcome:
        """Fetch recently played tracks by cursor and store each page idempotently."""
        user_id, job_id = run.message.user_id, run.message.job_id
        walk = CursorWalk.start(
            await self._state.get_cursor(user_id),
            first_sync_max_pages=self._first_sync_max_pages,
            max_forward_pages=self._max_forward_pages,
        )
        while not walk.done:
            body = await self._spotify.get_json(
                ENDPOINT, user_id=user_id, params=walk.params(), priority=Priority.BACKGROUND
            )
            page = parse_page(body, user_id=user_id)
            run.pages += 1
            run.fetched += len(page.plays)
            run.skipped += page.skipped
            run.saw([play.played_at for play in page.plays])
            # Stored before the cursor moves past it: a crash after this point refetches
            # the page at worst, and the plays dedupe.
            run.stored = run.stored + await self._plays.insert_plays(
                page.plays, repair=run.attempt > 1
            )
            if walk.direction is Direction.FORWARD and page.newest_ms is not None:
                await self._state.advance_cursor(user_id, page.newest_ms)
            walk.advance(page)
            if page.plays:
                await self._ledger.update_progress(job_id, items_processed=run.new)
        if walk.direction is Direction.BACKWARD and walk.newest_ms is not None:
            # First sync: the cursor is set only once the whole walk back is stored.
            await self._state.advance_cursor(user_id, walk.newest_ms)
        await self._ledger.update_progress(job_id, items_processed=run.new, items_total=run.new)
        detail = f"Fetched {plural(run.fetched, 'recent track')}, {run.new} new"
        if run.skipped:
            detail += f" ({plural(run.skipped, 'item')} without a Spotify track skipped)"
        log.info(
            "recently played fetched",
            extra={
                "job_id": job_id,
                "user_id": user_id,
                "direction": walk.direction.value,
                "pages": walk.pages,
                "stop": walk.stop_reason,
                "fetched": run.fetched,
                "new": run.new,
            },
        )
        return StepOutcome(StepStatus.COMPLETED, detail, run.new)

    async def audio_features(self, run: SyncRun) -> StepOutcome:
        """Enrich the tracks of this run's plays (metadata and audio features) in catalog.

        Catalog reads the plays of the run's range back from ingestion, fetches what it can
        within the step's share of the user's budget and leaves the rest to its background
        drainer; the step reports catalog's own counts.
        """
        if self._catalog is None:
            return StepOutcome(StepStatus.SKIPPED, "Catalog service not configured")
        message = run.message
        request = catalog_pb.EnrichForUserRequest(user_id=message.user_id, job_id=message.job_id)
        if run.attempt > 1 and run.fetched > 0:
            first, last = run.seen_first, run.seen_last
        else:
            first, last = run.stored.first_inserted_at, run.stored.last_inserted_at
        if first is not None and last is not None:
            request.played_from.CopyFrom(to_timestamp(first))
            request.played_to.CopyFrom(to_timestamp(last))
        report = await self._call_catalog(self._catalog.EnrichForUser, request)
        return _step_outcome(report)

    async def playlists(self, run: SyncRun) -> StepOutcome:
        """Sync the user's playlists in catalog (additions, changes and deletions)."""
        if self._catalog is None:
            return StepOutcome(StepStatus.SKIPPED, "Catalog service not configured")
        request = catalog_pb.UserRequest(user_id=run.message.user_id, job_id=run.message.job_id)
        return _step_outcome(await self._call_catalog(self._catalog.SyncPlaylists, request))

    async def top_items(self, run: SyncRun) -> StepOutcome:
        """Sync the user's top tracks and artists in catalog."""
        if self._catalog is None:
            return StepOutcome(StepStatus.SKIPPED, "Catalog service not configured")
        request = catalog_pb.UserRequest(user_id=run.message.user_id, job_id=run.message.job_id)
        return _step_outcome(await self._call_catalog(self._catalog.SyncTopItems, request))

    async def _call_catalog(self, rpc: Any, request: Any) -> catalog_pb.StepReport:
        """Call a catalog step RPC; Spotify failures it reports come back as Spotify errors."""
        try:
            return await rpc(request, timeout=self._catalog_timeout)
        except grpc.aio.AioRpcError as exc:
            raise _from_catalog_error(exc) from exc

    async def analytics_refresh(self, run: SyncRun) -> StepOutcome:
        """Roll the fetched plays' days into analytics and refresh the user's snapshots.

        Analytics recomputes every local day the fetched range touches (idempotent) and
        warms the five snapshots, and reports what it did. If it cannot be reached the step
        is SKIPPED with the reason: the plays-stored event published after the steps brings
        its rollups up to date once it is back.
        """
        if self._analytics is None:
            return StepOutcome(StepStatus.SKIPPED, "Analytics refresh not configured")
        request = analytics_pb.RefreshAfterSyncRequest(
            user_id=run.message.user_id, job_id=run.message.job_id
        )
        if run.seen_first is not None and run.seen_last is not None:
            request.first_played_at.CopyFrom(to_timestamp(run.seen_first))
            request.last_played_at.CopyFrom(to_timestamp(run.seen_last))
        try:
            report = await self._analytics.RefreshAfterSync(request)
        except grpc.aio.AioRpcError as exc:
            return StepOutcome(
                StepStatus.SKIPPED,
                f"Analytics service unavailable ({exc.code().name}); "
                "its rollups catch up from the plays-stored event",
            )
        return StepOutcome(StepStatus(report.status.lower()), report.detail, report.items)

    # -- events ----------------------------------------------------------------------------

    async def _publish(self, run: SyncRun) -> None:
        """Announce stored plays; on a redelivery, announce everything fetched.

        An earlier delivery may have stored plays and died before publishing: this one
        then finds them "already present". So a redelivered job (attempt > 1) announces the
        whole range it fetched; consumers recompute that range, which is idempotent.
        """
        message = run.message
        if run.attempt > 1 and run.fetched > 0:
            first, last = run.seen_first, run.seen_last
        elif run.new > 0:
            first, last = run.stored.first_inserted_at, run.stored.last_inserted_at
        else:
            return
        assert first is not None and last is not None
        await self._events.publish(
            user_id=message.user_id,
            count=run.new,
            first_played_at=first,
            last_played_at=last,
            source=PlaySource.API.value,
            job_id=message.job_id,
        )
