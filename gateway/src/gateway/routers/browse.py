"""/api/v1/browse: Spotify's new releases, featured playlists and categories (player-proxy).

Endpoints Spotify closed to this app answer 200 with empty `items` and a `reason`
(see schemas/browse.py), never an error: a dashboard shows an empty shelf with a note.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from echostats.player_proxy.v1 import player_proxy_service_pb2 as pb
from gateway.dependencies import Clients, CurrentUser
from gateway.schemas.browse import (
    CategoriesOut,
    CategoryOut,
    FeaturedPlaylistOut,
    FeaturedPlaylistsOut,
    NewReleaseOut,
    NewReleasesOut,
)

router = APIRouter(
    prefix="/api/v1/browse",
    tags=["browse"],
    responses={502: {"description": "Spotify failed (5xx after bounded retries)"}},
)


def _limit(default: int) -> object:
    return Query(ge=1, le=50, description=f"Number of results (1-50, default {default})")


def _image(message: object) -> str | None:
    return message.image if message.HasField("image") else None  # type: ignore[attr-defined]


@router.get("/new-releases", response_model=NewReleasesOut, response_model_exclude_unset=True)
async def new_releases(
    user: CurrentUser,
    clients: Clients,
    limit: Annotated[int, _limit(20)] = 20,
) -> NewReleasesOut:
    """New album releases."""
    response = await clients.player_proxy.ListNewReleases(
        pb.ListNewReleasesRequest(user_id=user.id, limit=limit)
    )
    items = [
        NewReleaseOut(
            id=a.id,
            name=a.name,
            artists=a.artists,
            image=_image(a),
            release_date=a.release_date,
            total_tracks=a.total_tracks,
            type=a.type,
        )
        for a in response.items
    ]
    if response.HasField("unavailable_reason"):
        return NewReleasesOut(items=items, reason=response.unavailable_reason)
    return NewReleasesOut(items=items)


@router.get(
    "/featured-playlists",
    response_model=FeaturedPlaylistsOut,
    response_model_exclude_unset=True,
)
async def featured_playlists(
    user: CurrentUser,
    clients: Clients,
    limit: Annotated[int, _limit(20)] = 20,
) -> FeaturedPlaylistsOut:
    """Spotify's featured playlists and their greeting."""
    response = await clients.player_proxy.ListFeaturedPlaylists(
        pb.ListFeaturedPlaylistsRequest(user_id=user.id, limit=limit)
    )
    items = [
        FeaturedPlaylistOut(
            id=p.id,
            name=p.name,
            description=p.description,
            image=_image(p),
            tracks_total=p.tracks_total,
            owner=p.owner,
        )
        for p in response.items
    ]
    if response.HasField("unavailable_reason"):
        return FeaturedPlaylistsOut(message=None, items=items, reason=response.unavailable_reason)
    return FeaturedPlaylistsOut(message=response.message, items=items)


@router.get("/categories", response_model=CategoriesOut, response_model_exclude_unset=True)
async def categories(
    user: CurrentUser,
    clients: Clients,
    limit: Annotated[int, _limit(50)] = 50,
) -> CategoriesOut:
    """Spotify's browse categories."""
    response = await clients.player_proxy.ListCategories(
        pb.ListCategoriesRequest(user_id=user.id, limit=limit)
    )
    items = [CategoryOut(id=c.id, name=c.name, image=_image(c)) for c in response.items]
    if response.HasField("unavailable_reason"):
        return CategoriesOut(items=items, reason=response.unavailable_reason)
    return CategoriesOut(items=items)
