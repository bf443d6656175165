"""ObservabilityService gRPC servicer: protobuf <-> use cases; domain errors map in the kit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import TypeVar

import grpc

from echostats.observability.v1 import observability_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2_grpc as pb_grpc
from echostats_grpc.timestamps import to_timestamp
from echostats_platform.errors import InvalidArgument
from observability_service.api_calls import (
    CALLS_PAGE_SIZE_DEFAULT,
    CALLS_PAGE_SIZE_MAX,
    ApiCallLog,
)
from observability_service.jobs import JOBS_PAGE_SIZE_DEFAULT, JOBS_PAGE_SIZE_MAX, JobLedger
from observability_service.models import (
    ApiCall,
    ApiCallFilter,
    Job,
    JobStatus,
    JobStep,
    JobType,
    StepStatus,
)
from observability_service.release_check import ReleaseChecker
from observability_service.validation import page_request

_E = TypeVar("_E")

JOB_TYPES: dict[int, JobType] = {
    pb.JOB_TYPE_INITIAL: JobType.INITIAL,
    pb.JOB_TYPE_PERIODIC: JobType.PERIODIC,
    pb.JOB_TYPE_MANUAL: JobType.MANUAL,
    pb.JOB_TYPE_IMPORT: JobType.IMPORT,
    pb.JOB_TYPE_ROLLUP_BUILD: JobType.ROLLUP_BUILD,
}
JOB_STATUSES: dict[int, JobStatus] = {
    pb.JOB_STATUS_PENDING: JobStatus.PENDING,
    pb.JOB_STATUS_RUNNING: JobStatus.RUNNING,
    pb.JOB_STATUS_COMPLETED: JobStatus.COMPLETED,
    pb.JOB_STATUS_FAILED: JobStatus.FAILED,
}
STEP_STATUSES: dict[int, StepStatus] = {
    pb.STEP_STATUS_RUNNING: StepStatus.RUNNING,
    pb.STEP_STATUS_COMPLETED: StepStatus.COMPLETED,
    pb.STEP_STATUS_FAILED: StepStatus.FAILED,
    pb.STEP_STATUS_SKIPPED: StepStatus.SKIPPED,
}
_JOB_TYPE_PB = {value: key for key, value in JOB_TYPES.items()}
_JOB_STATUS_PB = {value: key for key, value in JOB_STATUSES.items()}
_STEP_STATUS_PB = {value: key for key, value in STEP_STATUSES.items()}


def _enum(table: Mapping[int, _E], value: int, name: str) -> _E:
    """A required enum field: UNSPECIFIED or a number this server does not know → 400."""
    try:
        return table[value]
    except KeyError:
        raise InvalidArgument(f"{name} is missing or unknown") from None


def _enum_filter(table: Mapping[int, _E], value: int, name: str) -> _E | None:
    """An optional enum filter: UNSPECIFIED means no filter."""
    return None if value == 0 else _enum(table, value, name)


def job_pb(job: Job) -> pb.Job:
    """The protobuf form of a job."""
    message = pb.Job(
        id=job.id,
        user_id=job.user_id,
        job_type=_JOB_TYPE_PB[job.job_type],
        status=_JOB_STATUS_PB[job.status],
        items_processed=job.items_processed,
        items_total=job.items_total,
        created_at=to_timestamp(job.created_at),
        counters=job.counters,
    )
    if job.error_message is not None:
        message.error_message = job.error_message
    if job.started_at is not None:
        message.started_at.CopyFrom(to_timestamp(job.started_at))
    if job.completed_at is not None:
        message.completed_at.CopyFrom(to_timestamp(job.completed_at))
    for step in job.steps:
        step_message = message.steps.add(
            action=step.action,
            status=_STEP_STATUS_PB[step.status],
            detail=step.detail,
            items=step.items,
        )
        if step.error is not None:
            step_message.error = step.error
    return message


def api_call_pb(call: ApiCall) -> pb.ApiCall:
    """The protobuf form of a stored call."""
    message = pb.ApiCall(
        id=call.id,
        service=call.service,
        caller=call.caller,
        method=call.method,
        endpoint=call.endpoint,
        status_code=call.status_code,
        latency_ms=call.latency_ms,
        request_id=call.request_id,
        user_id=call.user_id,
    )
    if call.timestamp is not None:
        message.timestamp.CopyFrom(to_timestamp(call.timestamp))
    if call.error is not None:
        message.error = call.error
    return message


def _api_call_from_pb(message: pb.ApiCall) -> ApiCall:
    return ApiCall(
        id=message.id,
        service=message.service,
        caller=message.caller,
        method=message.method,
        endpoint=message.endpoint,
        status_code=message.status_code,
        latency_ms=message.latency_ms,
        error=message.error if message.HasField("error") else None,
        request_id=message.request_id,
        user_id=message.user_id,
        timestamp=message.timestamp.ToDatetime(tzinfo=UTC)
        if message.HasField("timestamp")
        else None,
    )


class ObservabilityServicer(pb_grpc.ObservabilityServiceServicer):
    """The observability context's RPCs."""

    def __init__(self, *, jobs: JobLedger, api_calls: ApiCallLog, releases: ReleaseChecker) -> None:
        self._jobs = jobs
        self._api_calls = api_calls
        self._releases = releases

    # -- job ledger ---------------------------------------------------------------------

    async def StartJob(
        self, request: pb.StartJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartJobResponse:
        result = await self._jobs.start(
            user_id=request.user_id,
            job_type=_enum(JOB_TYPES, request.job_type, "job_type"),
            items_total=request.items_total,
        )
        return pb.StartJobResponse(started=result.started, job=job_pb(result.job))

    async def GetJob(self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        return job_pb(await self._jobs.get(job_id=request.job_id, user_id=request.user_id))

    async def MarkJobRunning(
        self, request: pb.MarkJobRunningRequest, context: grpc.aio.ServicerContext
    ) -> pb.Job:
        return job_pb(await self._jobs.mark_running(job_id=request.job_id))

    async def UpdateJobProgress(
        self, request: pb.UpdateJobProgressRequest, context: grpc.aio.ServicerContext
    ) -> pb.Job:
        job = await self._jobs.update_progress(
            job_id=request.job_id,
            items_processed=request.items_processed,
            items_total=request.items_total,
            counters=dict(request.counters),
        )
        return job_pb(job)

    async def RecordJobStep(
        self, request: pb.RecordJobStepRequest, context: grpc.aio.ServicerContext
    ) -> pb.Job:
        step = request.step
        job = await self._jobs.record_step(
            job_id=request.job_id,
            step=JobStep(
                action=step.action,
                status=_enum(STEP_STATUSES, step.status, "step.status"),
                detail=step.detail,
                items=step.items,
                error=step.error if step.HasField("error") else None,
            ),
        )
        return job_pb(job)

    async def FinishJob(
        self, request: pb.FinishJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.Job:
        job = await self._jobs.finish(
            job_id=request.job_id,
            status=_enum(JOB_STATUSES, request.status, "status"),
            error_message=request.error_message if request.HasField("error_message") else None,
            items_processed=(
                request.items_processed if request.HasField("items_processed") else None
            ),
            counters=dict(request.counters),
        )
        return job_pb(job)

    async def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListJobsResponse:
        page = await self._jobs.list_jobs(
            user_id=request.user_id,
            page=page_request(
                request.page,
                request.page_size,
                default_size=JOBS_PAGE_SIZE_DEFAULT,
                max_size=JOBS_PAGE_SIZE_MAX,
            ),
            status=_enum_filter(JOB_STATUSES, request.status, "status"),
            job_type=_enum_filter(JOB_TYPES, request.job_type, "job_type"),
        )
        return pb.ListJobsResponse(jobs=[job_pb(job) for job in page.items], total=page.total)

    async def GetJobStats(
        self, request: pb.GetJobStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.JobStats:
        stats = await self._jobs.stats(user_id=request.user_id)
        message = pb.JobStats(
            total_jobs=stats.total_jobs,
            completed=stats.completed,
            failed=stats.failed,
            running=stats.running,
            total_items_synced=stats.total_items_synced,
        )
        if stats.last_sync_at is not None:
            message.last_sync_at.CopyFrom(to_timestamp(stats.last_sync_at))
        return message

    # -- API call log -------------------------------------------------------------------

    async def RecordApiCalls(
        self, request: pb.RecordApiCallsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordApiCallsResponse:
        stored = await self._api_calls.record([_api_call_from_pb(call) for call in request.calls])
        return pb.RecordApiCallsResponse(stored=stored)

    async def ListApiCalls(
        self, request: pb.ListApiCallsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListApiCallsResponse:
        page = await self._api_calls.list_calls(
            user_id=request.user_id,
            page=page_request(
                request.page,
                request.page_size,
                default_size=CALLS_PAGE_SIZE_DEFAULT,
                max_size=CALLS_PAGE_SIZE_MAX,
            ),
            filters=ApiCallFilter(
                service=request.service if request.HasField("service") else None,
                status_min=request.status_min if request.HasField("status_min") else None,
                status_max=request.status_max if request.HasField("status_max") else None,
                method=request.method if request.HasField("method") else None,
                endpoint_contains=(
                    request.endpoint_contains if request.HasField("endpoint_contains") else None
                ),
            ),
        )
        return pb.ListApiCallsResponse(
            calls=[api_call_pb(call) for call in page.items], total=page.total
        )

    async def GetApiCallStats(
        self, request: pb.GetApiCallStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApiCallStats:
        stats = await self._api_calls.stats(user_id=request.user_id)
        return pb.ApiCallStats(
            total_calls=stats.total_calls,
            error_count=stats.error_count,
            rate_limit_count=stats.rate_limit_count,
            success_rate=stats.success_rate,
            avg_latency_ms=stats.avg_latency_ms,
            status_distribution=stats.status_distribution,
            top_endpoints=[
                pb.EndpointCount(endpoint=top.endpoint, count=top.count)
                for top in stats.top_endpoints
            ],
        )

    # -- release check ------------------------------------------------------------------

    async def CheckForUpdate(
        self, request: pb.CheckForUpdateRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckForUpdateResponse:
        info = await self._releases.check()
        response = pb.CheckForUpdateResponse(
            current_version=info.current_version, update_available=info.update_available
        )
        for field in ("latest_version", "release_url", "release_notes", "published_at"):
            value = getattr(info, field)
            if value is not None:
                setattr(response, field, value)
        return response
