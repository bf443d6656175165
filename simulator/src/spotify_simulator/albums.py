"""`GET /v1/albums?ids=` (≤ 20) and `GET /v1/albums/{id}` (ref §2, §4).

No scope needed. The batch is closed to Development Mode apps since Feb 2026 (403
`Forbidden`); the single lookup stays open. The full album adds `copyrights`,
`external_ids`, `genres` (always empty since Dec 2024), `label`, `popularity` (both removed
in dev mode) and the first page of its tracks.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from echostats_synthetic.catalog import Album, Catalog

from .auth import Auth, State
from .catalog_lookup import check_single_id, parse_batch_ids
from .config import Mode
from .modes import closed_in_development, strip_dev_fields
from .objects import simplified_album, simplified_artist, track_object
from .urls import api_base

router = APIRouter(prefix="/v1", tags=["albums"])

MAX_IDS = 20
TRACKS_PAGE = 50


def album_object(album: Album, catalog: Catalog, base: str, mode: Mode) -> dict[str, Any]:
    """The full album object with its first page of simplified tracks."""
    tracks = []
    for track_id in album.track_ids[:TRACKS_PAGE]:
        full = track_object(catalog, track_id, base, mode)
        tracks.append({k: v for k, v in full.items() if k not in ("album", "external_ids")})
    body = {
        **simplified_album(album, catalog, base, Mode.EXTENDED),
        "artists": [simplified_artist(catalog.artists[a], base) for a in album.artist_ids],
        "copyrights": [{"text": f"(C) {album.release_date[:4]} {album.label}", "type": "C"}],
        "external_ids": {"upc": album.upc},
        "genres": [],
        "label": album.label,
        "popularity": album.popularity,
        "tracks": {
            "href": f"{base}/v1/albums/{album.id}/tracks",
            "items": tracks,
            "limit": TRACKS_PAGE,
            "next": None,
            "offset": 0,
            "previous": None,
            "total": len(album.track_ids),
        },
    }
    return strip_dev_fields("album", body, mode)


@router.get("/albums", dependencies=[Depends(closed_in_development(403))])
async def get_several_albums(
    request: Request, state: State, ids: Annotated[str, Query()]
) -> dict[str, Any]:
    """Up to 20 albums; `null` for ids the catalog does not know."""
    wanted = parse_batch_ids(ids, MAX_IDS)
    base, catalog = api_base(request), state.catalog
    return {
        "albums": [
            album_object(catalog.albums[i], catalog, base, state.mode)
            if i in catalog.albums
            else None
            for i in wanted
        ]
    }


@router.get("/albums/{album_id}")
async def get_album(request: Request, ctx: Auth, state: State, album_id: str) -> dict[str, Any]:
    """One album (open in both app modes)."""
    album = state.catalog.albums.get(album_id)
    check_single_id(album_id, album is not None)
    assert album is not None
    return album_object(album, state.catalog, api_base(request), state.mode)
