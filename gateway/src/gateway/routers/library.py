"""/api/v1/library: the user's followed artists and saved albums on Spotify (player-proxy)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from echostats.player_proxy.v1 import player_proxy_service_pb2 as pb
from gateway.dependencies import Clients, CurrentUser
from gateway.schemas.library import (
    FollowedArtistOut,
    FollowedArtistsOut,
    SavedAlbumOut,
    SavedAlbumsOut,
)

router = APIRouter(
    prefix="/api/v1/library",
    tags=["library"],
    responses={502: {"description": "Spotify failed (5xx after bounded retries)"}},
)

Limit = Annotated[int, Query(ge=1, le=50, description="Number of items (1-50)")]


@router.get("/followed-artists", response_model=FollowedArtistsOut)
async def followed_artists(
    user: CurrentUser, clients: Clients, limit: Limit = 50
) -> FollowedArtistsOut:
    """Artists the user follows (Spotify's cursor paging is followed underneath)."""
    response = await clients.player_proxy.ListFollowedArtists(
        pb.ListFollowedArtistsRequest(user_id=user.id, limit=limit)
    )
    return FollowedArtistsOut(
        items=[
            FollowedArtistOut(
                id=a.id,
                name=a.name,
                image=a.image if a.HasField("image") else None,
                followers=a.followers if a.HasField("followers") else None,
                genres=list(a.genres),
            )
            for a in response.items
        ],
        total=response.total,
    )


@router.get("/saved-albums", response_model=SavedAlbumsOut)
async def saved_albums(
    user: CurrentUser,
    clients: Clients,
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0, le=100_000, description="Pagination offset")] = 0,
) -> SavedAlbumsOut:
    """Albums saved to the user's library, newest save first."""
    response = await clients.player_proxy.ListSavedAlbums(
        pb.ListSavedAlbumsRequest(user_id=user.id, limit=limit, offset=offset)
    )
    return SavedAlbumsOut(
        items=[
            SavedAlbumOut(
                id=a.id,
                name=a.name,
                artists=a.artists,
                image=a.image if a.HasField("image") else None,
                release_date=a.release_date,
                total_tracks=a.total_tracks,
                added_at=a.added_at,
            )
            for a in response.items
        ],
        total=response.total,
        limit=limit,
        offset=offset,
    )
