"""Client of observability's job ledger for the services that run jobs (ingestion, analytics).

Observability owns the ledger (every sync, import and rollup build with its steps and
progress); this module only translates, as thin typed calls over its gRPC API. A job that
has already ended (finished, or failed by observability's reaper) answers
FAILED_PRECONDITION / JOB_ALREADY_ENDED, which surfaces here as `JobEnded` so a worker
holding a redelivered message simply lets it go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import grpc

from echostats.observability.v1 import observability_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2_grpc as pb_grpc
from echostats_grpc.client import error_reason

JOB_ALREADY_ENDED = "JOB_ALREADY_ENDED"


class JobType(StrEnum):
    """Job types as they travel in queue messages (the ledger's enum by name)."""

    INITIAL = "initial"
    PERIODIC = "periodic"
    MANUAL = "manual"
    IMPORT = "import"
    ROLLUP_BUILD = "rollup_build"

    @property
    def proto(self) -> pb.JobType.ValueType:
        """The ledger's enum value."""
        return _TYPE_TO_PB[self]

    @classmethod
    def from_proto(cls, value: int) -> JobType:
        """The job type of a ledger enum value (ValueError for unspecified/unknown)."""
        for job_type, number in _TYPE_TO_PB.items():
            if number == value:
                return job_type
        raise ValueError(f"unknown job type {value}")


SYNC_JOB_TYPES = frozenset({JobType.INITIAL, JobType.PERIODIC, JobType.MANUAL})

_TYPE_TO_PB: dict[JobType, pb.JobType.ValueType] = {
    JobType.INITIAL: pb.JOB_TYPE_INITIAL,
    JobType.PERIODIC: pb.JOB_TYPE_PERIODIC,
    JobType.MANUAL: pb.JOB_TYPE_MANUAL,
    JobType.IMPORT: pb.JOB_TYPE_IMPORT,
    JobType.ROLLUP_BUILD: pb.JOB_TYPE_ROLLUP_BUILD,
}


class StepStatus(StrEnum):
    """How a pipeline step ended (or that it is running)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


_STEP_TO_PB: dict[StepStatus, pb.StepStatus.ValueType] = {
    StepStatus.RUNNING: pb.STEP_STATUS_RUNNING,
    StepStatus.COMPLETED: pb.STEP_STATUS_COMPLETED,
    StepStatus.FAILED: pb.STEP_STATUS_FAILED,
    StepStatus.SKIPPED: pb.STEP_STATUS_SKIPPED,
}


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a job as the ledger shows it."""

    action: str
    status: StepStatus
    detail: str = ""
    items: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StartedJob:
    """The answer to a start: a new job, or the one of the same group already under way."""

    started: bool
    job_id: str


class JobEnded(Exception):
    """The job has already ended (completed, failed, or reaped); nothing more to do for it."""

    def __init__(self, job_id: str, detail: str) -> None:
        super().__init__(f"job {job_id} has already ended: {detail}")
        self.job_id = job_id


def _is_ended(error: grpc.aio.AioRpcError) -> bool:
    return (
        error.code() == grpc.StatusCode.FAILED_PRECONDITION
        and error_reason(error) == JOB_ALREADY_ENDED
    )


class JobLedgerClient:
    """Start, run, record and finish jobs in observability's ledger."""

    def __init__(self, stub: pb_grpc.ObservabilityServiceStub, *, timeout: float = 10.0) -> None:
        self._stub = stub
        self._timeout = timeout

    async def start(self, *, user_id: str, job_type: JobType, items_total: int = 0) -> StartedJob:
        """Create a pending job unless one of its group is pending or running (atomic)."""
        response = await self._stub.StartJob(
            pb.StartJobRequest(user_id=user_id, job_type=job_type.proto, items_total=items_total),
            timeout=self._timeout,
        )
        return StartedJob(started=response.started, job_id=response.job.id)

    async def active(self, *, user_id: str, job_type: JobType) -> pb.Job | None:
        """The user's newest job of this type if it is still pending or running."""
        response = await self._stub.ListJobs(
            pb.ListJobsRequest(user_id=user_id, job_type=job_type.proto, page=1, page_size=1),
            timeout=self._timeout,
        )
        for job in response.jobs:
            if job.status in (pb.JOB_STATUS_PENDING, pb.JOB_STATUS_RUNNING):
                return job
        return None

    async def get(self, *, job_id: str, user_id: str) -> pb.Job:
        """One job of the user."""
        return await self._stub.GetJob(
            pb.GetJobRequest(job_id=job_id, user_id=user_id), timeout=self._timeout
        )

    async def mark_running(self, job_id: str) -> pb.Job:
        """Pending → running (again after a redelivery is fine); `JobEnded` if it ended."""
        try:
            return await self._stub.MarkJobRunning(
                pb.MarkJobRunningRequest(job_id=job_id), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if _is_ended(exc):
                raise JobEnded(job_id, exc.details() or "") from exc
            raise

    async def record_step(self, job_id: str, step: StepRecord) -> None:
        """Record a step (a step with the same action replaces the earlier record)."""
        message = pb.JobStep(
            action=step.action,
            status=_STEP_TO_PB[step.status],
            detail=step.detail,
            items=step.items,
        )
        if step.error is not None:
            message.error = step.error
        try:
            await self._stub.RecordJobStep(
                pb.RecordJobStepRequest(job_id=job_id, step=message), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if _is_ended(exc):
                raise JobEnded(job_id, exc.details() or "") from exc
            raise

    async def update_progress(
        self,
        job_id: str,
        *,
        items_processed: int,
        items_total: int = 0,
        counters: Mapping[str, int] | None = None,
    ) -> None:
        """Set progress counters (items_total 0 leaves it unchanged)."""
        try:
            await self._stub.UpdateJobProgress(
                pb.UpdateJobProgressRequest(
                    job_id=job_id,
                    items_processed=items_processed,
                    items_total=items_total,
                    counters=dict(counters or {}),
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if _is_ended(exc):
                raise JobEnded(job_id, exc.details() or "") from exc
            raise

    async def finish(
        self,
        job_id: str,
        *,
        completed: bool,
        error_message: str | None = None,
        items_processed: int | None = None,
        counters: Mapping[str, int] | None = None,
    ) -> None:
        """End the job as completed or failed (repeating the same ending is a no-op)."""
        request = pb.FinishJobRequest(
            job_id=job_id,
            status=pb.JOB_STATUS_COMPLETED if completed else pb.JOB_STATUS_FAILED,
            counters=dict(counters or {}),
        )
        if error_message is not None:
            request.error_message = error_message
        if items_processed is not None:
            request.items_processed = items_processed
        try:
            await self._stub.FinishJob(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if _is_ended(exc):
                raise JobEnded(job_id, exc.details() or "") from exc
            raise
