"""A playlist's items: `GET /v1/playlists/{id}/tracks` and, since Feb 2026, `/items` (ref §4).

Scope `playlist-read-private`. Extended Quota Mode serves `/tracks` with items
`{added_at, added_by, is_local, track}`. Development Mode has the Feb 2026 rename: `/items`
with `item` instead of `track` (`/tracks` answers 404 `Service not found`), and only
playlists the user owns or collaborates on are readable (others: 403 `Forbidden`).
`limit` 1-100 (default 100), `offset` >= 0. Unknown playlist: 404 `Not found.`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from .auth import AuthContext, State, require_scopes
from .config import Mode
from .errors import WebApiError
from .objects import track_object
from .paging import offset_page
from .urls import api_base

router = APIRouter(prefix="/v1", tags=["playlists"])

PlaylistReader = Annotated[AuthContext, Depends(require_scopes("playlist-read-private"))]
# Every item reports one fixed "added" moment: the simulator keeps no history of edits.
ADDED_AT = datetime(2024, 1, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page(
    request: Request, ctx: AuthContext, state: Any, playlist_id: str, limit: int, offset: int
) -> dict[str, Any]:
    playlist = state.playlists.get(playlist_id)
    if playlist is None:
        raise WebApiError(404, "Not found.")
    development = state.mode is Mode.DEVELOPMENT
    if development and not (playlist.owner_id == ctx.user.id or playlist.collaborative):
        raise WebApiError(403, "Forbidden")
    base = api_base(request)
    key = "item" if development else "track"
    items = [
        {
            "added_at": ADDED_AT,
            "added_by": {"id": playlist.owner_id, "type": "user"},
            "is_local": False,
            key: track_object(state.catalog, track_id, base, state.mode),
        }
        for track_id in playlist.track_ids[offset : offset + limit]
    ]
    return offset_page(request, items, total=len(playlist.track_ids), limit=limit, offset=offset)


@router.get("/playlists/{playlist_id}/tracks")
async def get_playlist_tracks(
    request: Request,
    ctx: PlaylistReader,
    state: State,
    playlist_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The pre-2026 path (gone for development-mode apps)."""
    if state.mode is Mode.DEVELOPMENT:
        raise WebApiError(404, "Service not found")
    return _page(request, ctx, state, playlist_id, limit, offset)


@router.get("/playlists/{playlist_id}/items")
async def get_playlist_items(
    request: Request,
    ctx: PlaylistReader,
    state: State,
    playlist_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The Feb 2026 path (development-mode apps)."""
    if state.mode is not Mode.DEVELOPMENT:
        raise WebApiError(404, "Service not found")
    return _page(request, ctx, state, playlist_id, limit, offset)
