"""Fixtures for the catalog tests: real FerretDB, Redis, simulator, auth, observability, ingestion.

Redis and FerretDB are the session's shared servers (devstack pytest plugin). Each test
module gets its own databases (dropped at the end) and its own Redis database number
(flushed first). The Spotify simulator runs in-process; auth, observability, ingestion
(with its worker, so syncs store plays and publish plays-stored) and catalog are their real
gRPC servers on port 0. Catalog's background side runs unless a module says otherwise.

Tests get the helpers through fixtures (`harness`, `simulator`) and type them `Any`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from auth_service.server import open_server as open_auth_server
from auth_service.settings import AuthSettings
from catalog_service.server import open_server as open_catalog_server
from catalog_service.settings import CatalogSettings
from echostats.auth.v1 import auth_service_pb2 as auth_pb
from echostats.auth.v1 import auth_service_pb2_grpc as auth_grpc
from echostats.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from echostats.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from echostats.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from echostats.observability.v1 import observability_service_pb2_grpc as obs_grpc
from echostats_devstack.pytest_plugin import FerretDBServer, RedisServer
from echostats_devstack.simulator_control import SimulatorControl as Simulator
from echostats_grpc.client import create_channel
from echostats_grpc.server import BuiltServer
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from ingestion_service.server import open_server as open_ingestion_server
from ingestion_service.settings import IngestionSettings
from ingestion_service.worker import open_worker
from observability_service.server import open_server as open_observability_server
from observability_service.settings import ObservabilitySettings
from spotify_simulator.in_process import serve_in_process

LOOPBACK = "127.0.0.1"
NOWHERE = f"{LOOPBACK}:9"
SIM_CLIENT_ID = "echostats-dev-client"
SIM_CLIENT_SECRET = "echostats-dev-secret"
RPC_TIMEOUT = 60.0
FINAL = (obs_pb.JOB_STATUS_COMPLETED, obs_pb.JOB_STATUS_FAILED)

# Redis database numbers handed to test modules (ingestion's tests count up from 3).
_redis_databases = itertools.count(9)


@pytest.fixture(scope="module")
async def simulator() -> AsyncIterator[Simulator]:
    """The Spotify simulator served by uvicorn on a free loopback port, for one module."""
    async with (
        serve_in_process(client_id=SIM_CLIENT_ID, client_secret=SIM_CLIENT_SECRET) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield Simulator(url=url, http=http)


@dataclass
class Harness:
    """One module's catalog with its real neighbours, and helpers to drive it."""

    settings: CatalogSettings
    sim: Simulator
    auth: auth_grpc.AuthServiceStub
    observability: obs_grpc.ObservabilityServiceStub
    ingestion: ingestion_grpc.IngestionServiceStub
    catalog: catalog_grpc.CatalogServiceStub
    database: AsyncDatabase
    redis: Redis
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def sign_in(self) -> tuple[str, str]:
        """Sign a fresh simulated Spotify user in through auth; returns (user_id, sim_user)."""
        sim_user = await self.sim.add_user()
        start = await self.auth.StartLogin(auth_pb.StartLoginRequest())
        callback = await self.sim.authorize(start.authorize_url, sim_user=sim_user)
        completed = await self.auth.CompleteLogin(
            auth_pb.CompleteLoginRequest(
                code=callback["code"], state=start.state, browser_binding=start.browser_binding
            )
        )
        return completed.user.id, sim_user

    async def sync(self, user_id: str, *, timeout: float = 90.0) -> obs_pb.Job:
        """Trigger a manual sync and wait for it to end."""
        response = await self.ingestion.TriggerSync(
            ingestion_pb.TriggerSyncRequest(user_id=user_id, job_type=obs_pb.JOB_TYPE_MANUAL)
        )
        assert response.started, "a sync was already running"
        deadline = time.monotonic() + timeout
        while True:
            job = await self.observability.GetJob(
                obs_pb.GetJobRequest(job_id=response.job_id, user_id=user_id)
            )
            if job.status in FINAL:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"sync did not finish in {timeout}s: {job}")
            await asyncio.sleep(0.05)

    async def api_calls(self, user_id: str, endpoint_contains: str) -> list[obs_pb.ApiCall]:
        """Spotify calls recorded for the user whose endpoint contains the text."""
        calls: list[obs_pb.ApiCall] = []
        page = 1
        while True:
            response = await self.observability.ListApiCalls(
                obs_pb.ListApiCallsRequest(
                    user_id=user_id, page=page, page_size=200, endpoint_contains=endpoint_contains
                )
            )
            calls.extend(response.calls)
            if len(calls) >= response.total or not response.calls:
                return calls
            page += 1


@contextlib.asynccontextmanager
async def _serving(opener: Any, settings: Any) -> AsyncIterator[BuiltServer]:
    async with opener(settings, port=0) as built:
        await built.start()
        try:
            yield built
        finally:
            await built.stop(grace=1.0)


