"""Ingestion's name for the shared job-ledger client (it lives in echostats_grpc.job_ledger)."""

from echostats_grpc.job_ledger import (
    JOB_ALREADY_ENDED,
    SYNC_JOB_TYPES,
    JobEnded,
    JobLedgerClient,
    JobType,
    StartedJob,
    StepRecord,
    StepStatus,
)

__all__ = [
    "JOB_ALREADY_ENDED",
    "SYNC_JOB_TYPES",
    "JobEnded",
    "JobLedgerClient",
    "JobType",
    "StartedJob",
    "StepRecord",
    "StepStatus",
]
