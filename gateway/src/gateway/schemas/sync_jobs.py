"""Response models of /api/v1/sync-jobs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

JobStatusName = Literal["pending", "running", "completed", "failed"]
JobTypeName = Literal["initial", "periodic", "manual", "import", "rollup_build"]
StepStatusName = Literal["running", "completed", "failed", "skipped"]


class JobStepOut(BaseModel):
    action: str
    status: StepStatusName
    detail: str
    items: int
    error: str | None


class JobOut(BaseModel):
    id: str
    job_type: JobTypeName
    status: JobStatusName
    items_processed: int
    items_total: int
    error_message: str | None
    started_at: str | None
    completed_at: str | None
    created_at: str | None
    steps: list[JobStepOut]


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    page: int
    pages: int


class JobStatsOut(BaseModel):
    total_jobs: int
    completed: int
    failed: int
    running: int
    total_items_synced: int
    last_sync_at: str | None


class TriggerResponse(BaseModel):
    status: Literal["started", "already_running"]
    job_id: str
    message: str