async def _drop(settings: Any) -> None:
    mongo = create_mongo_client(settings, app_name="catalog-tests-cleanup")
    try:
        await mongo.drop_database(settings.mongodb_database)
    finally:
        await mongo.close()


@pytest.fixture(scope="module")
def catalog_overrides() -> dict[str, Any]:
    """Catalog settings a module changes (override the fixture in the module)."""
    return {}


@pytest.fixture(scope="module")
async def harness(
    redis_server: RedisServer,
    ferretdb_server: FerretDBServer,
    simulator: Simulator,
    catalog_overrides: dict[str, Any],
) -> AsyncIterator[Harness]:
    """Observability, auth, ingestion (+ worker) and catalog servers for one module."""
    suffix = uuid.uuid4().hex[:10]
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{next(_redis_databases)}"
    common: dict[str, Any] = {
        "environment": "test",
        "redis_url": redis_url,
        "mongodb_uri": ferretdb_server.uri,
        "grpc_host": LOOPBACK,
    }
    spotify = {
        "spotify_accounts_url": simulator.url,
        "spotify_api_url": simulator.url,
        "spotify_client_id": SIM_CLIENT_ID,
        "spotify_client_secret": SIM_CLIENT_SECRET,
        "spotify_max_retry_after_seconds": 2.0,
    }
    obs_settings = ObservabilitySettings(
        **common, mongodb_database=f"catalog_test_obs_{suffix}", github_api_url=f"http://{NOWHERE}"
    )
    redis = create_redis(obs_settings)
    await redis.flushdb()
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        obs = await stack.enter_async_context(_serving(open_observability_server, obs_settings))
        auth_settings = AuthSettings(
            **common,
            **spotify,
            mongodb_database=f"catalog_test_auth_{suffix}",
            observability_addr=f"{LOOPBACK}:{obs.port}",
            ingestion_addr=NOWHERE,
        )
        auth = await stack.enter_async_context(_serving(open_auth_server, auth_settings))
        ingestion_settings = IngestionSettings(
            **common,
            **spotify,
            mongodb_database=f"catalog_test_ingestion_{suffix}",
            auth_addr=f"{LOOPBACK}:{auth.port}",
            observability_addr=f"{LOOPBACK}:{obs.port}",
            queue_claim_idle_ms=1500,
            queue_heartbeat_seconds=0.3,
            queue_block_ms=200,
            worker_shutdown_grace_seconds=2.0,
            # No periodic syncs behind the tests' backs.
            sync_interval_seconds=86400.0,
        )
        ingestion = await stack.enter_async_context(
            _serving(open_ingestion_server, ingestion_settings)
        )
        settings = CatalogSettings(
            **common,
            **spotify,
            mongodb_database=f"catalog_test_{suffix}",
            auth_addr=f"{LOOPBACK}:{auth.port}",
            observability_addr=f"{LOOPBACK}:{obs.port}",
            ingestion_addr=f"{LOOPBACK}:{ingestion.port}",
            queue_block_ms=200,
            enrich_idle_seconds=0.2,
            **catalog_overrides,
        )
        catalog = await stack.enter_async_context(_serving(open_catalog_server, settings))
        worker_settings = ingestion_settings.model_copy(
            update={"catalog_addr": f"{LOOPBACK}:{catalog.port}"}
        )
        worker = await stack.enter_async_context(open_worker(worker_settings))
        worker_task = asyncio.create_task(worker.run(stop))
        channels = [
            create_channel(f"{LOOPBACK}:{port}", default_timeout=RPC_TIMEOUT)
            for port in (auth.port, obs.port, ingestion.port, catalog.port)
        ]
        mongo = create_mongo_client(settings, app_name="catalog-tests")
        harness = Harness(
            settings=settings,
            sim=simulator,
            auth=auth_grpc.AuthServiceStub(channels[0]),
            observability=obs_grpc.ObservabilityServiceStub(channels[1]),
            ingestion=ingestion_grpc.IngestionServiceStub(channels[2]),
            catalog=catalog_grpc.CatalogServiceStub(channels[3]),
            database=mongo[settings.mongodb_database],
            redis=redis,
        )
        try:
            yield harness
        finally:
            stop.set()
            await asyncio.wait({worker_task}, timeout=10)
            for channel in channels:
                await channel.close()
            await mongo.close()
    await redis.aclose()
    for each in (settings, ingestion_settings, auth_settings, obs_settings):
        await _drop(each)


@pytest.fixture
async def clean_simulator(simulator: Simulator) -> AsyncIterator[Simulator]:
    """The simulator, back to the extended app without faults after the test."""
    try:
        yield simulator
    finally:
        await simulator.clear_faults()
        await simulator.set_mode("extended")
