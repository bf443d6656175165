"""Starting ingestion jobs: one ledger job per (user, group) and one queued message for it.

`start_sync` is the single start-and-enqueue path for every sync: TriggerSync (manual, and
initial after login) and the periodic scheduler both call it. The ledger decides
`already_running` atomically; only the caller that started the job enqueues it, so two
concurrent triggers give one job and one message. If the message cannot be queued the job
is failed at once (it would otherwise sit pending, blocking the user's next sync, until
observability's reaper found it).

`start_import` starts a privacy-export import (the upload is already stored and counted):
the ledger's one-job-per-(user, IMPORT) rule makes it one import per user at a time.

`seed_demo_history` is idempotent: once the demo history is stored (the marker in
`sync_state`) it answers started=False with the job that stored it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

import grpc

from echostats_platform.context import current_request_id
from echostats_platform.errors import (
    DomainError,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from ingestion_service.job_ledger import SYNC_JOB_TYPES, JobLedgerClient, JobType, StartedJob
from ingestion_service.queues import JobMessage, Task
from ingestion_service.repository import SyncStateRepository

log = logging.getLogger(__name__)

REASON_QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"


class Enqueuer(Protocol):
    """Where a job message goes (a lane's WorkQueue)."""

    async def enqueue(self, payload: Mapping[str, str]) -> str:
        """Append the message; returns its id."""
        ...


def dependency_error(service: str, exc: grpc.aio.AioRpcError) -> DomainError:
    """Translate a failed call to another service into our own domain error."""
    code = exc.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(exc.details() or f"{service} refused the request")
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(exc.details() or "Not found")
    return Unavailable(f"{service} service unavailable ({code.name})")


class JobStarter:
    """Starts sync and demo-history jobs in the ledger and queues them on their lanes."""

    def __init__(
        self,
        *,
        ledger: JobLedgerClient,
        sync_queue: Enqueuer,
        import_queue: Enqueuer,
        state: SyncStateRepository,
    ) -> None:
        self._ledger = ledger
        self._sync_queue = sync_queue
        self._import_queue = import_queue
        self._state = state

    async def start_sync(self, *, user_id: str, job_type: JobType) -> StartedJob:
        """Start one sync of the user unless one is pending or running (then its id)."""
        if not user_id:
            raise InvalidArgument("user_id is required")
        if job_type not in SYNC_JOB_TYPES:
            raise InvalidArgument("job_type must be INITIAL, PERIODIC or MANUAL")
        started = await self._start(user_id, job_type)
        if started.started:
            message = JobMessage(
                job_id=started.job_id,
                user_id=user_id,
                job_type=job_type,
                task=Task.SYNC,
                request_id=current_request_id() or "",
            )
            await self._enqueue(self._sync_queue, message)
        return started

    async def seed_demo_history(self, *, user_id: str) -> StartedJob:
        """Queue the demo user's synthetic history once; afterwards started=False."""
        if not user_id:
            raise InvalidArgument("user_id is required")
        marker = await self._state.demo_history_marker(user_id)
        if marker is not None:
            return StartedJob(started=False, job_id=marker.job_id)
        started = await self._start(user_id, JobType.IMPORT)
        if started.started:
            message = JobMessage(
                job_id=started.job_id,
                user_id=user_id,
                job_type=JobType.IMPORT,
                task=Task.DEMO_HISTORY,
                request_id=current_request_id() or "",
            )
            await self._enqueue(self._import_queue, message)
        return started

    async def start_import(
        self, *, user_id: str, file_id: str, filename: str, items_total: int
    ) -> StartedJob:
        """Start the import of a stored upload unless the user has one pending or running."""
        if not user_id:
            raise InvalidArgument("user_id is required")
        started = await self._start(user_id, JobType.IMPORT, items_total=items_total)
        if started.started:
            message = JobMessage(
                job_id=started.job_id,
                user_id=user_id,
                job_type=JobType.IMPORT,
                task=Task.IMPORT,
                request_id=current_request_id() or "",
                file_id=file_id,
                filename=filename,
            )
            await self._enqueue(self._import_queue, message)
        return started

    async def _start(self, user_id: str, job_type: JobType, *, items_total: int = 0) -> StartedJob:
        try:
            return await self._ledger.start(
                user_id=user_id, job_type=job_type, items_total=items_total
            )
        except grpc.aio.AioRpcError as exc:
            raise dependency_error("Observability", exc) from exc

    async def _enqueue(self, queue: Enqueuer, message: JobMessage) -> None:
        try:
            await queue.enqueue(message.to_payload())
        except Exception as exc:
            log.error(
                "could not queue job; failing it",
                extra={"job_id": message.job_id, "user_id": message.user_id, "error": repr(exc)},
            )
            try:
                await self._ledger.finish(
                    message.job_id,
                    completed=False,
                    error_message="Could not queue the job (work queue unavailable)",
                )
            except Exception:
                # The ledger's reaper fails it later; the user sees already_running till then.
                log.warning("could not fail the unqueued job", extra={"job_id": message.job_id})
            raise Unavailable(
                "Work queue unavailable; try again", reason=REASON_QUEUE_UNAVAILABLE
            ) from exc
