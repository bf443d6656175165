"""Analytics' background work, run inside the service process: two Redis-Streams consumers.

- **plays-stored events**: `ingestion:plays-stored` read through analytics' own consumer
  group `analytics` (every replica a consumer of it). Each event recomputes the local days
  its [first_played_at, last_played_at] touches (`RollupBuilder.refresh_range`): idempotent,
  so redeliveries and replays change nothing. A malformed event is logged and dropped.
- **rollup builds**: `analytics:rollup-builds` (group `analytics-rollup-build`). POST
  rollup-build starts a JOB_TYPE_ROLLUP_BUILD job in observability's ledger (`already_running`
  decided there, atomically) and queues `{job_id, user_id}`; a consumer marks it running,
  rebuilds every day from ingestion's plays, records the step and finishes the job. A
  consumer that dies mid-build leaves the message pending; another replica (or this one
  after a restart) claims it after `queue_claim_idle_ms` and rebuilds again, which is
  harmless. A job that used up its deliveries is finished FAILED.

Why in the service process and not a separate worker: the work is short (a rebuild of 100k
plays takes seconds) and needs the same clients; consumer groups already spread it over
replicas, so the service scales it as it scales.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

import grpc

from analytics_service.rollup_builder import RollupBuilder
from echostats_grpc.job_ledger import (
    JobEnded,
    JobLedgerClient,
    JobType,
    StartedJob,
    StepRecord,
    StepStatus,
)
from echostats_platform.errors import InvalidArgument, Unavailable
from echostats_platform.streams import Delivery, WorkQueue

log = logging.getLogger(__name__)

PLAYS_STORED_STREAM = "ingestion:plays-stored"
EVENTS_GROUP = "analytics"
BUILD_STREAM = "analytics:rollup-builds"
BUILD_GROUP = "analytics-rollup-build"
DEAD_LETTER_SUFFIX = ":dead"
ROLLUP_BUILD_STEP = "rollup_build"
REASON_QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"


def dependency_error(service: str, exc: grpc.aio.AioRpcError) -> Exception:
    """A failed call to another service as our own domain error."""
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(exc.details() or f"{service} refused the request")
    return Unavailable(f"{service} service unavailable ({exc.code().name})")


def parse_time(value: str) -> datetime:
    """An ISO 8601 instant from an event field (`Z` accepted)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"naive time {value!r}")
    return moment


class RollupBuildStarter:
    """Starts rollup-build jobs in the ledger and queues them."""

    def __init__(self, *, ledger: JobLedgerClient, queue: WorkQueue) -> None:
        self._ledger = ledger
        self._queue = queue

    async def start(self, user_id: str) -> StartedJob:
        """A new build job, or the pending/running one (started=False)."""
        if not user_id:
            raise InvalidArgument("user_id is required")
        try:
            started = await self._ledger.start(user_id=user_id, job_type=JobType.ROLLUP_BUILD)
        except grpc.aio.AioRpcError as exc:
            raise dependency_error("Observability", exc) from exc
        if not started.started:
            return started
        try:
            await self._queue.enqueue({"job_id": started.job_id, "user_id": user_id})
        except Exception as exc:
            log.error("could not queue rollup build; failing it", extra={"error": repr(exc)})
            try:
                await self._ledger.finish(
                    started.job_id,
                    completed=False,
                    error_message="Could not queue the job (work queue unavailable)",
                )
            except Exception:
                log.warning("could not fail the unqueued job", extra={"job_id": started.job_id})
            raise Unavailable(
                "Work queue unavailable; try again", reason=REASON_QUEUE_UNAVAILABLE
            ) from exc
        return started


class BackgroundWork:
    """The two consumers of one service process."""

    def __init__(
        self,
        *,
        builder: RollupBuilder,
        ledger: JobLedgerClient,
        events: WorkQueue,
        builds: WorkQueue,
        event_concurrency: int = 2,
        grace_seconds: float = 20.0,
    ) -> None:
        self._builder = builder
        self._ledger = ledger
        self.events = events
        self.builds = builds
        self._event_concurrency = event_concurrency
        self._grace = grace_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Consume both streams until `stop` is set."""
        await asyncio.gather(
            self.events.run(
                self.handle_event,
                concurrency=self._event_concurrency,
                stop=stop,
                grace_seconds=self._grace,
            ),
            self.builds.run(
                self.handle_build, stop=stop, on_dead=self.build_lost, grace_seconds=self._grace
            ),
        )

    async def handle_event(self, delivery: Delivery) -> None:
        """Bring the event's range of plays into the rollups."""
        payload = delivery.payload
        try:
            user_id = payload["user_id"]
            first = parse_time(payload["first_played_at"])
            last = parse_time(payload["last_played_at"])
        except (KeyError, ValueError) as exc:
            log.error("dropping malformed plays-stored event", extra={"error": repr(exc)})
            return
        if not user_id:
            return
        outcome = await self._builder.refresh_range(user_id, first, last)
        log.info(
            "rollups refreshed from event",
            extra={
                "user_id": user_id,
                "job_id": payload.get("job_id", ""),
                "changed_days": outcome.changed_days,
                "plays": outcome.plays,
            },
        )

    async def handle_build(self, delivery: Delivery) -> None:
        """Run one rollup-build job."""
        job_id = delivery.payload.get("job_id", "")
        user_id = delivery.payload.get("user_id", "")
        if not job_id or not user_id:
            log.error(
                "dropping malformed rollup-build message", extra={"payload": delivery.payload}
            )
            return
        try:
            await self._ledger.mark_running(job_id)
            await self._ledger.record_step(
                job_id,
                StepRecord(ROLLUP_BUILD_STEP, StepStatus.RUNNING, "Rebuilding daily rollups"),
            )
            try:
                outcome = await self._builder.rebuild(user_id)
            except Exception as exc:
                reason = f"Rollup build failed ({type(exc).__name__})"
                log.exception("rollup build failed", extra={"job_id": job_id})
                await self._ledger.record_step(
                    job_id,
                    StepRecord(ROLLUP_BUILD_STEP, StepStatus.FAILED, reason, error=reason),
                )
                await self._ledger.finish(job_id, completed=False, error_message=reason)
                return
            detail = (
                f"Rebuilt {outcome.plays} plays into daily rollups "
                f"({outcome.changed_days} days changed)"
            )
            await self._ledger.record_step(
                job_id,
                StepRecord(ROLLUP_BUILD_STEP, StepStatus.COMPLETED, detail, items=outcome.plays),
            )
            await self._ledger.finish(
                job_id,
                completed=True,
                items_processed=outcome.plays,
                counters={"plays": outcome.plays, "changed_days": outcome.changed_days},
            )
        except JobEnded:
            log.info("rollup build already ended", extra={"job_id": job_id})

    async def build_lost(self, delivery: Delivery, error: BaseException | None) -> None:
        """Finish a build that used up its deliveries as FAILED."""
        job_id = delivery.payload.get("job_id", "")
        if not job_id:
            return
        message = (
            f"Worker lost the job {max(1, delivery.attempt - 1)} times"
            if error is None
            else f"Job failed {delivery.attempt} times ({type(error).__name__}); giving up"
        )
        with contextlib.suppress(JobEnded):
            await self._ledger.finish(job_id, completed=False, error_message=message)
