"""The record of every outbound Spotify call, and the recorders that ship it without slowing calls.

One `ApiCallRecord` is made per HTTP exchange (Accounts and Web API, every retry, every
network error with status 0). Recorders are synchronous and must never block or raise:
`LoggingRecorder` writes one structured log line; `BufferedRecorder` queues records in
memory and a background task hands batches to an async sink (the observability service),
dropping and counting records when the queue is full rather than making a call wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiCallRecord:
    """One outbound call: what was called, how it ended and how long it took."""

    service: str = "spotify"
    # The EchoStats service that made the call (auth, ingestion, catalog, ...).
    caller: str
    method: str
    # Path only (e.g. /v1/me/player): no host, no query string, so ids in queries and
    # tokens never reach the log and the API-log endpoints can group by endpoint.
    endpoint: str
    # 0 when no HTTP answer arrived (connection error, timeout, cancellation).
    status_code: int
    latency_ms: float
    error: str | None
    request_id: str | None
    user_id: str | None
    timestamp: datetime
    # 1 for the first exchange of a logical call, then 2, 3, ... for retries and the
    # retry after a forced token refresh.
    attempt: int = 1


@runtime_checkable
class CallRecorder(Protocol):
    """Receives every ApiCallRecord; `record` must return at once and never raise."""

    def record(self, rec: ApiCallRecord) -> None:
        """Accept one record."""
        ...


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def safe_record(recorder: CallRecorder, rec: ApiCallRecord) -> None:
    """Hand a record to a recorder, swallowing (and logging) anything it raises."""
    try:
        recorder.record(rec)
    except Exception:
        # A broken recorder must never turn a successful Spotify call into a failure.
        log.warning("call recorder failed", exc_info=True)


class LoggingRecorder:
    """Writes each record as one structured log line (JSON through the platform's logging)."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self._logger = logger or logging.getLogger("echostats_spotify.calls")
        self._level = level

    def record(self, rec: ApiCallRecord) -> None:
        """Log the record under the `api_call` key (never raises)."""
        try:
            fields = asdict(rec)
            fields["timestamp"] = rec.timestamp.isoformat()
            # Nested under one key: the platform's log filter stamps its own `service`
            # and `request_id` on every line, which would overwrite flat fields.
            self._logger.log(
                self._level,
                "spotify call %s %s -> %s",
                rec.method,
                rec.endpoint,
                rec.status_code,
                extra={"api_call": fields},
            )
        except Exception:  # noqa: S110 - a log line is not worth failing a call over
            pass


class FanoutRecorder:
    """Passes each record to several recorders (e.g. log lines and the observability sink)."""

    def __init__(self, *recorders: CallRecorder) -> None:
        self._recorders = recorders

    def record(self, rec: ApiCallRecord) -> None:
        """Give the record to every recorder; one failing does not stop the others."""
        for recorder in self._recorders:
            safe_record(recorder, rec)


RecordSink = Callable[[list[ApiCallRecord]], Awaitable[None]]


class BufferedRecorder:
    """Queues records in memory and delivers them in batches to an async sink.

    `record` only appends to a bounded deque, so a slow or failing sink never slows a
    Spotify call: when the queue holds `max_queue` records new ones are dropped and
    counted in `dropped`. A background task (started by `start`) flushes when a batch is
    full or every `flush_interval` seconds; `aclose` flushes what is left on shutdown.
    A batch the sink fails on (or takes longer than `sink_timeout` for) is counted in
    `lost` and not retried, so one bad batch cannot wedge the queue.
    """

    def __init__(
        self,
        sink: RecordSink,
        *,
        max_batch: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        sink_timeout: float = 10.0,
    ) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self._sink = sink
        self._max_batch = max_batch
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._sink_timeout = sink_timeout
        self._queue: deque[ApiCallRecord] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped = 0
        self.lost = 0
        self.delivered = 0

    @property
    def pending(self) -> int:
        """Records waiting to be delivered."""
        return len(self._queue)

    def record(self, rec: ApiCallRecord) -> None:
        """Queue one record, or drop and count it when the queue is full or closed."""
        if self._closed or len(self._queue) >= self._max_queue:
            self.dropped += 1
            # Log the first drop and then every 1000th, not one line per record.
            if self.dropped % 1000 == 1:
                log.warning("api call records dropped", extra={"dropped": self.dropped})
            return
        self._queue.append(rec)
        if len(self._queue) >= self._max_batch:
            self._wakeup.set()

    def start(self) -> None:
        """Start the background flusher on the running event loop (idempotent)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="spotify-call-recorder"
            )

    async def flush(self) -> None:
        """Deliver everything queued now, batch by batch."""
        while self._queue:
            size = min(self._max_batch, len(self._queue))
            batch = [self._queue.popleft() for _ in range(size)]
            await self._deliver(batch)

    async def aclose(self, grace_seconds: float = 5.0) -> None:
        """Stop accepting records, flush what is queued (within the grace), stop the task."""
        self._closed = True
        self._wakeup.set()
        task, self._task = self._task, None
        try:
            async with asyncio.timeout(grace_seconds):
                if task is not None:
                    await task
                await self.flush()
        except TimeoutError:
            log.warning("api call records left unflushed", extra={"pending": self.pending})
        finally:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval):
                    await self._wakeup.wait()
            self._wakeup.clear()
            await self.flush()

    async def _deliver(self, batch: Sequence[ApiCallRecord]) -> None:
        try:
            async with asyncio.timeout(self._sink_timeout):
                await self._sink(list(batch))
        except Exception:
            self.lost += len(batch)
            log.warning(
                "api call sink failed; batch dropped",
                exc_info=True,
                extra={"records": len(batch), "lost": self.lost},
            )
        else:
            self.delivered += len(batch)
