"""/api/v1/sync-jobs: trigger a sync (ingestion) and read the job ledger (observability)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from echostats.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from gateway.dependencies import Clients, CurrentUser
from gateway.paging import Page, page_count
from gateway.schemas.sync_jobs import (
    JobOut,
    JobPage,
    JobStatsOut,
    JobStatusName,
    JobStepOut,
    JobTypeName,
    TriggerResponse,
)
from gateway.timestamps import iso_or_none

router = APIRouter(prefix="/api/v1/sync-jobs", tags=["sync-jobs"])

JOB_TYPES: dict[str, int] = {
    "initial": obs_pb.JOB_TYPE_INITIAL,
    "periodic": obs_pb.JOB_TYPE_PERIODIC,
    "manual": obs_pb.JOB_TYPE_MANUAL,
    "import": obs_pb.JOB_TYPE_IMPORT,
    "rollup_build": obs_pb.JOB_TYPE_ROLLUP_BUILD,
}
JOB_STATUSES: dict[str, int] = {
    "pending": obs_pb.JOB_STATUS_PENDING,
    "running": obs_pb.JOB_STATUS_RUNNING,
    "completed": obs_pb.JOB_STATUS_COMPLETED,
    "failed": obs_pb.JOB_STATUS_FAILED,
}
STEP_STATUSES: dict[int, str] = {
    obs_pb.STEP_STATUS_RUNNING: "running",
    obs_pb.STEP_STATUS_COMPLETED: "completed",
    obs_pb.STEP_STATUS_FAILED: "failed",
    obs_pb.STEP_STATUS_SKIPPED: "skipped",
}
_TYPE_NAMES = {value: name for name, value in JOB_TYPES.items()}
_STATUS_NAMES = {value: name for name, value in JOB_STATUSES.items()}


def job_out(job: obs_pb.Job) -> JobOut:
    """A ledger job in the API's shape."""
    return JobOut(
        id=job.id,
        job_type=_TYPE_NAMES.get(job.job_type, "manual"),  # type: ignore[arg-type]
        status=_STATUS_NAMES.get(job.status, "pending"),  # type: ignore[arg-type]
        items_processed=job.items_processed,
        items_total=job.items_total,
        error_message=job.error_message if job.HasField("error_message") else None,
        started_at=iso_or_none(job, "started_at"),
        completed_at=iso_or_none(job, "completed_at"),
        created_at=iso_or_none(job, "created_at"),
        steps=[
            JobStepOut(
                action=step.action,
                status=STEP_STATUSES.get(step.status, "running"),  # type: ignore[arg-type]
                detail=step.detail,
                items=step.items,
                error=step.error if step.HasField("error") else None,
            )
            for step in job.steps
        ],
    )


@router.post("/trigger", response_model=TriggerResponse)
async def trigger_sync(user: CurrentUser, clients: Clients) -> TriggerResponse:
    """Start a manual sync: recently played → audio features → playlists → top items → analytics."""
    response = await clients.ingestion.TriggerSync(
        ingestion_pb.TriggerSyncRequest(user_id=user.id, job_type=obs_pb.JOB_TYPE_MANUAL)
    )
    if response.started:
        return TriggerResponse(status="started", job_id=response.job_id, message="Sync job started")
    return TriggerResponse(
        status="already_running",
        job_id=response.job_id,
        message="A sync is already in progress",
    )


@router.get("", response_model=JobPage)
async def list_jobs(
    user: CurrentUser,
    clients: Clients,
    page: Page = 1,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1-100)")] = 20,
    status: Annotated[JobStatusName | None, Query(description="Filter by status")] = None,
    job_type: Annotated[JobTypeName | None, Query(description="Filter by job type")] = None,
) -> JobPage:
    """The user's sync, import and rollup jobs, newest first."""
    request = obs_pb.ListJobsRequest(user_id=user.id, page=page, page_size=limit)
    if status is not None:
        request.status = JOB_STATUSES[status]  # type: ignore[assignment]
    if job_type is not None:
        request.job_type = JOB_TYPES[job_type]  # type: ignore[assignment]
    response = await clients.observability.ListJobs(request)
    return JobPage(
        items=[job_out(job) for job in response.jobs],
        total=response.total,
        page=page,
        pages=page_count(response.total, limit),
    )


@router.get("/stats", response_model=JobStatsOut)
async def job_stats(user: CurrentUser, clients: Clients) -> JobStatsOut:
    """Aggregates over the user's jobs."""
    stats = await clients.observability.GetJobStats(obs_pb.GetJobStatsRequest(user_id=user.id))
    return JobStatsOut(
        total_jobs=stats.total_jobs,
        completed=stats.completed,
        failed=stats.failed,
        running=stats.running,
        total_items_synced=stats.total_items_synced,
        last_sync_at=iso_or_none(stats, "last_sync_at"),
    )
