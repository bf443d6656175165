"""The ingestion worker process: `python -m ingestion_service.worker`.

It owns the background side of ingestion, three loops in one process:

- the **sync lane** (`ingestion:sync-jobs`, `sync_concurrency` jobs at once) running the
  sync pipeline;
- the **import lane** (`ingestion:import-jobs`, `import_concurrency` jobs at once) running
  the demo history and privacy-export imports (`import_job.py`). Separate lanes with their
  own concurrency, so a long import never holds a slot a live sync needs;
- the **periodic scheduler**, run only by the replica holding the Redis lease.

Queues are Redis Streams consumer groups (at-least-once): a job whose worker died is
redelivered after `queue_claim_idle_ms`; one that used up `queue_max_deliveries` is
dead-lettered and finished FAILED in the ledger ("Worker lost the job N times").

Every Spotify call is recorded through FanoutRecorder(LoggingRecorder(),
BufferedRecorder(ObservabilityCallSink)), flushed on shutdown. Logs are JSON lines;
SIGTERM/SIGINT stop taking jobs and give running ones `worker_shutdown_grace_seconds`.
Readiness: the metrics endpoint (ECHOSTATS_METRICS_PORT) answers once the worker runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from echostats.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from echostats.auth.v1 import auth_service_pb2 as auth_pb
from echostats.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from echostats_grpc.client import create_channel
from echostats_grpc.service_clients import AuthTokenProvider, ObservabilityCallSink
from echostats_platform.context import request_id_var
from echostats_platform.json_logging import configure_logging
from echostats_platform.lease import Lease, run_while_leader
from echostats_platform.metrics import start_metrics_server
from echostats_platform.streams import Delivery, WorkQueue
from echostats_spotify import (
    BufferedRecorder,
    FanoutRecorder,
    LoggingRecorder,
    SpotifyClient,
    build_spotify_clients,
)
from ingestion_service.demo_history import DemoHistoryJob, DemoHistoryOptions
from ingestion_service.import_job import ImportJob, ImportOptions, archive_limits, import_rules
from ingestion_service.job_ledger import JobEnded
from ingestion_service.queues import JobMessage, Lane, Task, default_consumer_name, lane_queue
from ingestion_service.runtime import IngestionRuntime, open_runtime
from ingestion_service.scheduler import LEASE_KEY, PeriodicScheduler
from ingestion_service.settings import IngestionSettings
from ingestion_service.sync_pipeline import SyncPipeline

# Named, not __name__: run with -m, this module is "__main__".
log = logging.getLogger("ingestion_service.worker")

SERVICE_NAME = "ingestion-worker"


def lost_job_message(delivery: Delivery, error: BaseException | None) -> str:
    """The error_message of a job that used up its deliveries."""
    if error is None:
        # Delivered once more than allowed: every earlier delivery's worker died.
        return f"Worker lost the job {max(1, delivery.attempt - 1)} times"
    return f"Job failed {delivery.attempt} times ({type(error).__name__}); giving up"


class IngestionWorker:
    """The two lanes and the scheduler of one worker process."""

    def __init__(
        self,
        runtime: IngestionRuntime,
        spotify: SpotifyClient,
        *,
        consumer: str | None = None,
        analytics: analytics_grpc.AnalyticsServiceStub | None = None,
        catalog: catalog_grpc.CatalogServiceStub | None = None,
    ) -> None:
        settings = runtime.settings
        self.settings = settings
        self.runtime = runtime
        self.consumer = consumer or settings.worker_consumer_name or default_consumer_name()
        self.pipeline = SyncPipeline(
            ledger=runtime.ledger,
            spotify=spotify,
            plays=runtime.plays,
            state=runtime.state,
            events=runtime.events,
            first_sync_max_pages=settings.first_sync_max_pages,
            max_forward_pages=settings.sync_max_forward_pages,
            analytics=analytics,
            catalog=catalog,
        )
        self.demo_history = DemoHistoryJob(
            ledger=runtime.ledger,
            plays=runtime.plays,
            state=runtime.state,
            events=runtime.events,
            listener_key=self._listener_key,
            options=DemoHistoryOptions(
                months=settings.demo_history_months,
                plays_per_day=settings.demo_history_plays_per_day,
                batch_size=settings.demo_history_batch_size,
                timezone=settings.demo_history_timezone,
                catalog_seed=settings.demo_catalog_seed,
                catalog_tracks=settings.demo_catalog_tracks,
            ),
        )
        self.file_import = ImportJob(
            ledger=runtime.ledger,
            plays=runtime.plays,
            uploads=runtime.uploads,
            events=runtime.events,
            options=ImportOptions(
                batch_size=settings.import_batch_size,
                rules=import_rules(settings),
                limits=archive_limits(settings),
                spool_dir=settings.import_spool_dir,
            ),
        )
        self.sync_queue: WorkQueue = lane_queue(
            runtime.redis, settings, Lane.SYNC, consumer=self.consumer
        )
        self.import_queue: WorkQueue = lane_queue(
            runtime.redis, settings, Lane.IMPORT, consumer=self.consumer
        )
        self.scheduler = PeriodicScheduler(
            redis=runtime.redis,
            auth=runtime.auth,
            starter=runtime.starter,
            interval_seconds=settings.sync_interval_seconds,
            page_size=settings.scheduler_users_page_size,
            owner=self.consumer,
        )
        self.lease = Lease(
            runtime.redis,
            LEASE_KEY,
            owner=self.consumer,
            ttl_ms=int(settings.scheduler_lease_ttl_seconds * 1000),
        )

    async def prepare(self) -> None:
        """Create the consumer groups now, so a first start reports a broken Redis early."""
        for queue in (self.sync_queue, self.import_queue):
            try:
                await queue.ensure_group()
            except Exception as exc:
                # The queues recreate their groups once Redis is back; keep starting.
                log.warning("could not create consumer group", extra={"error": repr(exc)})

    async def run(self, stop: asyncio.Event) -> None:
        """Run both lanes and the scheduler until `stop` is set."""
        grace = self.settings.worker_shutdown_grace_seconds
        # A TaskGroup: if one loop fails for a reason other than an outage (a bug), the
        # whole process stops and its supervisor restarts it, rather than limping on.
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                self.sync_queue.run(
                    self.handle_sync,
                    concurrency=self.settings.sync_concurrency,
                    stop=stop,
                    on_dead=self.on_dead,
                    grace_seconds=grace,
                ),
                name="sync-lane",
            )
            tasks.create_task(
                self.import_queue.run(
                    self.handle_import,
                    concurrency=self.settings.import_concurrency,
                    stop=stop,
                    on_dead=self.on_dead,
                    grace_seconds=grace,
                ),
                name="import-lane",
            )
            tasks.create_task(
                run_while_leader(
                    self.lease,
                    self.schedule,
                    interval_seconds=self.settings.scheduler_lease_renew_seconds,
                    stop=stop,
                ),
                name="scheduler",
            )

    async def schedule(self) -> None:
        """One scheduler tick (runs only while this process holds the lease)."""
        await self.scheduler.tick()

    async def handle_sync(self, delivery: Delivery) -> None:
        """Run the sync pipeline for one delivery of the sync lane."""
        message = _parse(delivery)
        if message is None:
            return
        await _with_request_id(
            message, lambda: self.pipeline.run(message, attempt=delivery.attempt)
        )

    async def handle_import(self, delivery: Delivery) -> None:
        """Run one job of the import lane (a file import or the demo history)."""
        message = _parse(delivery)
        if message is None:
            return
        if message.task is Task.IMPORT:
            await _with_request_id(
                message, lambda: self.file_import.run(message, attempt=delivery.attempt)
            )
            return
        if message.task is Task.DEMO_HISTORY:
            await _with_request_id(
                message, lambda: self.demo_history.run(message, attempt=delivery.attempt)
            )
            return
        log.error("unknown import task; failing the job", extra={"task": message.task.value})
        with contextlib.suppress(JobEnded):
            await self.runtime.ledger.finish(
                message.job_id, completed=False, error_message="Unknown import task"
            )

    async def on_dead(self, delivery: Delivery, error: BaseException | None) -> None:
        """A job used up its deliveries: finish it FAILED so the user is not stuck."""
        message = _parse(delivery)
        if message is None:
            return
        with contextlib.suppress(JobEnded):
            await self.runtime.ledger.finish(
                message.job_id, completed=False, error_message=lost_job_message(delivery, error)
            )
        if message.task is Task.IMPORT:
            # The job will not run again: its upload would only take space.
            await self.runtime.uploads.delete_quietly(message.file_id)

    async def _listener_key(self, user_id: str) -> str:
        """The demo listener's seed key: the user's Spotify id (the simulator seeds its feed
        from the same), or the user id when auth does not know the user."""
        try:
            response = await self.runtime.auth.GetUser(
                auth_pb.GetUserRequest(user_id=user_id),
                timeout=self.settings.grpc_default_timeout_seconds,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return user_id
        return response.user.spotify_id or user_id


def _parse(delivery: Delivery) -> JobMessage | None:
    try:
        return JobMessage.from_payload(delivery.payload)
    except ValueError as exc:
        # Retrying cannot fix a malformed message: acknowledge it and say so.
        log.error("dropping malformed job message", extra={"id": delivery.id, "error": str(exc)})
        return None


async def _with_request_id(message: JobMessage, work: Callable[[], Awaitable[object]]) -> None:
    # The request that started the job (or the job id) tags every log line and Spotify call
    # record of the run, so a sync can be followed from the gateway to Spotify.
    token = request_id_var.set(message.request_id or message.job_id)
    try:
        await work()
    finally:
        request_id_var.reset(token)


@contextlib.asynccontextmanager
async def open_worker(
    settings: IngestionSettings, *, consumer: str | None = None
) -> AsyncIterator[IngestionWorker]:
    """Build the worker with its clients; flushes call records and closes clients on exit."""
    async with open_runtime(settings) as runtime:
        buffered = BufferedRecorder(ObservabilityCallSink(runtime.observability))
        buffered.start()
        clients = build_spotify_clients(
            settings,
            caller="ingestion",
            recorder=FanoutRecorder(LoggingRecorder(), buffered),
            token_provider=AuthTokenProvider(runtime.auth),
            background_concurrency=settings.sync_concurrency + settings.import_concurrency,
        )
        # The analytics step of the sync pipeline (RefreshAfterSync can take a while).
        analytics_channel = create_channel(
            settings.analytics_addr,
            default_timeout=max(30.0, settings.grpc_default_timeout_seconds),
        )
        catalog_channel = create_channel(
            settings.catalog_addr, default_timeout=settings.grpc_default_timeout_seconds
        )
        try:
            worker = IngestionWorker(
                runtime,
                clients.api,
                consumer=consumer,
                analytics=analytics_grpc.AnalyticsServiceStub(analytics_channel),
                catalog=catalog_grpc.CatalogServiceStub(catalog_channel),
            )
            await worker.prepare()
            yield worker
        finally:
            await analytics_channel.close()
            await catalog_channel.close()
            await clients.aclose()
            # Before the channels close: the last call records still reach observability.
            await buffered.aclose()


async def serve(settings: IngestionSettings) -> None:
    """Run the worker until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_worker(settings) as worker:
        # Metrics answer from here on: the devstack and Kubernetes use them as readiness.
        start_metrics_server(settings)
        log.info(
            "ingestion worker started",
            extra={
                "consumer": worker.consumer,
                "sync_concurrency": settings.sync_concurrency,
                "import_concurrency": settings.import_concurrency,
            },
        )
        await worker.run(stop)
        log.info("ingestion worker stopping")


def main() -> None:
    """Process entry point: settings, JSON logging, run until signalled."""
    settings = IngestionSettings()
    configure_logging(SERVICE_NAME, settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
