"""Builds the player-proxy service: stateless, so just its servicer and gRPC server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from echostats.player_proxy.v1 import player_proxy_service_pb2, player_proxy_service_pb2_grpc
from echostats_grpc.server import BuiltServer, build_server
from player_proxy_service.servicer import PlayerProxyServicer
from player_proxy_service.settings import PlayerProxySettings

SERVICE_NAME = player_proxy_service_pb2.DESCRIPTOR.services_by_name["PlayerProxyService"].full_name


@contextlib.asynccontextmanager
async def open_server(
    settings: PlayerProxySettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server."""
    servicer = PlayerProxyServicer()
    yield build_server(
        registrars=[
            lambda server: player_proxy_service_pb2_grpc.add_PlayerProxyServiceServicer_to_server(
                servicer, server
            )
        ],
        service_names=[SERVICE_NAME],
        host=settings.grpc_host,
        port=settings.grpc_port if port is None else port,
    )
