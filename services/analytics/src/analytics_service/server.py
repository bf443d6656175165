"""Builds the analytics service: its database and cache clients, servicer and gRPC server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from analytics_service.servicer import AnalyticsServicer
from analytics_service.settings import AnalyticsSettings
from echostats.analytics.v1 import analytics_service_pb2, analytics_service_pb2_grpc
from echostats_grpc.server import BuiltServer, build_server
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis

SERVICE_NAME = analytics_service_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name


@contextlib.asynccontextmanager
async def open_server(
    settings: AnalyticsSettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit."""
    mongo = create_mongo_client(settings, app_name="echostats-analytics")
    redis = create_redis(settings)
    try:
        servicer = AnalyticsServicer()
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
        yield built
    finally:
        await redis.aclose()
        await mongo.close()
