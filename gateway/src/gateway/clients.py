"""The gateway's connections: one gRPC channel per service, Redis, and MongoDB for readiness."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from echostats.analytics.v1 import analytics_service_pb2_grpc
from echostats.auth.v1 import auth_service_pb2_grpc
from echostats.catalog.v1 import catalog_service_pb2_grpc
from echostats.ingestion.v1 import ingestion_service_pb2_grpc
from echostats.observability.v1 import observability_service_pb2_grpc
from echostats.player_proxy.v1 import player_proxy_service_pb2_grpc
from echostats_grpc.client import create_channel
from echostats_platform.mongo import create_mongo_client
from gateway.settings import GatewaySettings


@dataclass
class ServiceClients:
    """Channels and stubs built once at start-up and shared by every request."""

    channels: dict[str, grpc.aio.Channel]
    auth: auth_service_pb2_grpc.AuthServiceStub
    ingestion: ingestion_service_pb2_grpc.IngestionServiceStub
    catalog: catalog_service_pb2_grpc.CatalogServiceStub
    analytics: analytics_service_pb2_grpc.AnalyticsServiceStub
    player_proxy: player_proxy_service_pb2_grpc.PlayerProxyServiceStub
    observability: observability_service_pb2_grpc.ObservabilityServiceStub
    redis: Redis
    mongo: AsyncMongoClient

    @classmethod
    def connect(cls, settings: GatewaySettings, redis: Redis) -> ServiceClients:
        """Open every channel and the MongoDB client; call inside the serving event loop."""
        channels = {
            name: create_channel(target, default_timeout=settings.grpc_default_timeout_seconds)
            for name, target in settings.service_targets().items()
        }
        return cls(
            channels=channels,
            auth=auth_service_pb2_grpc.AuthServiceStub(channels["auth"]),
            ingestion=ingestion_service_pb2_grpc.IngestionServiceStub(channels["ingestion"]),
            catalog=catalog_service_pb2_grpc.CatalogServiceStub(channels["catalog"]),
            analytics=analytics_service_pb2_grpc.AnalyticsServiceStub(channels["analytics"]),
            player_proxy=player_proxy_service_pb2_grpc.PlayerProxyServiceStub(
                channels["player-proxy"]
            ),
            observability=observability_service_pb2_grpc.ObservabilityServiceStub(
                channels["observability"]
            ),
            redis=redis,
            mongo=create_mongo_client(settings, app_name="echostats-gateway"),
        )

    async def close(self) -> None:
        """Close what connect() opened (Redis belongs to the app and closes with it)."""
        for channel in self.channels.values():
            await channel.close()
        await self.mongo.close()
