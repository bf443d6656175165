"""Fixtures for the analytics tests: real FerretDB, Redis, observability, ingestion and analytics.

Redis and FerretDB are the session's shared servers (devstack pytest plugin). Each test
module gets its own databases and Redis database numbers. Plays are stored through
ingestion's own repository (as its workers store them) and announced on the plays-stored
stream exactly as ingestion announces them; analytics reads them back through ingestion's
real StreamPlays RPC. The catalog is a small real gRPC CatalogService with canned data
(`FakeCatalog`), or, for the "catalog knows nothing" case, an address whose server answers
UNIMPLEMENTED (the observability server).

Tests get helpers through fixtures and type them `Any` (test modules cannot import this file
under --import-mode=importlib).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis

from analytics_service.server import open_server as open_analytics_server
from analytics_service.settings import AnalyticsSettings
from echostats.analytics.v1 import analytics_service_pb2 as pb
from echostats.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from echostats.catalog.v1 import catalog_service_pb2 as catalog_pb
from echostats.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from echostats.observability.v1 import observability_service_pb2_grpc as obs_grpc
from echostats_devstack.pytest_plugin import FerretDBServer, RedisServer
from echostats_grpc.client import create_channel
from echostats_grpc.server import BuiltServer, build_server
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from ingestion_service.models import Play
from ingestion_service.queues import PlaysStoredPublisher
from ingestion_service.repository import PlayRepository
from ingestion_service.server import open_server as open_ingestion_server
from ingestion_service.settings import IngestionSettings
from observability_service.server import open_server as open_observability_server
from observability_service.settings import ObservabilitySettings

LOOPBACK = "127.0.0.1"
NOWHERE = f"{LOOPBACK}:9"
RPC_TIMEOUT = 30.0
FINAL = (obs_pb.JOB_STATUS_COMPLETED, obs_pb.JOB_STATUS_FAILED)

# Redis database numbers for analytics test modules (the ingestion tests count up from 3).
_redis_databases = itertools.count(12)


class FakeCatalog(catalog_grpc.CatalogServiceServicer):
    """A CatalogService answering from canned tracks, artists and albums."""

    def __init__(self) -> None:
        self.tracks: dict[str, catalog_pb.Track] = {}
        self.artists: dict[str, catalog_pb.Artist] = {}
        self.albums: dict[str, catalog_pb.Album] = {}
        self.recommend_requests: list[catalog_pb.RecommendTracksRequest] = []

    async def BatchGetTracks(self, request: Any, context: Any) -> catalog_pb.BatchGetTracksResponse:
        return catalog_pb.BatchGetTracksResponse(
            tracks=[self.tracks[i] for i in request.spotify_ids if i in self.tracks]
        )

    async def BatchGetArtists(
        self, request: Any, context: Any
    ) -> catalog_pb.BatchGetArtistsResponse:
        return catalog_pb.BatchGetArtistsResponse(
            artists=[self.artists[i] for i in request.spotify_ids if i in self.artists]
        )

    async def BatchGetAlbums(self, request: Any, context: Any) -> catalog_pb.BatchGetAlbumsResponse:
        return catalog_pb.BatchGetAlbumsResponse(
            albums=[self.albums[i] for i in request.spotify_ids if i in self.albums]
        )

    async def GetArtistGenres(
        self, request: Any, context: Any
    ) -> catalog_pb.GetArtistGenresResponse:
        return catalog_pb.GetArtistGenresResponse(
            genres_by_artist={
                i: catalog_pb.GenreList(genres=self.artists[i].genres if i in self.artists else [])
                for i in request.spotify_ids
            }
        )

    async def RecommendTracks(
        self, request: Any, context: Any
    ) -> catalog_pb.RecommendTracksResponse:
        self.recommend_requests.append(request)
        excluded = set(request.exclude_track_ids)
        candidates = [t for i, t in sorted(self.tracks.items()) if i not in excluded]
        return catalog_pb.RecommendTracksResponse(
            tracks=candidates[: request.limit], source="catalog"
        )


@dataclass
class Analytics:
    """One analytics server with its neighbours, and helpers to drive it."""

    settings: AnalyticsSettings
    built: BuiltServer
    stub: pb_grpc.AnalyticsServiceStub
    redis: Redis

    @property
    def computations(self) -> int:
        """Snapshots this server computed so far."""
        return self.built.servicer._snapshots.computations  # type: ignore[attr-defined]


@dataclass
class Harness:
    """Observability and ingestion with two analytics servers (with and without catalog)."""

    ingestion_settings: IngestionSettings
    plays: PlayRepository
    observability: obs_grpc.ObservabilityServiceStub
    catalog: FakeCatalog
    with_catalog: Analytics
    without_catalog: Analytics
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    async def store(self, plays: Iterable[Play], analytics: Analytics | None = None) -> None:
        """Store plays in ingestion and announce them on the plays-stored stream."""
        plays = list(plays)
        await self.plays.insert_plays(plays)
        by_user: dict[str, list[datetime]] = {}
        for play in plays:
            by_user.setdefault(play.user_id, []).append(play.played_at)
        for target in [analytics] if analytics else [self.with_catalog, self.without_catalog]:
            publisher = PlaysStoredPublisher(target.redis, maxlen=100_000)
            for user_id, times in by_user.items():
                await publisher.publish(
                    user_id=user_id,
                    count=len(times),
                    first_played_at=min(times),
                    last_played_at=max(times),
                    source="test",
                    job_id="",
                )

    async def wait_rolled_up(
        self, analytics: Analytics, user_id: str, *, timeout: float = 60.0
    ) -> pb.RollupStatus:
        """Poll rollup-status until every stored play of the user is rolled up."""
        deadline = time.monotonic() + timeout
        while True:
            status = await analytics.stub.GetRollupStatus(pb.UserRequest(user_id=user_id))
            if status.complete and status.total_days > 0:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"rollups of {user_id} incomplete: {status}")
            await asyncio.sleep(0.05)

    async def wait_for_job(self, job_id: str, user_id: str, *, timeout: float = 60.0) -> Any:
        """Poll the ledger until the job completed or failed."""
        deadline = time.monotonic() + timeout
        while True:
            job = await self.observability.GetJob(
                obs_pb.GetJobRequest(job_id=job_id, user_id=user_id)
            )
            if job.status in FINAL:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not finish: {job}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _serving(opener: Any, settings: Any) -> AsyncIterator[BuiltServer]:
    async with opener(settings, port=0) as built:
        await built.start()
        try:
            yield built
        finally:
            await built.stop(grace=1.0)


async def _drop(settings: Any) -> None:
    mongo = create_mongo_client(settings, app_name="analytics-tests-cleanup")
    try:
        await mongo.drop_database(settings.mongodb_database)
    finally:
        await mongo.close()


@pytest.fixture(scope="module")
async def harness(
    redis_server: RedisServer, ferretdb_server: FerretDBServer
) -> AsyncIterator[Harness]:
    """Observability, ingestion, a fake catalog and two analytics servers for one module."""
    suffix = uuid.uuid4().hex[:10]
    base_redis = redis_server.url.rsplit("/", 1)[0]
    common: dict[str, Any] = {
        "environment": "test",
        "mongodb_uri": ferretdb_server.uri,
        "grpc_host": LOOPBACK,
    }
    redis_urls = [f"{base_redis}/{next(_redis_databases) % 16}" for _ in range(2)]
    obs_settings = ObservabilitySettings(
        **common,
        redis_url=redis_urls[0],
        mongodb_database=f"analytics_test_obs_{suffix}",
        github_api_url=f"http://{NOWHERE}",
    )
    redises = [create_redis(obs_settings.model_copy(update={"redis_url": u})) for u in redis_urls]
    for redis in redises:
        await redis.flushdb()
    catalog = FakeCatalog()
    catalog_server = build_server(
        registrars=[
            lambda server: catalog_grpc.add_CatalogServiceServicer_to_server(catalog, server)
        ],
        service_names=["echostats.catalog.v1.CatalogService"],
        host=LOOPBACK,
        port=0,
    )
    await catalog_server.start()
    settings_list: list[Any] = [obs_settings]
    async with contextlib.AsyncExitStack() as stack:
        obs = await stack.enter_async_context(_serving(open_observability_server, obs_settings))
        ingestion_settings = IngestionSettings(
            **common,
            redis_url=redis_urls[0],
            mongodb_database=f"analytics_test_ingestion_{suffix}",
            auth_addr=NOWHERE,
            observability_addr=f"{LOOPBACK}:{obs.port}",
        )
        settings_list.append(ingestion_settings)
        ingestion = await stack.enter_async_context(
            _serving(open_ingestion_server, ingestion_settings)
        )
        servers: list[Analytics] = []
        for index, catalog_addr in enumerate(
            (f"{LOOPBACK}:{catalog_server.port}", f"{LOOPBACK}:{obs.port}")
        ):
            settings = AnalyticsSettings(
                **common,
                redis_url=redis_urls[index],
                mongodb_database=f"analytics_test_{index}_{suffix}",
                ingestion_addr=f"{LOOPBACK}:{ingestion.port}",
                catalog_addr=catalog_addr,
                observability_addr=f"{LOOPBACK}:{obs.port}",
                analytics_timezone="America/New_York",
                queue_claim_idle_ms=1500,
                queue_heartbeat_seconds=0.3,
                queue_block_ms=200,
                worker_shutdown_grace_seconds=2.0,
            )
            settings_list.append(settings)
            built = await stack.enter_async_context(_serving(open_analytics_server, settings))
            channel = create_channel(f"{LOOPBACK}:{built.port}", default_timeout=RPC_TIMEOUT)
            stack.push_async_callback(channel.close)
            servers.append(
                Analytics(
                    settings=settings,
                    built=built,
                    stub=pb_grpc.AnalyticsServiceStub(channel),
                    redis=redises[index],
                )
            )
        obs_channel = create_channel(f"{LOOPBACK}:{obs.port}", default_timeout=RPC_TIMEOUT)
        stack.push_async_callback(obs_channel.close)
        mongo = create_mongo_client(ingestion_settings, app_name="analytics-tests")
        stack.push_async_callback(mongo.close)
        yield Harness(
            ingestion_settings=ingestion_settings,
            plays=PlayRepository(mongo[ingestion_settings.mongodb_database]),
            observability=obs_grpc.ObservabilityServiceStub(obs_channel),
            catalog=catalog,
            with_catalog=servers[0],
            without_catalog=servers[1],
        )
    await catalog_server.stop(grace=0.5)
    for redis in redises:
        await redis.aclose()
    for settings in settings_list:
        await _drop(settings)
