"""Builds the player-proxy service: the Spotify client (tokens from auth, every call logged to
observability), the servicer and the gRPC server. Stateless: no database, no Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from echostats.auth.v1.auth_service_pb2_grpc import AuthServiceStub
from echostats.observability.v1.observability_service_pb2_grpc import ObservabilityServiceStub
from echostats.player_proxy.v1 import player_proxy_service_pb2
from echostats.player_proxy.v1.player_proxy_service_pb2_grpc import (
    add_PlayerProxyServiceServicer_to_server,
)
from echostats_grpc.client import create_channel
from echostats_grpc.server import BuiltServer, build_server
from echostats_grpc.service_clients import AuthTokenProvider, ObservabilityCallSink
from echostats_spotify.client import TokenProvider
from echostats_spotify.factory import build_spotify_clients
from echostats_spotify.recording import (
    BufferedRecorder,
    CallRecorder,
    FanoutRecorder,
    LoggingRecorder,
)
from player_proxy_service.servicer import PlayerProxyServicer
from player_proxy_service.settings import PlayerProxySettings
from player_proxy_service.spotify_calls import SpotifyPlayerCalls
from player_proxy_service.tokens import AuthTokens

SERVICE_NAME = player_proxy_service_pb2.DESCRIPTOR.services_by_name["PlayerProxyService"].full_name
CALLER = "player-proxy"


@contextlib.asynccontextmanager
async def open_server(
    settings: PlayerProxySettings,
    *,
    port: int | None = None,
    token_provider: TokenProvider | None = None,
    recorder: CallRecorder | None = None,
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit.

    `token_provider` and `recorder` replace auth and the observability log in component
    tests; in production both come from the configured services.
    """
    async with contextlib.AsyncExitStack() as resources:
        timeout = settings.grpc_default_timeout_seconds
        if recorder is None:
            observability_channel = create_channel(
                settings.observability_addr, default_timeout=timeout
            )
            resources.push_async_callback(observability_channel.close)
            # Every Spotify call goes to the log line and, batched, to observability's API
            # log; closed after the Spotify client (callbacks run last-in first-out), so
            # the last records are still shipped.
            call_log = BufferedRecorder(
                ObservabilityCallSink(ObservabilityServiceStub(observability_channel))
            )
            call_log.start()
            resources.push_async_callback(call_log.aclose)
            recorder = FanoutRecorder(LoggingRecorder(), call_log)
        if token_provider is None:
            auth_channel = create_channel(settings.auth_addr, default_timeout=timeout)
            resources.push_async_callback(auth_channel.close)
            token_provider = AuthTokens(AuthTokenProvider(AuthServiceStub(auth_channel)))
        clients = build_spotify_clients(
            settings, caller=CALLER, recorder=recorder, token_provider=token_provider
        )
        resources.push_async_callback(clients.aclose)
        servicer = PlayerProxyServicer(SpotifyPlayerCalls(clients.api), settings)
        yield build_server(
            registrars=[lambda server: add_PlayerProxyServiceServicer_to_server(servicer, server)],
            service_names=[SERVICE_NAME],
            host=settings.grpc_host,
            port=settings.grpc_port if port is None else port,
        )
