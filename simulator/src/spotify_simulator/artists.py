"""`GET /v1/artists?ids=` (≤ 50) and `GET /v1/artists/{id}` (ref §2, §4).

No scope needed. The batch is closed to Development Mode apps since Feb 2026 (403
`Forbidden`); the single lookup stays open. Dev-mode artists lose `followers` and
`popularity`; `genres` is kept (only flagged by the OpenAPI file).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from .auth import Auth, State
from .catalog_lookup import check_single_id, parse_batch_ids
from .modes import closed_in_development
from .objects import artist_object
from .urls import api_base

router = APIRouter(prefix="/v1", tags=["artists"])

MAX_IDS = 50


@router.get("/artists", dependencies=[Depends(closed_in_development(403))])
async def get_several_artists(
    request: Request, state: State, ids: Annotated[str, Query()]
) -> dict[str, Any]:
    """Up to 50 artists; `null` for ids the catalog does not know."""
    wanted = parse_batch_ids(ids, MAX_IDS)
    base, artists = api_base(request), state.catalog.artists
    return {
        "artists": [
            artist_object(artists[i], base, state.mode) if i in artists else None for i in wanted
        ]
    }


@router.get("/artists/{artist_id}")
async def get_artist(request: Request, ctx: Auth, state: State, artist_id: str) -> dict[str, Any]:
    """One artist (open in both app modes)."""
    artist = state.catalog.artists.get(artist_id)
    check_single_id(artist_id, artist is not None)
    assert artist is not None
    return artist_object(artist, api_base(request), state.mode)
