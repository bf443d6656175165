"""Fixtures for the ingestion tests: real FerretDB, Redis, simulator, auth, observability, catalog.

Redis and FerretDB are the session's shared servers (devstack pytest plugin). Each test
module gets its own databases (ingestion, auth, observability; dropped at the end) and its
own Redis database number (flushed first), so the fixed stream names of the work queues
never carry one module's messages into another. The Spotify simulator runs in-process
(uvicorn on a free loopback port); auth and observability are their real gRPC servers
(`open_server(settings, port=0)`), so a sync goes through the real token refresh and the
real job ledger. Auth's after-login hook points at the discard port: signing a test user
in never starts a sync behind the test's back.

Tests get the helpers below through fixtures (`harness`, `simulator`) and type them `Any`:
test modules cannot import this file under --import-mode=importlib.
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

from analytics_service.server import open_server as open_analytics_server
from analytics_service.settings import AnalyticsSettings
from auth_service.server import open_server as open_auth_server
from auth_service.settings import AuthSettings
from catalog_service.server import open_server as open_catalog_server
from catalog_service.settings import CatalogSettings
from echostats.auth.v1 import auth_service_pb2 as auth_pb
from echostats.auth.v1 import auth_service_pb2_grpc as auth_grpc
from echostats.ingestion.v1 import ingestion_service_pb2 as pb
from echostats.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
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
from ingestion_service.worker import IngestionWorker, open_worker
from observability_service.server import open_server as open_observability_server
from observability_service.settings import ObservabilitySettings
from spotify_simulator.in_process import serve_in_process

LOOPBACK = "127.0.0.1"
NOWHERE = f"{LOOPBACK}:9"
SIM_CLIENT_ID = "echostats-dev-client"
SIM_CLIENT_SECRET = "echostats-dev-secret"
RPC_TIMEOUT = 30.0
RECENTLY_PLAYED = "/v1/me/player/recently-played"
FINAL = (obs_pb.JOB_STATUS_COMPLETED, obs_pb.JOB_STATUS_FAILED)

# Redis database numbers handed to test modules (0 is left to the other services' tests).
_redis_databases = itertools.count(3)


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
    """One module's ingestion service with its real neighbours, and helpers to drive it."""

    settings: IngestionSettings
    sim: Simulator
    auth: auth_grpc.AuthServiceStub
    observability: obs_grpc.ObservabilityServiceStub
    ingestion: pb_grpc.IngestionServiceStub
    database: AsyncDatabase
    redis: Redis
    workers: list[WorkerHandle] = field(default_factory=list)

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

    async def trigger(self, user_id: str, job_type: int = obs_pb.JOB_TYPE_MANUAL) -> str:
        """TriggerSync that must start a job; returns its id."""
        response = await self.ingestion.TriggerSync(
            pb.TriggerSyncRequest(user_id=user_id, job_type=job_type)
        )
        assert response.started, "a sync was already running"
        return response.job_id

    async def job(self, job_id: str, user_id: str) -> obs_pb.Job:
        """The job as the ledger has it now."""
        return await self.observability.GetJob(obs_pb.GetJobRequest(job_id=job_id, user_id=user_id))

    async def wait_for_job(self, job_id: str, user_id: str, *, timeout: float = 60.0) -> obs_pb.Job:
        """Poll the ledger until the job completed or failed."""
        deadline = time.monotonic() + timeout
        while True:
            job = await self.job(job_id, user_id)
            if job.status in FINAL:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")
            await asyncio.sleep(0.05)

    async def wait_for_status(self, job_id: str, user_id: str, status: int) -> obs_pb.Job:
        """Poll the ledger until the job reaches `status`."""
        async with asyncio.timeout(30):
            while True:
                job = await self.job(job_id, user_id)
                if job.status == status:
                    return job
                await asyncio.sleep(0.02)

    async def stored_plays(self, user_id: str) -> list[dict[str, Any]]:
        """The user's stored play documents, oldest first."""
        cursor = self.database["plays"].find({"user_id": user_id}).sort("played_at", 1)
        return [doc async for doc in cursor]

    async def start_worker(self, **overrides: Any) -> WorkerHandle:
        """Run a worker (both lanes and the scheduler) in this event loop until stopped."""
        settings = self.settings.model_copy(update=overrides)
        ready: asyncio.Future[IngestionWorker] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()

        async def run() -> None:
            async with open_worker(settings) as worker:
                ready.set_result(worker)
                await worker.run(stop)

        task = asyncio.create_task(run())
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        handle = WorkerHandle(ready.result(), task, stop)
        self.workers.append(handle)
        return handle

    async def stop_workers(self) -> None:
        """Stop every worker this harness started that is still running (gracefully)."""
        for handle in self.workers:
            handle.stop.set()
        for handle in self.workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(handle.task, timeout=10)
        self.workers.clear()


