"""The FastAPI application factory: one process serving both Spotify hosts.

Accounts paths (`/authorize`, `/api/token`) and Web API paths (`/v1/...`) share one app
and one `SimulatorState`; the control API sits under `/_sim`. Each Spotify area is its own
router module (`accounts.py`, `me.py`, `recently_played.py`, `playlists.py`, `top.py`,
`audio_features.py`; later `tracks.py`, `player.py`, ...) registered in `ROUTERS`. The
OpenAPI/docs pages live under `/_sim` so no Spotify path is shadowed.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from . import (
    accounts,
    albums,
    artists,
    audio_features,
    browse,
    control,
    library,
    me,
    player,
    playlist_items,
    playlists,
    recently_played,
    recommendations,
    top,
    tracks,
)
from .config import SimulatorConfig
from .errors import install_error_handlers
from .middleware import SimulatorMiddleware
from .state import SimulatorState

# Spotify-facing areas, one module each; later issues append theirs here.
ROUTERS: tuple[APIRouter, ...] = (
    accounts.router,
    me.router,
    recently_played.router,
    playlists.router,
    top.router,
    audio_features.router,
    player.router,
    browse.router,
    library.router,
    tracks.router,
    artists.router,
    albums.router,
    recommendations.router,
    playlist_items.router,
)


def create_app(config: SimulatorConfig | None = None) -> FastAPI:
    """Build a simulator app with fresh seeded state for `config` (defaults if None)."""
    config = config or SimulatorConfig()
    state = SimulatorState(config)
    app = FastAPI(
        title="Spotify simulator",
        version="0.1.0",
        description="Spotify Accounts + Web API look-alike for EchoStats development and tests.",
        openapi_url="/_sim/openapi.json",
        docs_url="/_sim/docs",
        redoc_url=None,
    )
    app.state.sim = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(control.router)
    app.add_middleware(SimulatorMiddleware, state=state)
    return app
