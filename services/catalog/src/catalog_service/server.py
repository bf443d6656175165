"""Builds the catalog service: its database and cache clients, servicer and gRPC server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from catalog_service.servicer import CatalogServicer
from catalog_service.settings import CatalogSettings
from echostats.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from echostats_grpc.server import BuiltServer, build_server
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis

SERVICE_NAME = catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name


@contextlib.asynccontextmanager
async def open_server(
    settings: CatalogSettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit."""
    mongo = create_mongo_client(settings, app_name="echostats-catalog")
    redis = create_redis(settings)
    try:
        servicer = CatalogServicer()
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
        yield built
    finally:
        await redis.aclose()
        await mongo.close()
