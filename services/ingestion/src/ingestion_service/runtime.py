"""What the ingestion service and its worker share: clients, repositories and the job starter.

Built once per process from settings (`open_runtime`), passed in, closed on exit. The gRPC
service uses it to start jobs and read history; the worker adds the Spotify client, the
pipeline and the scheduler on top (`worker.py`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from echostats.auth.v1 import auth_service_pb2_grpc as auth_grpc
from echostats.observability.v1 import observability_service_pb2_grpc as obs_grpc
from echostats_grpc.client import create_channel
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from ingestion_service.import_uploads import ImportUploads
from ingestion_service.job_ledger import JobLedgerClient
from ingestion_service.job_starter import JobStarter
from ingestion_service.queues import Lane, PlaysStoredPublisher, lane_queue
from ingestion_service.repository import PlayRepository, SyncStateRepository
from ingestion_service.settings import IngestionSettings

log = logging.getLogger(__name__)


@dataclass
class IngestionRuntime:
    """The process's clients and the objects built on them."""

    settings: IngestionSettings
    mongo: AsyncMongoClient
    redis: Redis
    observability_channel: grpc.aio.Channel
    auth_channel: grpc.aio.Channel
    observability: obs_grpc.ObservabilityServiceStub
    auth: auth_grpc.AuthServiceStub
    plays: PlayRepository
    state: SyncStateRepository
    ledger: JobLedgerClient
    starter: JobStarter
    events: PlaysStoredPublisher
    uploads: ImportUploads


@contextlib.asynccontextmanager
async def open_runtime(settings: IngestionSettings) -> AsyncIterator[IngestionRuntime]:
    """Build the shared clients and objects; close every client on exit."""
    mongo = create_mongo_client(settings, app_name="echostats-ingestion")
    redis = create_redis(settings)
    timeout = settings.grpc_default_timeout_seconds
    observability_channel = create_channel(settings.observability_addr, default_timeout=timeout)
    auth_channel = create_channel(settings.auth_addr, default_timeout=timeout)
    try:
        database = mongo[settings.mongodb_database]
        plays = PlayRepository(database)
        state = SyncStateRepository(database)
        try:
            await plays.ensure_indexes()
        except Exception as exc:
            # Created again on the next start if the database is down now; reads still work.
            log.warning("could not create indexes", extra={"error": repr(exc)})
        observability = obs_grpc.ObservabilityServiceStub(observability_channel)
        ledger = JobLedgerClient(observability, timeout=timeout)
        starter = JobStarter(
            ledger=ledger,
            # Producers only: the consumer name of these two is never used.
            sync_queue=lane_queue(redis, settings, Lane.SYNC, consumer="producer"),
            import_queue=lane_queue(redis, settings, Lane.IMPORT, consumer="producer"),
            state=state,
        )
        yield IngestionRuntime(
            settings=settings,
            mongo=mongo,
            redis=redis,
            observability_channel=observability_channel,
            auth_channel=auth_channel,
            observability=observability,
            auth=auth_grpc.AuthServiceStub(auth_channel),
            plays=plays,
            state=state,
            ledger=ledger,
            starter=starter,
            events=PlaysStoredPublisher(redis, maxlen=settings.plays_events_maxlen),
            uploads=ImportUploads(database, chunk_size_bytes=settings.import_chunk_size_bytes),
        )
    finally:
        await auth_channel.close()
        await observability_channel.close()
        await redis.aclose()
        await mongo.close()
