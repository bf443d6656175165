"""Domain records of the observability context: jobs with their steps, and outbound API calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class JobType(StrEnum):
    """What a job does; the stored and REST spelling is the lowercase value."""

    INITIAL = "initial"
    PERIODIC = "periodic"
    MANUAL = "manual"
    IMPORT = "import"
    ROLLUP_BUILD = "rollup_build"

    @property
    def group(self) -> JobGroup:
        """The group whose jobs exclude each other (one pending or running per user)."""
        return _GROUP_OF_TYPE[self]


class JobGroup(StrEnum):
    """Jobs of one group never run side by side for one user."""

    SYNC = "sync"
    IMPORT = "import"
    ROLLUP_BUILD = "rollup_build"


_GROUP_OF_TYPE = {
    JobType.INITIAL: JobGroup.SYNC,
    JobType.PERIODIC: JobGroup.SYNC,
    JobType.MANUAL: JobGroup.SYNC,
    JobType.IMPORT: JobGroup.IMPORT,
    JobType.ROLLUP_BUILD: JobGroup.ROLLUP_BUILD,
}


class JobStatus(StrEnum):
    """Where a job is in its life: pending → running → completed | failed."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_active(self) -> bool:
        """Pending or running: the job still holds its group's lock."""
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset({JobStatus.PENDING, JobStatus.RUNNING})
FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})


class StepStatus(StrEnum):
    """How one pipeline step ended (or that it is still running)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class JobStep:
    """One pipeline step of a job; a job holds at most one step per action."""

    action: str
    status: StepStatus
    detail: str = ""
    items: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Job:
    """One sync, import or rollup build of one user, with its steps and counters."""

    id: str
    user_id: str
    job_type: JobType
    status: JobStatus
    items_processed: int
    items_total: int
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    steps: tuple[JobStep, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StartedJob:
    """The answer to "start a job": the new job, or the one of the same group in the way."""

    started: bool
    job: Job


@dataclass(frozen=True)
class JobStats:
    """Aggregates over one user's jobs, as /api/v1/sync-jobs/stats shows them."""

    total_jobs: int
    completed: int
    failed: int
    running: int
    total_items_synced: int
    last_sync_at: datetime | None


@dataclass(frozen=True)
class ApiCall:
    """One outbound HTTP exchange made by an EchoStats service."""

    id: str
    service: str
    caller: str
    method: str
    endpoint: str
    status_code: int
    latency_ms: float
    error: str | None
    request_id: str
    user_id: str
    # None only on a record handed in without a time: it is stored as "now".
    timestamp: datetime | None


@dataclass(frozen=True)
class ApiCallFilter:
    """The optional filters of the API-log listing."""

    service: str | None = None
    status_min: int | None = None
    status_max: int | None = None
    method: str | None = None
    endpoint_contains: str | None = None


@dataclass(frozen=True)
class EndpointCount:
    """How often one "<METHOD> <path>" was called."""

    endpoint: str
    count: int


@dataclass(frozen=True)
class ApiCallStats:
    """Aggregates over one user's outbound calls, as /api/v1/api-logs/stats shows them."""

    total_calls: int
    error_count: int
    rate_limit_count: int
    success_rate: float
    avg_latency_ms: float
    status_distribution: dict[str, int]
    top_endpoints: tuple[EndpointCount, ...]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and the total number of matches."""

    items: tuple[T, ...]
    total: int
