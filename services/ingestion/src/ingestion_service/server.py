"""Builds the ingestion service: its database and cache clients, servicer and gRPC server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from echostats.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc
from echostats_grpc.server import BuiltServer, build_server
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from ingestion_service.servicer import IngestionServicer
from ingestion_service.settings import IngestionSettings

SERVICE_NAME = ingestion_service_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name


@contextlib.asynccontextmanager
async def open_server(
    settings: IngestionSettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit."""
    mongo = create_mongo_client(settings, app_name="echostats-ingestion")
    redis = create_redis(settings)
    try:
        servicer = IngestionServicer()
        built = build_server(
            registrars=[
                lambda server: ingestion_service_pb2_grpc.add_IngestionServiceServicer_to_server(
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
