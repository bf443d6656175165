"""Builds the catalog service: clients, repositories, use cases, servicer, gRPC server.

Besides the server, the block runs this replica's background work (`background.py`):
index creation, the plays-stored consumer and the enrichment drainer (off with
ECHOSTATS_ENRICH_BACKGROUND=false), stopped before the clients close. Spotify calls are
recorded through FanoutRecorder(LoggingRecorder(), BufferedRecorder(observability)) under
caller "catalog"; closed endpoint families are remembered in Redis
(`catalog:spotify-closed:<family>`) for `capability_closed_ttl_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

from catalog_service.background import EnrichmentDrainer, consume_plays_stored
from catalog_service.catalog import CatalogLookups
from catalog_service.enrichment import Enricher
from catalog_service.enrichment_queue import EnrichmentQueue, UserHolds
from catalog_service.playlists import PlaylistSync
from catalog_service.plays_consumer import PLAYS_STORED_STREAM, PlaysReader, PlaysStoredHandler
from catalog_service.recommendations import Recommender
from catalog_service.repository import CatalogRepository, PlaylistRepository
from catalog_service.servicer import CatalogServicer
from catalog_service.settings import CatalogSettings
from catalog_service.top_items import TopItemsSync
from echostats.auth.v1 import auth_service_pb2_grpc as auth_grpc
from echostats.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from echostats.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from echostats.observability.v1 import observability_service_pb2_grpc as obs_grpc
from echostats_grpc.client import create_channel
from echostats_grpc.server import BuiltServer, build_server
from echostats_grpc.service_clients import AuthTokenProvider, ObservabilityCallSink
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from echostats_platform.streams import WorkQueue
from echostats_spotify import (
    BufferedRecorder,
    CapabilityRegistry,
    FanoutRecorder,
    LoggingRecorder,
    RedisCapabilityStore,
    build_spotify_clients,
)

log = logging.getLogger(__name__)

SERVICE_NAME = catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
CAPABILITY_PREFIX = "catalog:spotify-closed:"


def consumer_name(settings: CatalogSettings) -> str:
    """This replica's name in the plays-stored consumer group."""
    if settings.plays_consumer_name:
        return settings.plays_consumer_name
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@contextlib.asynccontextmanager
async def open_server(
    settings: CatalogSettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit."""
    mongo = create_mongo_client(settings, app_name="echostats-catalog")
    redis = create_redis(settings)
    timeout = settings.grpc_default_timeout_seconds
    auth_channel = create_channel(settings.auth_addr, default_timeout=timeout)
    ingestion_channel = create_channel(settings.ingestion_addr, default_timeout=timeout)
    observability_channel = create_channel(settings.observability_addr, default_timeout=timeout)
    buffered = BufferedRecorder(
        ObservabilityCallSink(obs_grpc.ObservabilityServiceStub(observability_channel))
    )
    buffered.start()
    capabilities = CapabilityRegistry(
        RedisCapabilityStore(redis, key_prefix=CAPABILITY_PREFIX),
        default_ttl=settings.capability_closed_ttl_seconds,
    )
    spotify = build_spotify_clients(
        settings,
        caller="catalog",
        recorder=FanoutRecorder(LoggingRecorder(), buffered),
        token_provider=AuthTokenProvider(auth_grpc.AuthServiceStub(auth_channel)),
        capabilities=capabilities,
    )
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        database = mongo[settings.mongodb_database]
        catalog = CatalogRepository(database)
        playlists = PlaylistRepository(database)
        queue = EnrichmentQueue(
            redis,
            budget_calls=settings.enrich_budget_calls,
            budget_window_seconds=settings.enrich_budget_window_seconds,
        )
        enricher = Enricher(
            spotify=spotify.api,
            capabilities=capabilities,
            catalog=catalog,
            queue=queue,
            lock_seconds=settings.enrich_lock_seconds,
        )
        plays = PlaysReader(
            ingestion=ingestion_grpc.IngestionServiceStub(ingestion_channel),
            enricher=enricher,
            timeout=settings.stream_plays_timeout_seconds,
        )
        servicer = CatalogServicer(
            catalog=catalog,
            playlists=playlists,
            lookups=CatalogLookups(catalog=catalog, enricher=enricher, spotify=spotify.api),
            enricher=enricher,
            plays=plays,
            playlist_sync=PlaylistSync(spotify=spotify.api, playlists=playlists),
            top_items=TopItemsSync(
                spotify=spotify.api,
                enricher=enricher,
                store=playlists,
                min_interval_seconds=settings.top_items_min_interval_seconds,
            ),
            recommender=Recommender(
                spotify=spotify.api, capabilities=capabilities, catalog=catalog, enricher=enricher
            ),
            step_max_calls=settings.enrich_step_max_calls,
        )
        built = build_server(
            registrars=[
                lambda server: catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(
                    servicer, server
                )
            ],
            service_names=[SERVICE_NAME],
            host=settings.grpc_host,
            port=settings.grpc_port if port is None else port,
        )
        tasks.append(asyncio.create_task(_ensure_indexes(playlists, stop)))
        if settings.enrich_background:
            events = WorkQueue(
                redis,
                PLAYS_STORED_STREAM,
                group=settings.plays_consumer_group,
                consumer=consumer_name(settings),
                claim_idle_ms=settings.queue_claim_idle_ms,
                heartbeat_seconds=settings.queue_heartbeat_seconds,
                max_deliveries=settings.queue_max_deliveries,
                block_ms=settings.queue_block_ms,
            )
            drainer = EnrichmentDrainer(
                enricher=enricher,
                holds=UserHolds(redis),
                idle_seconds=settings.enrich_idle_seconds,
                budget_calls=settings.enrich_budget_calls,
            )
            tasks.append(
                asyncio.create_task(consume_plays_stored(events, PlaysStoredHandler(plays), stop))
            )
            tasks.append(asyncio.create_task(drainer.run(stop)))
        yield built
    finally:
        stop.set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await spotify.aclose()
        await buffered.aclose()
        await auth_channel.close()
        await ingestion_channel.close()
        await observability_channel.close()
        await redis.aclose()
        await mongo.close()


async def _ensure_indexes(playlists: PlaylistRepository, stop: asyncio.Event) -> None:
    """Create indexes, retrying while the database is down."""
    while not stop.is_set():
        try:
            await playlists.ensure_indexes()
            return
        except Exception:
            log.warning("could not create indexes; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)
