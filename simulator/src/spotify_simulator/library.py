"""`GET /v1/me/following?type=artist` and `GET /v1/me/albums`: the user's library (ref §2, §3).

Both are derived from the user's synthetic taste, so they are the same on every start and
fit the user's listening:
- followed artists: the user's favourite artists, 40 to 160 of them (a count stable per
  user), in taste order. A cursor page (`{"artists": {href, items, limit, next, cursors:
  {after}, total}}`); `after` is the last artist id seen, `limit` 1-50 (default 20), `type`
  must be `artist` (else 400 `Invalid type`). Scope `user-follow-read`.
- saved albums: albums by the user's favourite artists, 30 to 120 of them, newest save
  first, one save every ~3 days back from 2026-01-01. An offset page of
  `{added_at, album}` with full album objects, `limit` 1-50 (default 20), `offset`.
  Scope `user-library-read`.
Development Mode strips artist `followers`/`popularity` and album markets, as elsewhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from echostats_synthetic.catalog import Album, Catalog
from echostats_synthetic.history import ListenerTaste
from echostats_synthetic.ids import stable_seed

from .auth import AuthContext, State, require_scopes
from .config import Mode
from .errors import WebApiError
from .objects import _links, artist_object, simplified_album, simplified_artist
from .paging import offset_page
from .urls import api_base, api_url

router = APIRouter(prefix="/v1", tags=["library"])

FollowReader = Annotated[AuthContext, Depends(require_scopes("user-follow-read"))]
LibraryReader = Annotated[AuthContext, Depends(require_scopes("user-library-read"))]

SAVES_END = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


def followed_artist_ids(taste: ListenerTaste, user_id: str) -> list[str]:
    """The artists the user follows, in the order Spotify lists them."""
    count = 40 + stable_seed("following", user_id) % 121
    return taste.favourite_artist_ids(count)


def saved_album_ids(taste: ListenerTaste, user_id: str) -> list[str]:
    """The albums the user saved, newest save first."""
    wanted = 30 + stable_seed("saved-albums", user_id) % 91
    saved: dict[str, None] = {}
    for artist_id in taste.artist_ids:
        for album_id in taste.albums_of(artist_id):
            saved[album_id] = None
            if len(saved) >= wanted:
                return list(saved)
    return list(saved)


def saved_at(user_id: str, position: int) -> str:
    """When the album at `position` (0 = newest) was saved, ISO 8601 with Z."""
    hours = sum(60 + stable_seed("saved-at", user_id, str(i)) % 24 for i in range(position + 1))
    return (SAVES_END - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def full_album(album: Album, catalog: Catalog, base: str, mode: Mode) -> dict[str, Any]:
    """The full album object: the simplified one plus tracks, label, genres, ids."""
    body = simplified_album(album, catalog, base, mode)
    tracks = [
        {
            **_links("track", t, base),
            "artists": [simplified_artist(catalog.artists[a], base) for a in track.artist_ids],
            "disc_number": track.disc_number,
            "duration_ms": track.duration_ms,
            "explicit": track.explicit,
            "is_local": False,
            "name": track.name,
            "track_number": track.track_number,
        }
        for t in album.track_ids
        for track in (catalog.tracks[t],)
    ]
    body.update(
        {
            "copyrights": [{"text": f"(P) {album.release_date[:4]} {album.label}", "type": "P"}],
            "external_ids": {"upc": album.upc},
            "genres": [],
            "label": album.label,
            "popularity": album.popularity,
            "tracks": {
                "href": f"{base}/v1/albums/{album.id}/tracks?offset=0&limit=50",
                "items": tracks[:50],
                "limit": 50,
                "next": None,
                "offset": 0,
                "previous": None,
                "total": len(tracks),
            },
        }
    )
    if mode is Mode.DEVELOPMENT:
        body.pop("label", None)
        body.pop("popularity", None)
    return body


@router.get("/me/following")
async def get_followed_artists(
    request: Request,
    ctx: FollowReader,
    state: State,
    type: Annotated[str, Query()],
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> dict[str, Any]:
    """A cursor page of the artists the user follows."""
    if type != "artist":
        raise WebApiError(400, "Invalid type")
    followed = followed_artist_ids(state.plays.taste(ctx.user.id), ctx.user.id)
    start = 0
    if after is not None:
        if after not in followed:
            raise WebApiError(400, "Invalid after")
        start = followed.index(after) + 1
    page = followed[start : start + limit]
    base = api_base(request)
    items = [artist_object(state.catalog.artists[a], base, state.mode) for a in page]
    last = page[-1] if page else None
    more = start + limit < len(followed)
    params: dict[str, object] = {"type": "artist", "limit": limit}
    return {
        "artists": {
            "href": api_url(request, request.url.path, {**params, "after": after}),
            "items": items,
            "limit": limit,
            "next": api_url(request, request.url.path, {**params, "after": last}) if more else None,
            "cursors": {"after": last if more else None},
            "total": len(followed),
        }
    }


@router.get("/me/albums")
async def get_saved_albums(
    request: Request,
    ctx: LibraryReader,
    state: State,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    market: Annotated[str | None, Query(max_length=8)] = None,
) -> dict[str, Any]:
    """An offset page of `{added_at, album}`, newest save first."""
    saved = saved_album_ids(state.plays.taste(ctx.user.id), ctx.user.id)
    base = api_base(request)
    items = [
        {
            "added_at": saved_at(ctx.user.id, offset + i),
            "album": full_album(state.catalog.albums[a], state.catalog, base, state.mode),
        }
        for i, a in enumerate(saved[offset : offset + limit])
    ]
    return offset_page(request, items, total=len(saved), limit=limit, offset=offset)
