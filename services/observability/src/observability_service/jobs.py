"""The job ledger: start (atomically, one job per user and group), progress, steps, finish, reap.

Starting a job takes the lock of its group (`job_locks`, `_id` "<user_id>:<group>") with a
plain insert. The unique `_id` lets exactly one of any number of concurrent starts win, on
MongoDB and FerretDB alike, across replicas, without transactions. The losers read the
lock and answer `started=False` with the job that holds it. The lock is deleted when its
job finishes or is reaped, always with a compare-and-swap on the job id (`delete_one`
on `{_id, job_id}`), so a late release never frees a newer job's lock.

A lock can outlive its job (a crash between finishing the job and deleting the lock, or
between inserting the lock and inserting the job). A start that meets such a stale lock
deletes it (same compare-and-swap) and tries again. A lock whose job document does not
exist yet is only taken for stale after `ORPHAN_LOCK_GRACE`: until then its holder is
assumed to be between its two inserts, and the lock's snapshot is the answer.

On MongoDB every conditional single-document write here is atomic. FerretDB v1.24
evaluates update and delete filters in Go before writing by `_id`, so two writers racing
on the same document in the same instant (e.g. two starts replacing the same stale lock)
are only best-effort there; the common path (a free or a live lock) needs nothing but the
insert, which FerretDB does enforce atomically through its unique `_id` index.

Decisions the REST surface shows:
- `running` in the stats counts RUNNING jobs only; a PENDING job counts in `total_jobs`
  alone (it is queued, not running).
- `total_items_synced` sums `items_processed` over completed jobs of every type;
  `last_sync_at` is the latest `completed_at` of a completed sync job (initial,
  periodic or manual).
- Updating a job that has ended (progress, steps, running) fails with FAILED_PRECONDITION
  (reason JOB_ALREADY_ENDED): a worker whose job was reaped learns it lost the job.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bson import ObjectId

from echostats_platform.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from echostats_platform.timeutil import utc_now
from observability_service.models import (
    FINAL_STATUSES,
    Job,
    JobGroup,
    JobStats,
    JobStatus,
    JobStep,
    JobType,
    Page,
    StartedJob,
)
from observability_service.repository import JobLock, JobRepository, lock_key, truncate_to_ms
from observability_service.validation import PageRequest, require_user_id

log = logging.getLogger(__name__)

# A lock whose job document is still missing after this long was left by a start that
# died between its two inserts; younger ones belong to a start still in progress.
ORPHAN_LOCK_GRACE = timedelta(seconds=60)
# Rounds of "lock taken by a stale job → replace it → try again" before giving up; more
# than one only happens when other starts race for the same freed lock.
_START_ATTEMPTS = 5
# Rounds of read-modify-write of a job's steps array before giving up.
_STEP_ATTEMPTS = 5
# Jobs the reaper looks at per round (the rest wait for the next round).
_REAP_BATCH = 500
_MAX_STEPS = 100
_MAX_DETAIL = 1000
_MAX_ERROR = 2000
_COUNTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

JOBS_PAGE_SIZE_DEFAULT = 20
JOBS_PAGE_SIZE_MAX = 100

_NOT_FOUND_REASON = "JOB_NOT_FOUND"
_ENDED_REASON = "JOB_ALREADY_ENDED"


def _require_job_id(job_id: str) -> str:
    if not job_id:
        raise InvalidArgument("job_id is required")
    return job_id


def _not_found() -> NotFound:
    return NotFound("Job not found", reason=_NOT_FOUND_REASON)


def _ended(job: Job) -> FailedPrecondition:
    return FailedPrecondition(f"Job has already ended ({job.status.value})", reason=_ENDED_REASON)


def _truncate(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_count(name: str, value: int) -> int:
    if value < 0:
        raise InvalidArgument(f"{name} must not be negative")
    return value


def _check_counters(counters: Mapping[str, int]) -> dict[str, int]:
    # Counter names become field names under `counters`: no dots or `$` (MongoDB paths),
    # short, so one worker's typo cannot bloat the document.
    checked: dict[str, int] = {}
    for name, value in counters.items():
        if not _COUNTER_NAME.match(name):
            raise InvalidArgument(f"counter name {name!r} must be 1-64 letters, digits, '_' or '-'")
        checked[name] = int(value)
    return checked


def stale_job_message(stale_after_seconds: int) -> str:
    """The error_message of a job the reaper failed."""
    return f"Job timed out: no progress for {stale_after_seconds} s (worker lost?)"


class JobLedger:
    """Use cases of the job ledger."""

    def __init__(
        self,
        *,
        jobs: JobRepository,
        stale_after_seconds: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._jobs = jobs
        self._stale_after_seconds = stale_after_seconds
        self._clock = clock

    def _now(self) -> datetime:
        # MongoDB keeps milliseconds: answers made before and after storing must agree.
        return truncate_to_ms(self._clock())

    async def start(self, *, user_id: str, job_type: JobType, items_total: int) -> StartedJob:
        """Create a pending job unless one of its group is pending or running for the user."""
        require_user_id(user_id)
        _check_count("items_total", items_total)
        group = job_type.group
        key = lock_key(user_id, group)
        for _ in range(_START_ATTEMPTS):
            now = self._now()
            job = Job(
                id=str(ObjectId()),
                user_id=user_id,
                job_type=job_type,
                status=JobStatus.PENDING,
                items_processed=0,
                items_total=items_total,
                error_message=None,
                created_at=now,
                updated_at=now,
            )
            lock = JobLock(
                key=key,
                job_id=job.id,
                user_id=user_id,
                job_type=job_type,
                items_total=items_total,
                created_at=now,
            )
            if await self._jobs.insert_lock(lock):
                try:
                    await self._jobs.insert_job(job, group)
                except BaseException:
                    # Give the group back; if even that fails, the lock turns stale after
                    # ORPHAN_LOCK_GRACE and the next start replaces it.
                    await self._release_quietly(key, job.id)
                    raise
                log.info(
                    "job started",
                    extra={"job_id": job.id, "job_type": job_type.value, "user_id": user_id},
                )
                return StartedJob(started=True, job=job)
            holder = await self._jobs.get_lock(key)
            if holder is None:
                continue  # released between our insert and our read: try again
            existing = await self._jobs.get(holder.job_id)
            if existing is not None and existing.status.is_active:
                return StartedJob(started=False, job=existing)
            if existing is None and now - holder.created_at < ORPHAN_LOCK_GRACE:
                return StartedJob(started=False, job=holder.provisional_job())
            log.warning(
                "replacing stale job lock",
                extra={
                    "lock": key,
                    "job_id": holder.job_id,
                    "job_status": existing.status.value if existing else "missing",
                },
            )
            await self._jobs.release_lock(key, holder.job_id)
        raise Unavailable("Too many concurrent job starts; try again", reason="JOB_START_CONTENDED")

    async def _release_quietly(self, key: str, job_id: str) -> None:
        try:
            await self._jobs.release_lock(key, job_id)
        except Exception:
            log.warning("could not release job lock", extra={"lock": key, "job_id": job_id})

    async def _release(self, job: Job) -> None:
        await self._jobs.release_lock(lock_key(job.user_id, job.job_type.group), job.id)

    async def get(self, *, job_id: str, user_id: str) -> Job:
        """One job of the user; NOT_FOUND for another user's job, as for a missing one."""
        require_user_id(user_id)
        job = await self._jobs.get(_require_job_id(job_id))
        if job is None or job.user_id != user_id:
            raise _not_found()
        return job

    async def _explain_inactive(self, job_id: str) -> NotFound | FailedPrecondition:
        job = await self._jobs.get(job_id)
        return _not_found() if job is None else _ended(job)

    async def mark_running(self, *, job_id: str) -> Job:
        """Pending → running (started_at set once); calling again on a running job is a no-op."""
        job = await self._jobs.mark_running(_require_job_id(job_id), self._now())
        if job is None:
            raise await self._explain_inactive(job_id)
        return job

    async def update_progress(
        self,
        *,
        job_id: str,
        items_processed: int,
        items_total: int,
        counters: Mapping[str, int],
    ) -> Job:
        """Set items_processed, items_total (when > 0) and merge named counters."""
        _require_job_id(job_id)
        _check_count("items_processed", items_processed)
        _check_count("items_total", items_total)
        job = await self._jobs.update_progress(
            job_id,
            items_processed=items_processed,
            items_total=items_total or None,
            counters=_check_counters(counters),
            now=self._now(),
        )
        if job is None:
            raise await self._explain_inactive(job_id)
        return job

    async def record_step(self, *, job_id: str, step: JobStep) -> Job:
        """Record a step; one with the same action replaces the earlier record in place."""
        _require_job_id(job_id)
        if not step.action or len(step.action) > 64:
            raise InvalidArgument("step action must be 1-64 characters")
        _check_count("step items", step.items)
        step = JobStep(
            action=step.action,
            status=step.status,
            detail=_truncate(step.detail, _MAX_DETAIL) or "",
            items=step.items,
            error=_truncate(step.error, _MAX_ERROR),
        )
        for _ in range(_STEP_ATTEMPTS):
            found = await self._jobs.get_steps(job_id)
            if found is None:
                raise _not_found()
            job, revision = found
            if not job.status.is_active:
                raise _ended(job)
            steps = list(job.steps)
            index = next((i for i, s in enumerate(steps) if s.action == step.action), None)
            if index is None:
                if len(steps) >= _MAX_STEPS:
                    raise InvalidArgument(f"a job records at most {_MAX_STEPS} steps")
                steps.append(step)
            else:
                steps[index] = step
            updated = await self._jobs.replace_steps(
                job_id, revision=revision, steps=steps, now=self._now()
            )
            if updated is not None:
                return updated
        raise Unavailable("Job steps changed concurrently; try again", reason="JOB_CONTENDED")

    async def finish(
        self,
        *,
        job_id: str,
        status: JobStatus,
        error_message: str | None,
        items_processed: int | None,
        counters: Mapping[str, int],
    ) -> Job:
        """End a job as completed or failed and free its group; repeating it is a no-op."""
        _require_job_id(job_id)
        if status not in FINAL_STATUSES:
            raise InvalidArgument("status must be COMPLETED or FAILED")
        if items_processed is not None:
            _check_count("items_processed", items_processed)
        job = await self._jobs.finish(
            job_id,
            status=status,
            error_message=_truncate(error_message, _MAX_ERROR),
            items_processed=items_processed,
            counters=_check_counters(counters),
            now=self._now(),
        )
        if job is None:
            existing = await self._jobs.get(job_id)
            if existing is None:
                raise _not_found()
            if existing.status is not status:
                raise _ended(existing)
            job = existing
        # Also on a repeat: the first call may have died between its two writes.
        await self._release(job)
        return job

    async def list_jobs(
        self,
        *,
        user_id: str,
        page: PageRequest,
        status: JobStatus | None,
        job_type: JobType | None,
    ) -> Page[Job]:
        """One page of the user's jobs, newest first."""
        require_user_id(user_id)
        return await self._jobs.list_for_user(
            user_id, status=status, job_type=job_type, skip=page.skip, limit=page.size
        )

    async def stats(self, *, user_id: str) -> JobStats:
        """Counts by status, items synced and the last completed sync of the user."""
        require_user_id(user_id)
        counts = await self._jobs.count_by_status(user_id)
        return JobStats(
            total_jobs=sum(counts.values()),
            completed=counts.get(JobStatus.COMPLETED, 0),
            failed=counts.get(JobStatus.FAILED, 0),
            running=counts.get(JobStatus.RUNNING, 0),
            total_items_synced=await self._jobs.sum_items_processed(user_id, JobStatus.COMPLETED),
            last_sync_at=await self._jobs.last_completed_at(user_id, JobGroup.SYNC),
        )

    async def reap_stale(self) -> int:
        """Fail pending/running jobs that stopped changing and free their groups.

        Each job is failed by a conditional update (still active, still unchanged), so
        replicas running the reaper side by side fail a job once, and a worker that
        reports progress in the meantime keeps its job.
        """
        now = self._now()
        stale_before = now - timedelta(seconds=self._stale_after_seconds)
        message = stale_job_message(self._stale_after_seconds)
        reaped = 0
        for job in await self._jobs.find_stale(stale_before, limit=_REAP_BATCH):
            failed = await self._jobs.fail_if_stale(
                job.id, stale_before=stale_before, message=message, now=now
            )
            if failed is None:
                continue
            reaped += 1
            await self._release(failed)
            log.warning(
                "stale job failed",
                extra={"job_id": job.id, "job_type": job.job_type.value, "user_id": job.user_id},
            )
        return reaped
