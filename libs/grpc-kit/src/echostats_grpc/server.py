"""The aio server factory every service uses: health, reflection, interceptors, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from echostats_grpc.interceptors import default_server_interceptors

log = logging.getLogger("echostats.grpc")

Registrar = Callable[[grpc.aio.Server], None]

DEFAULT_MAX_CONNECTION_AGE_SECONDS = 300.0


@dataclass
class BuiltServer:
    """A started-or-startable server with its bound port and health servicer."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]

    async def start(self) -> None:
        """Start serving and mark every service SERVING."""
        await self.server.start()
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        """Mark NOT_SERVING, then stop, letting in-flight RPCs finish within `grace`."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def build_server(
    *,
    registrars: Iterable[Registrar],
    service_names: Iterable[str],
    host: str = "127.0.0.1",
    port: int = 0,
    interceptors: Iterable[grpc.aio.ServerInterceptor] | None = None,
    max_connection_age_seconds: float = DEFAULT_MAX_CONNECTION_AGE_SECONDS,
) -> BuiltServer:
    """Create an aio server bound to host:port (port 0 picks a free port, for tests)."""
    server = grpc.aio.server(
        interceptors=list(interceptors or default_server_interceptors()),
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            # Callers balance round robin over the addresses DNS gave them (headless
            # Services, compose --scale) and resolve again only when a connection ends. Ending
            # each connection after this age (GOAWAY; RPCs in flight, long uploads included,
            # still finish: no grace limit is set) lets replicas added by a scale-up take
            # their share within minutes.
            ("grpc.max_connection_age_ms", int(max_connection_age_seconds * 1000)),
        ],
    )
    for register in registrars:
        register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = tuple(service_names)
    reflection.enable_server_reflection(
        (
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind gRPC server to {host}:{port}")
    return BuiltServer(server=server, port=bound, health=health_servicer, service_names=names)


async def serve_until_signalled(built: BuiltServer, *, grace: float) -> None:
    """Start the server and block until SIGTERM/SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await built.start()
    log.info("grpc server listening", extra={"port": built.port, "services": built.service_names})
    await stop.wait()
    log.info("grpc server stopping", extra={"grace_seconds": grace})
    await built.stop(grace)
