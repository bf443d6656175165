"""Builds the observability service: its database and cache clients, servicer and gRPC server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from echostats.observability.v1 import observability_service_pb2, observability_service_pb2_grpc
from echostats_grpc.server import BuiltServer, build_server
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from observability_service.release_check import ReleaseChecker
from observability_service.servicer import ObservabilityServicer
from observability_service.settings import ObservabilitySettings

SERVICE_NAME = observability_service_pb2.DESCRIPTOR.services_by_name[
    "ObservabilityService"
].full_name


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
        releases = ReleaseChecker(
            http=http,
            redis=redis,
            api_url=settings.github_api_url,
            repository=settings.github_repository,
            current_version=settings.version,
            cache_seconds=settings.update_check_cache_seconds,
            failure_cache_seconds=settings.update_check_failure_cache_seconds,
        )
        servicer = ObservabilityServicer(releases=releases)
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
        yield built
    finally:
        await http.aclose()
        await redis.aclose()
        await mongo.close()
