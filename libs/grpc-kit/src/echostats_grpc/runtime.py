"""Process entry helper shared by every service's __main__: logging, metrics, serve, clean up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from echostats_grpc.server import BuiltServer, serve_until_signalled
from echostats_platform.json_logging import configure_logging
from echostats_platform.metrics import start_metrics_server
from echostats_platform.settings import CommonSettings, GrpcServerSettings

ServerFactory = Callable[[Any], contextlib.AbstractAsyncContextManager[BuiltServer]]


def run_service(service: str, settings: Any, open_server: ServerFactory) -> None:
    """Run a service until SIGTERM: `open_server(settings)` yields a built server."""
    assert isinstance(settings, CommonSettings)
    assert isinstance(settings, GrpcServerSettings)
    configure_logging(service, settings.log_level)
    start_metrics_server(settings)

    async def main() -> None:
        async with open_server(settings) as built:
            await serve_until_signalled(built, grace=settings.grpc_shutdown_grace_seconds)

    asyncio.run(main())
