"""/api/health: liveness, readiness of every dependency, and the release check."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from echostats.observability.v1 import observability_service_pb2 as observability_pb
from echostats_grpc.client import check_health
from echostats_platform import mongo, redis
from gateway.dependencies import Clients, Settings
from gateway.schemas.health import (
    HealthResponse,
    NotReadyResponse,
    ReadyResponse,
    UpdateCheckResponse,
)

router = APIRouter(prefix="/api/health", tags=["health"])


@router.get("", response_model=HealthResponse)
async def health(settings: Settings) -> HealthResponse:
    """The gateway process is up."""
    return HealthResponse(status="healthy", service="echostats-api", version=settings.version)


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={503: {"model": NotReadyResponse, "description": "A dependency is down"}},
)
async def ready(settings: Settings, clients: Clients) -> ReadyResponse | JSONResponse:
    """MongoDB, Redis and every service's gRPC health, checked concurrently."""
    timeout = settings.readiness_timeout_seconds

    async def bounded(check: Awaitable[bool]) -> bool:
        # A check that hangs or raises counts as down; readiness itself never fails.
        try:
            return await asyncio.wait_for(check, timeout)
        except Exception:
            return False

    names = list(clients.channels)
    results = await asyncio.gather(
        bounded(mongo.ping(clients.mongo)),
        bounded(redis.ping(clients.redis)),
        *(bounded(check_health(clients.channels[name], timeout=timeout)) for name in names),
    )
    database_ok, cache_ok, *service_ok = results
    problems = []
    if not database_ok:
        problems.append("database not connected")
    if not cache_ok:
        problems.append("cache unreachable")
    down = [name for name, ok in zip(names, service_ok, strict=True) if not ok]
    if down:
        problems.append("services unavailable: " + ", ".join(down))
    if problems:
        return JSONResponse(
            status_code=503,
            content={"status": "not_ready", "reason": ", ".join(problems)},
            headers={"Retry-After": str(settings.unavailable_retry_after_seconds)},
        )
    return ReadyResponse(status="ready")


@router.get("/update", response_model=UpdateCheckResponse)
async def update(clients: Clients) -> UpdateCheckResponse:
    """Whether a newer EchoStats release exists on GitHub (cached for an hour)."""
    info = await clients.observability.CheckForUpdate(observability_pb.CheckForUpdateRequest())

    def optional(field: str) -> str | None:
        return getattr(info, field) if info.HasField(field) else None

    return UpdateCheckResponse(
        current_version=info.current_version,
        latest_version=optional("latest_version"),
        update_available=info.update_available,
        release_url=optional("release_url"),
        release_notes=optional("release_notes"),
        published_at=optional("published_at"),
    )
