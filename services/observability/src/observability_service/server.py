"""Builds the observability service: clients, repositories, use cases, servicer, gRPC server.

Besides the server, the block runs this replica's background tasks (index creation,
retried while the database is down; the one-time counting of API-log records stored before
the day stats; the stale-job reaper; API-log retention) and cancels
them on exit, before the clients close.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from echostats.observability.v1 import observability_service_pb2, observability_service_pb2_grpc
from echostats_grpc.server import BuiltServer, build_server
from echostats_platform.lease import Lease
from echostats_platform.mongo import create_mongo_client, is_ferretdb
from echostats_platform.redis import create_redis
from observability_service.api_calls import ApiCallLog
from observability_service.background import periodically, running_tasks, until_done
from observability_service.jobs import JobLedger
from observability_service.release_check import ReleaseChecker
from observability_service.repository import ApiCallRepository, JobRepository
from observability_service.servicer import ObservabilityServicer
from observability_service.settings import ObservabilitySettings

SERVICE_NAME = observability_service_pb2.DESCRIPTOR.services_by_name[
    "ObservabilityService"
].full_name
# One replica counts the API-log records stored before the day stats (renewed per chunk).
COUNT_LEASE_KEY = "observability:api-log-count-lease"
COUNT_LEASE_MS = 120_000


async def ensure_indexes(
    database: AsyncDatabase,
    jobs: JobRepository,
    calls: ApiCallRepository,
    settings: ObservabilitySettings,
) -> None:
    """Create every index; the TTL index on API calls only where the server has TTL."""
    await jobs.ensure_indexes()
    # A day longer than the retention: the periodic sweep deletes whole days (calls and
    # their day stats together); the TTL index only catches what a stopped sweep left.
    ttl_days = settings.api_log_retention_days + 1
    ttl_seconds = None if await is_ferretdb(database) else ttl_days * 86400
    await calls.ensure_indexes(ttl_seconds=ttl_seconds)


@contextlib.asynccontextmanager
async def open_server(
    settings: ObservabilitySettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit."""
    mongo = create_mongo_client(settings, app_name="echostats-observability")
    redis = create_redis(settings)
    http = httpx.AsyncClient(
        timeout=settings.update_check_timeout_seconds,
        headers={"User-Agent": f"EchoStats/{settings.version}"},
    )
    try:
        database = mongo[settings.mongodb_database]
        job_repo = JobRepository(database)
        call_repo = ApiCallRepository(database)
        ledger = JobLedger(jobs=job_repo, stale_after_seconds=settings.job_stale_after_seconds)
        call_log = ApiCallLog(calls=call_repo, retention_days=settings.api_log_retention_days)
        releases = ReleaseChecker(
            http=http,
            redis=redis,
            api_url=settings.github_api_url,
            repository=settings.github_repository,
            current_version=settings.version,
            cache_seconds=settings.update_check_cache_seconds,
            failure_cache_seconds=settings.update_check_failure_cache_seconds,
        )
        servicer = ObservabilityServicer(jobs=ledger, api_calls=call_log, releases=releases)
        built = build_server(
            registrars=[
                lambda server: (
                    observability_service_pb2_grpc.add_ObservabilityServiceServicer_to_server(
                        servicer, server
                    )
                )
            ],
            service_names=[SERVICE_NAME],
            host=settings.grpc_host,
            port=settings.grpc_port if port is None else port,
        )
        async with running_tasks(
            until_done(
                "ensure-indexes",
                settings.index_retry_interval_seconds,
                lambda: ensure_indexes(database, job_repo, call_repo, settings),
            ),
            until_done(
                "api-log-counters",
                settings.index_retry_interval_seconds,
                lambda: call_log.count_records_from_before_the_stats(
                    Lease(redis, COUNT_LEASE_KEY, owner=uuid.uuid4().hex, ttl_ms=COUNT_LEASE_MS)
                ),
            ),
            periodically("job-reaper", settings.job_reaper_interval_seconds, ledger.reap_stale),
            periodically(
                "api-log-retention",
                settings.api_log_retention_interval_seconds,
                call_log.purge_expired,
            ),
        ):
            yield built
    finally:
        await http.aclose()
        await redis.aclose()
        await mongo.close()
