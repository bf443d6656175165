"""Ingestion's Redis streams: the two work lanes, their messages, and the plays-stored facts.

Two lanes, each a stream with a consumer group of its own, so a long import never takes
a slot a live sync needs:

- `ingestion:sync-jobs` (group `ingestion-sync`): initial, periodic and manual syncs;
- `ingestion:import-jobs` (group `ingestion-import`): the demo history and privacy-export
  imports (told apart by `task`; an import also carries the GridFS `file_id` and `filename`).

A message that used up its deliveries goes to `<stream>:dead`. After storing new plays,
workers publish `{user_id, count, first_played_at, last_played_at, source, job_id}` on
`ingestion:plays-stored` (analytics reads it through a group of its own).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from redis.asyncio import Redis

from echostats_platform.streams import WorkQueue, publish_event
from echostats_platform.timeutil import isoformat_z
from ingestion_service.job_ledger import JobType
from ingestion_service.settings import IngestionSettings

SYNC_STREAM = "ingestion:sync-jobs"
SYNC_GROUP = "ingestion-sync"
IMPORT_STREAM = "ingestion:import-jobs"
IMPORT_GROUP = "ingestion-import"
DEAD_LETTER_SUFFIX = ":dead"
PLAYS_STORED_STREAM = "ingestion:plays-stored"


class Lane(StrEnum):
    """A worker lane: its stream and group."""

    SYNC = "sync"
    IMPORT = "import"

    @property
    def stream(self) -> str:
        """The lane's stream key."""
        return SYNC_STREAM if self is Lane.SYNC else IMPORT_STREAM

    @property
    def group(self) -> str:
        """The lane's consumer group."""
        return SYNC_GROUP if self is Lane.SYNC else IMPORT_GROUP


class Task(StrEnum):
    """What a queued job does."""

    SYNC = "sync"
    DEMO_HISTORY = "demo_history"
    IMPORT = "import"


@dataclass(frozen=True, slots=True)
class JobMessage:
    """A queued job: which ledger job, for whom, and what to do."""

    job_id: str
    user_id: str
    job_type: JobType
    task: Task
    # The request that started it (the gateway's), so the worker's logs and Spotify call
    # records can be traced back to it.
    request_id: str = ""
    # Imports only: the uploaded file in GridFS (`import_uploads`) and the client's name.
    file_id: str = ""
    filename: str = ""

    def to_payload(self) -> dict[str, str]:
        """The stream fields."""
        payload = {
            "job_id": self.job_id,
            "user_id": self.user_id,
            "job_type": self.job_type.value,
            "task": self.task.value,
            "request_id": self.request_id,
        }
        if self.task is Task.IMPORT:
            payload["file_id"] = self.file_id
            payload["filename"] = self.filename
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, str]) -> JobMessage:
        """Parse stream fields; ValueError when required ones are missing or unknown."""
        job_id, user_id = payload.get("job_id", ""), payload.get("user_id", "")
        if not job_id or not user_id:
            raise ValueError(f"job message without job_id or user_id: {dict(payload)!r}")
        job_type = JobType(payload.get("job_type", ""))
        default_task = Task.DEMO_HISTORY if job_type is JobType.IMPORT else Task.SYNC
        task = Task(payload.get("task") or default_task)
        file_id = payload.get("file_id", "")
        if task is Task.IMPORT and not file_id:
            raise ValueError(f"import job message without file_id: {dict(payload)!r}")
        return cls(
            job_id=job_id,
            user_id=user_id,
            job_type=job_type,
            task=task,
            request_id=payload.get("request_id", ""),
            file_id=file_id,
            filename=payload.get("filename", ""),
        )


def default_consumer_name() -> str:
    """A consumer name unique to this process (host, pid, random suffix)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def lane_queue(
    redis: Redis, settings: IngestionSettings, lane: Lane, *, consumer: str | None = None
) -> WorkQueue:
    """The WorkQueue of a lane, configured from settings (also used just to enqueue)."""
    return WorkQueue(
        redis,
        lane.stream,
        group=lane.group,
        consumer=consumer or settings.worker_consumer_name or default_consumer_name(),
        claim_idle_ms=settings.queue_claim_idle_ms,
        heartbeat_seconds=settings.queue_heartbeat_seconds,
        max_deliveries=settings.queue_max_deliveries,
        dead_letter_stream=lane.stream + DEAD_LETTER_SUFFIX,
        block_ms=settings.queue_block_ms,
        maxlen=settings.queue_maxlen,
    )


class PlaysStoredPublisher:
    """Publishes the plays-stored fact after new plays are stored."""

    def __init__(self, redis: Redis, *, maxlen: int) -> None:
        self._redis = redis
        self._maxlen = maxlen

    async def publish(
        self,
        *,
        user_id: str,
        count: int,
        first_played_at: datetime,
        last_played_at: datetime,
        source: str,
        job_id: str,
    ) -> str:
        """Append one event: `count` plays of the user in [first, last] were stored."""
        return await publish_event(
            self._redis,
            PLAYS_STORED_STREAM,
            {
                "user_id": user_id,
                "count": str(count),
                "first_played_at": isoformat_z(first_played_at) or "",
                "last_played_at": isoformat_z(last_played_at) or "",
                "source": source,
                "job_id": job_id,
            },
            maxlen=self._maxlen,
        )
