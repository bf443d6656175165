"""`GET /v1/tracks?ids=` (≤ 50) and `GET /v1/tracks/{id}` (ref §2, §4).

No scope needed. The batch is closed to Development Mode apps since the Feb 2026 change
(403 `Forbidden`); the single lookup stays open. Dev-mode track objects lose `popularity`
and `available_markets` (`objects.track_object`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from .auth import Auth, State
from .catalog_lookup import check_single_id, parse_batch_ids
from .modes import closed_in_development
from .objects import track_object
from .urls import api_base

router = APIRouter(prefix="/v1", tags=["tracks"])

MAX_IDS = 50


@router.get("/tracks", dependencies=[Depends(closed_in_development(403))])
async def get_several_tracks(
    request: Request, state: State, ids: Annotated[str, Query()]
) -> dict[str, Any]:
    """Up to 50 tracks; `null` for ids the catalog does not know."""
    wanted = parse_batch_ids(ids, MAX_IDS)
    base, catalog = api_base(request), state.catalog
    return {
        "tracks": [
            track_object(catalog, i, base, state.mode) if i in catalog.tracks else None
            for i in wanted
        ]
    }


@router.get("/tracks/{track_id}")
async def get_track(request: Request, ctx: Auth, state: State, track_id: str) -> dict[str, Any]:
    """One track (open in both app modes)."""
    check_single_id(track_id, track_id in state.catalog.tracks)
    return track_object(state.catalog, track_id, api_base(request), state.mode)
