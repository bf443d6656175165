"""Prometheus metrics endpoint on an internal port (never through the public gateway)."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from echostats_platform.settings import CommonSettings

log = logging.getLogger(__name__)


def start_metrics_server(settings: CommonSettings) -> None:
    """Serve /metrics on settings.metrics_port (0 leaves it off)."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
        log.info("metrics listening", extra={"port": settings.metrics_port})
