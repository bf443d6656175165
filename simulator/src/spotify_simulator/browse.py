"""`GET /v1/browse/new-releases`, `/browse/featured-playlists`, `/browse/categories` (ref §2).

No scope needed; `limit` 1-50 (default 20), `offset` 0-100 000, other values 400
`Invalid limit` / `Invalid offset`. All three come from the deterministic catalog:
- new releases: the catalog's 100 newest albums, newest first, as simplified albums in
  `{"albums": <offset page>}`;
- featured playlists: twelve Spotify-owned editorial playlists (`37i9dQZF1DX…` ids, tracks
  picked per genre), `{"message": <greeting for the simulated UTC hour>, "playlists": page}`;
- categories: "Top Lists" followed by one category per catalog genre, `{"categories": page
  of {href, icons, id, name}}`.
Development Mode closes them as Spotify did (ref §4): featured playlists 404 `Service not
found` (Nov 2024), new releases and categories 403 `Forbidden` (Feb/Mar 2026).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from echostats_synthetic.catalog import Catalog
from echostats_synthetic.ids import stable_id

from .auth import Auth, State
from .modes import closed_in_development
from .objects import simplified_album
from .paging import offset_page
from .playlist_store import SPOTIFY_OWNER, SimPlaylist
from .playlists import simplified_playlist
from .urls import api_base

router = APIRouter(prefix="/v1", tags=["browse"])

NEW_RELEASES_TOTAL = 100
FEATURED_COUNT = 12
FEATURED_SIZE = 50

LimitQuery = Annotated[int, Query(ge=1, le=50)]
OffsetQuery = Annotated[int, Query(ge=0, le=100_000)]


# Derived lists per catalog (catalogs are immutable, so these never go stale).
_CACHE: dict[tuple[str, int, int], Any] = {}


def _catalog_key(catalog: Catalog) -> tuple[int, int]:
    # Catalogs are immutable and fully determined by seed and size, so this keys caches.
    return catalog.seed, len(catalog.tracks)


def new_release_ids(catalog: Catalog) -> tuple[str, ...]:
    """The catalog's newest albums, newest first (ties by id, so the order is stable)."""
    key = ("new-releases", *_catalog_key(catalog))
    if key not in _CACHE:
        ordered = sorted(
            catalog.albums.values(), key=lambda a: (a.release_date, a.id), reverse=True
        )
        _CACHE[key] = tuple(a.id for a in ordered[:NEW_RELEASES_TOTAL])
    return _CACHE[key]


def featured_playlists(catalog: Catalog) -> tuple[SimPlaylist, ...]:
    """Spotify's editorial playlists: one per leading genre, most popular tracks first."""
    key = ("featured", *_catalog_key(catalog))
    if key in _CACHE:
        return _CACHE[key]
    made = []
    genres = catalog.genres[:FEATURED_COUNT]
    for genre in genres:
        tracks = [
            t for t in catalog.tracks.values() if genre in catalog.artists[t.artist_ids[0]].genres
        ]
        tracks.sort(key=lambda t: (-t.popularity, t.id))
        made.append(
            SimPlaylist(
                id="37i9dQZF1DX" + stable_id("featured", genre, length=11),
                name=f"{genre.title()} Essentials",
                owner_id=SPOTIFY_OWNER[0],
                owner_display_name=SPOTIFY_OWNER[1],
                description=f"The essential {genre} tracks right now.",
                track_ids=tuple(t.id for t in tracks[:FEATURED_SIZE]),
            )
        )
    _CACHE[key] = tuple(made)
    return _CACHE[key]


def featured_playlist(catalog: Catalog, playlist_id: str) -> SimPlaylist | None:
    """An editorial playlist by id (they are playable contexts too)."""
    return next((p for p in featured_playlists(catalog) if p.id == playlist_id), None)


def category_id(genre: str) -> str:
    """Spotify-style category ids are lower-case words (`toplists`, `hiphop`)."""
    return re.sub(r"[^a-z0-9]", "", genre.lower()) or "misc"


def categories(catalog: Catalog) -> list[tuple[str, str]]:
    """(id, name) of every category, "Top Lists" first."""
    return [("toplists", "Top Lists"), *((category_id(g), g.title()) for g in catalog.genres)]


def greeting(hour: int) -> str:
    """The featured-playlists message for an hour of the day."""
    if hour < 12:
        return "Good morning"
    if hour < 18:
        return "Good afternoon"
    return "Good evening"


@router.get("/browse/new-releases", dependencies=[Depends(closed_in_development(403))])
async def get_new_releases(
    request: Request, ctx: Auth, state: State, limit: LimitQuery = 20, offset: OffsetQuery = 0
) -> dict[str, Any]:
    """`{"albums": <offset page of simplified albums>}`, newest first."""
    ids = new_release_ids(state.catalog)
    base = api_base(request)
    items = [
        simplified_album(state.catalog.albums[a], state.catalog, base, state.mode)
        for a in ids[offset : offset + limit]
    ]
    return {"albums": offset_page(request, items, total=len(ids), limit=limit, offset=offset)}


@router.get("/browse/featured-playlists", dependencies=[Depends(closed_in_development(404))])
async def get_featured_playlists(
    request: Request, ctx: Auth, state: State, limit: LimitQuery = 20, offset: OffsetQuery = 0
) -> dict[str, Any]:
    """`{"message", "playlists": <offset page of simplified playlists>}`."""
    playlists = featured_playlists(state.catalog)
    base = api_base(request)
    items = [simplified_playlist(p, base, state.mode) for p in playlists[offset : offset + limit]]
    hour = datetime.fromtimestamp(state.clock.now(), UTC).hour
    return {
        "message": greeting(hour),
        "playlists": offset_page(request, items, total=len(playlists), limit=limit, offset=offset),
    }


@router.get("/browse/categories", dependencies=[Depends(closed_in_development(403))])
async def get_categories(
    request: Request, ctx: Auth, state: State, limit: LimitQuery = 20, offset: OffsetQuery = 0
) -> dict[str, Any]:
    """`{"categories": <offset page of {href, icons, id, name}>}`."""
    found = categories(state.catalog)
    base = api_base(request)
    items = [
        {
            "href": f"{base}/v1/browse/categories/{cid}",
            "icons": [
                {
                    "height": 274,
                    "url": f"https://t.scdn.co/media/{stable_id('category', cid, length=32)}.jpg",
                    "width": 274,
                }
            ],
            "id": cid,
            "name": name,
        }
        for cid, name in found[offset : offset + limit]
    ]
    return {"categories": offset_page(request, items, total=len(found), limit=limit, offset=offset)}
