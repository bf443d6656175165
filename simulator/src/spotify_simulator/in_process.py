"""Run the simulator inside the caller's event loop, for component tests of other packages.

The socket is bound here (port 0) and handed to uvicorn, so no other process can take the
port between picking and binding it; uvicorn's signal handlers are left out, so Ctrl-C and
SIGTERM still reach the test runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn

from spotify_simulator.app import create_app
from spotify_simulator.config import SimulatorConfig

LOOPBACK = "127.0.0.1"


class _InProcessServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C and SIGTERM belong to the host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the host's handlers in place (uvicorn would swallow Ctrl-C)."""
        yield


@contextlib.asynccontextmanager
async def serve_in_process(
    *, client_id: str, client_secret: str, start_timeout: float = 10.0
) -> AsyncIterator[str]:
    """Serve a fresh simulator on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = int(sock.getsockname()[1])
    config = SimulatorConfig(
        host=LOOPBACK, port=port, client_id=client_id, client_secret=client_secret
    )
    server = _InProcessServer(
        uvicorn.Config(create_app(config), lifespan="off", log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(start_timeout):
            while not server.started:
                if serving.done():
                    serving.result()  # raises what stopped it
                    raise RuntimeError("the simulator stopped before it was ready")
                await asyncio.sleep(0.01)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        sock.close()
