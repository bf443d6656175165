"""Builds the analytics service: clients, repositories, use cases, background consumers, server.

The gRPC server and the two stream consumers (`background.py`) share one process and one
set of clients; the consumers start with the server context and stop (gracefully) before
the clients close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

from analytics_service.background import (
    BUILD_GROUP,
    BUILD_STREAM,
    DEAD_LETTER_SUFFIX,
    EVENTS_GROUP,
    PLAYS_STORED_STREAM,
    BackgroundWork,
    RollupBuildStarter,
)
from analytics_service.catalog_client import CatalogView
from analytics_service.repository import RollupRepository, SnapshotRepository
from analytics_service.rollup_builder import RollupBuilder
from analytics_service.servicer import AnalyticsServicer
from analytics_service.settings import AnalyticsSettings
from analytics_service.snapshots import SnapshotService
from analytics_service.top_items import TopItems
from echostats.analytics.v1 import analytics_service_pb2, analytics_service_pb2_grpc
from echostats.catalog.v1 import catalog_service_pb2_grpc
from echostats.ingestion.v1 import ingestion_service_pb2_grpc
from echostats.observability.v1 import observability_service_pb2_grpc
from echostats_grpc.client import create_channel
from echostats_grpc.job_ledger import JobLedgerClient
from echostats_grpc.server import BuiltServer, build_server
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from echostats_platform.streams import WorkQueue

log = logging.getLogger(__name__)

SERVICE_NAME = analytics_service_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name


def work_queue(
    redis: object, settings: AnalyticsSettings, stream: str, group: str, consumer: str
) -> WorkQueue:
    """A consumer of one of analytics' streams, configured from settings."""
    return WorkQueue(
        redis,  # type: ignore[arg-type]
        stream,
        group=group,
        consumer=consumer,
        claim_idle_ms=settings.queue_claim_idle_ms,
        heartbeat_seconds=settings.queue_heartbeat_seconds,
        max_deliveries=settings.queue_max_deliveries,
        dead_letter_stream=stream + DEAD_LETTER_SUFFIX,
        block_ms=settings.queue_block_ms,
        maxlen=settings.queue_maxlen,
    )


def _report_background_exit(task: asyncio.Task[None]) -> None:
    """Log a consumer loop that ended with an error (it only ends on its own by failing)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("analytics background consumers stopped", exc_info=task.exception())


@contextlib.asynccontextmanager
async def open_server(
    settings: AnalyticsSettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit."""
    mongo = create_mongo_client(settings, app_name="echostats-analytics")
    redis = create_redis(settings)
    timeout = settings.grpc_default_timeout_seconds
    channels = {
        name: create_channel(address, default_timeout=timeout)
        for name, address in (
            ("ingestion", settings.ingestion_addr),
            ("catalog", settings.catalog_addr),
            ("observability", settings.observability_addr),
        )
    }
    stop = asyncio.Event()
    background_task: asyncio.Task[None] | None = None
    try:
        database = mongo[settings.mongodb_database]
        zone = ZoneInfo(settings.analytics_timezone)
        rollups = RollupRepository(database, redis=redis)
        ingestion = ingestion_service_pb2_grpc.IngestionServiceStub(channels["ingestion"])
        catalog = CatalogView(
            catalog_service_pb2_grpc.CatalogServiceStub(channels["catalog"]),
            timeout=settings.catalog_timeout_seconds,
            batch_size=settings.catalog_batch_size,
            remember_seconds=settings.catalog_remember_seconds,
            recent_seconds=settings.catalog_recent_seconds,
        )
        ledger = JobLedgerClient(
            observability_service_pb2_grpc.ObservabilityServiceStub(channels["observability"]),
            timeout=timeout,
        )
        builder = RollupBuilder(rollups=rollups, ingestion=ingestion, redis=redis, zone=zone)
        snapshots = SnapshotService(
            rollups=rollups,
            snapshots=SnapshotRepository(database, head=settings.overview_top_items),
            catalog=catalog,
            redis=redis,
            zone=zone,
            top_items=settings.snapshot_top_items,
            lock_seconds=settings.snapshot_lock_seconds,
        )
        consumer = settings.worker_consumer_name or (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        builds = work_queue(redis, settings, BUILD_STREAM, BUILD_GROUP, consumer)
        servicer = AnalyticsServicer(
            snapshots=snapshots,
            top_items=TopItems(snapshots=snapshots, catalog=catalog),
            rollups=rollups,
            builder=builder,
            build_starter=RollupBuildStarter(ledger=ledger, queue=builds),
            ingestion=ingestion,
            overview_top_items=settings.overview_top_items,
        )
        built = build_server(
            registrars=[
                lambda server: analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server(
                    servicer, server
                )
            ],
            service_names=[SERVICE_NAME],
            host=settings.grpc_host,
            port=settings.grpc_port if port is None else port,
        )
        if settings.analytics_background:
            background = BackgroundWork(
                builder=builder,
                ledger=ledger,
                events=work_queue(redis, settings, PLAYS_STORED_STREAM, EVENTS_GROUP, consumer),
                builds=builds,
                event_concurrency=settings.analytics_event_concurrency,
                grace_seconds=settings.worker_shutdown_grace_seconds,
            )
            background_task = asyncio.create_task(background.run(stop), name="analytics-background")
            background_task.add_done_callback(_report_background_exit)
        built.servicer = servicer  # type: ignore[attr-defined]
        yield built
    finally:
        stop.set()
        if background_task is not None:
            try:
                await asyncio.wait_for(
                    background_task, timeout=settings.worker_shutdown_grace_seconds + 5
                )
            except Exception:
                log.exception("background consumers did not stop cleanly")
        for channel in channels.values():
            await channel.close()
        await redis.aclose()
        await mongo.close()