@dataclass
class WorkerHandle:
    """A worker running in the test's event loop."""

    worker: IngestionWorker
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def crash(self) -> None:
        """Cancel it at once, like a killed process: running jobs stay pending in Redis."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


@contextlib.asynccontextmanager
async def _serving(opener: Any, settings: Any) -> AsyncIterator[BuiltServer]:
    async with opener(settings, port=0) as built:
        await built.start()
        try:
            yield built
        finally:
            await built.stop(grace=1.0)


async def _drop(settings: Any) -> None:
    mongo = create_mongo_client(settings, app_name="ingestion-tests-cleanup")
    try:
        await mongo.drop_database(settings.mongodb_database)
    finally:
        await mongo.close()


@pytest.fixture(scope="module")
async def harness(
    redis_server: RedisServer, ferretdb_server: FerretDBServer, simulator: Simulator
) -> AsyncIterator[Harness]:
    """Observability, auth and ingestion servers for one module (no worker running yet)."""
    suffix = uuid.uuid4().hex[:10]
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{next(_redis_databases)}"
    common: dict[str, Any] = {
        "environment": "test",
        "redis_url": redis_url,
        "mongodb_uri": ferretdb_server.uri,
        "grpc_host": LOOPBACK,
    }
    obs_settings = ObservabilitySettings(
        **common,
        mongodb_database=f"ingestion_test_obs_{suffix}",
        github_api_url=f"http://{NOWHERE}",
    )
    spotify = {
        "spotify_accounts_url": simulator.url,
        "spotify_api_url": simulator.url,
        "spotify_client_id": SIM_CLIENT_ID,
        "spotify_client_secret": SIM_CLIENT_SECRET,
    }
    redis = create_redis(obs_settings)
    await redis.flushdb()
    async with contextlib.AsyncExitStack() as stack:
        obs = await stack.enter_async_context(_serving(open_observability_server, obs_settings))
        auth_settings = AuthSettings(
            **common,
            **spotify,
            mongodb_database=f"ingestion_test_auth_{suffix}",
            observability_addr=f"{LOOPBACK}:{obs.port}",
            # Signing a test user in must not start a sync behind the test's back.
            ingestion_addr=NOWHERE,
        )
        auth = await stack.enter_async_context(_serving(open_auth_server, auth_settings))
        settings = IngestionSettings(
            **common,
            **spotify,
            mongodb_database=f"ingestion_test_{suffix}",
            auth_addr=f"{LOOPBACK}:{auth.port}",
            observability_addr=f"{LOOPBACK}:{obs.port}",
            # Short, so redelivery and shutdown tests take seconds, not minutes.
            queue_claim_idle_ms=1500,
            queue_heartbeat_seconds=0.3,
            queue_block_ms=200,
            worker_shutdown_grace_seconds=2.0,
            scheduler_lease_ttl_seconds=2.0,
            scheduler_lease_renew_seconds=0.5,
            spotify_max_retry_after_seconds=3.0,
        )
        ingestion = await stack.enter_async_context(_serving(open_ingestion_server, settings))
        # The worker's audio_features, playlists and top_items steps are catalog RPCs.
        catalog_settings = CatalogSettings(
            **common,
            **spotify,
            mongodb_database=f"ingestion_test_catalog_{suffix}",
            auth_addr=f"{LOOPBACK}:{auth.port}",
            observability_addr=f"{LOOPBACK}:{obs.port}",
            ingestion_addr=f"{LOOPBACK}:{ingestion.port}",
            # Ingestion's tests check the steps, not catalog's background enrichment.
            enrich_background=False,
        )
        catalog = await stack.enter_async_context(_serving(open_catalog_server, catalog_settings))
        settings = settings.model_copy(update={"catalog_addr": f"{LOOPBACK}:{catalog.port}"})
        # The sync pipeline's last step calls analytics: a real one (its stream consumers off,
        # the catalog nowhere, so it rolls up with names only).
        analytics_settings = AnalyticsSettings(
            **common,
            mongodb_database=f"ingestion_test_analytics_{suffix}",
            ingestion_addr=f"{LOOPBACK}:{ingestion.port}",
            observability_addr=f"{LOOPBACK}:{obs.port}",
            catalog_addr=NOWHERE,
            analytics_background=False,
        )
        analytics = await stack.enter_async_context(
            _serving(open_analytics_server, analytics_settings)
        )
        settings = settings.model_copy(update={"analytics_addr": f"{LOOPBACK}:{analytics.port}"})
        channels = [
            create_channel(f"{LOOPBACK}:{port}", default_timeout=RPC_TIMEOUT)
            for port in (auth.port, obs.port, ingestion.port)
        ]
        mongo = create_mongo_client(settings, app_name="ingestion-tests")
        harness = Harness(
            settings=settings,
            sim=simulator,
            auth=auth_grpc.AuthServiceStub(channels[0]),
            observability=obs_grpc.ObservabilityServiceStub(channels[1]),
            ingestion=pb_grpc.IngestionServiceStub(channels[2]),
            database=mongo[settings.mongodb_database],
            redis=redis,
        )
        try:
            yield harness
        finally:
            await harness.stop_workers()
            for channel in channels:
                await channel.close()
            await mongo.close()
    await redis.aclose()
    for each in (settings, auth_settings, obs_settings, analytics_settings, catalog_settings):
        await _drop(each)


@pytest.fixture
async def clean_simulator(simulator: Simulator) -> AsyncIterator[Simulator]:
    """The simulator, with faults and latency cleared after the test."""
    try:
        yield simulator
    finally:
        await simulator.clear_faults()
        await simulator.http.delete("/_sim/latency")
