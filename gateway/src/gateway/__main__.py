"""`python -m gateway`: serve the REST API with uvicorn until SIGTERM."""

from __future__ import annotations

import uvicorn

from echostats_platform.json_logging import configure_logging
from echostats_platform.metrics import start_metrics_server
from gateway.main import create_app
from gateway.settings import GatewaySettings


def main() -> None:
    """Configure logging and metrics, then run uvicorn on the configured address."""
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    start_metrics_server(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        # X-Forwarded-For is handled by the rate limiter, trusting configured proxies only.
        proxy_headers=False,
        server_header=False,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
