"""`GET /v1/me/playlists`: the user's playlists as an offset page (ref §2, §3).

Scope `playlist-read-private`; as on Spotify, collaborative playlists are listed only when
the token also has `playlist-read-collaborative`. `limit` is 1-50 (default 20) and
`offset` 0-100 000; other values answer 400 `Invalid limit` / `Invalid offset`.

Items are simplified playlist objects. Their count block follows the app mode: Extended
Quota Mode sends `"tracks": {"href": ".../tracks", "total": n}`, Development Mode sends
`"items": {"href": ".../items", "total": n}` (the Feb 2026 rename, ref §4). The libraries
themselves live in `playlist_store.py` and change through `/_sim/playlists`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from echostats_synthetic.ids import image_set

from .auth import AuthContext, State, require_scopes
from .config import Mode
from .objects import OPEN_SPOTIFY
from .paging import offset_page
from .playlist_store import SimPlaylist
from .urls import api_base

router = APIRouter(prefix="/v1", tags=["playlists"])

PlaylistReader = Annotated[AuthContext, Depends(require_scopes("playlist-read-private"))]


def simplified_playlist(playlist: SimPlaylist, base: str, mode: Mode) -> dict[str, Any]:
    """The simplified playlist object, with `tracks` or (dev mode) `items` as count block."""
    block = "items" if mode is Mode.DEVELOPMENT else "tracks"
    owner = playlist.owner_id
    return {
        "collaborative": playlist.collaborative,
        "description": playlist.description,
        "external_urls": {"spotify": f"{OPEN_SPOTIFY}/playlist/{playlist.id}"},
        "href": f"{base}/v1/playlists/{playlist.id}",
        "id": playlist.id,
        # Spotify builds a mosaic from the tracks; an empty playlist has no image.
        "images": image_set("playlist", playlist.id, (640, 300, 60)) if playlist.track_ids else [],
        "name": playlist.name,
        "owner": {
            "display_name": playlist.owner_display_name,
            "external_urls": {"spotify": f"{OPEN_SPOTIFY}/user/{owner}"},
            "href": f"{base}/v1/users/{owner}",
            "id": owner,
            "type": "user",
            "uri": f"spotify:user:{owner}",
        },
        "primary_color": None,
        "public": playlist.public,
        "snapshot_id": playlist.snapshot_id,
        block: {
            "href": f"{base}/v1/playlists/{playlist.id}/{block}",
            "total": len(playlist.track_ids),
        },
        "type": "playlist",
        "uri": playlist.uri,
    }


@router.get("/me/playlists")
async def get_my_playlists(
    request: Request,
    ctx: PlaylistReader,
    state: State,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    """An offset page of the playlists the user owns or follows, library order."""
    library = state.playlists.library(ctx.user.id)
    if "playlist-read-collaborative" not in ctx.scopes:
        library = [p for p in library if not p.collaborative]
    base = api_base(request)
    items = [simplified_playlist(p, base, state.mode) for p in library[offset : offset + limit]]
    return offset_page(request, items, total=len(library), limit=limit, offset=offset)
