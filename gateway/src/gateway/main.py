"""create_app: the FastAPI application with its middleware, error handlers and routers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from echostats_platform.redis import create_redis
from gateway.clients import ServiceClients
from gateway.errors import install_error_handlers
from gateway.middleware import install_middleware
from gateway.openapi import install_openapi
from gateway.routers import analytics as analytics_routes
from gateway.routers import (
    api_logs,
    auth,
    browse,
    health,
    history,
    imports,
    library,
    player,
    sync_jobs,
)
from gateway.routers import catalog as catalog_routes
from gateway.routers import top_lists as top_list_routes
from gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """Build the gateway app; service clients open at start-up and close on shutdown."""
    settings = settings or GatewaySettings()
    # Redis connects lazily, so the rate limiter can hold it before the loop runs; gRPC
    # channels and the MongoDB client bind to the event loop and are opened in lifespan.
    redis = create_redis(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        clients = ServiceClients.connect(settings, redis)
        app.state.clients = clients
        try:
            yield
        finally:
            await clients.close()
            await redis.aclose()

    app = FastAPI(
        title="EchoStats API",
        version=settings.version,
        description="Spotify listening analytics: history, analytics, catalog, player proxy.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app, settings)
    install_middleware(app, settings, redis)
    install_openapi(app, settings)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(history.router)
    app.include_router(imports.router)
    app.include_router(sync_jobs.router)
    app.include_router(api_logs.router)
    app.include_router(analytics_routes.router)
    app.include_router(top_list_routes.router)
    # After top_lists: its /tracks/top must win over catalog's /tracks/{track_id}.
    app.include_router(catalog_routes.router)
    app.include_router(player.router)
    app.include_router(browse.router)
    app.include_router(library.router)
    return app
