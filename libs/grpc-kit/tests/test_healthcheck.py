"""The container health check against a real in-process gRPC server."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from echostats_grpc.healthcheck import check
from echostats_grpc.server import build_server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _probe(port: int) -> int:
    """Run the module as the image's HEALTHCHECK does (port from ECHOSTATS_GRPC_PORT)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "echostats_grpc.healthcheck",
        "--timeout",
        "2",
        env={**os.environ, "ECHOSTATS_GRPC_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait()


async def test_healthy_while_serving_unhealthy_once_stopping():
    built = build_server(registrars=[], service_names=[], port=0)
    await built.start()
    try:
        assert await asyncio.to_thread(check, f"127.0.0.1:{built.port}")
        assert await _probe(built.port) == 0
        await built.health.enter_graceful_shutdown()
        assert not await asyncio.to_thread(check, f"127.0.0.1:{built.port}")
        assert await _probe(built.port) == 1
    finally:
        await built.stop(0)


async def test_nothing_listening_is_unhealthy():
    assert not await asyncio.to_thread(check, f"127.0.0.1:{_free_port()}", timeout=1.0)
