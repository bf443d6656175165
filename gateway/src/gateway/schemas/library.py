"""Response models of /api/v1/library."""

from __future__ import annotations

from pydantic import BaseModel


class FollowedArtistOut(BaseModel):
    id: str
    name: str
    image: str | None
    # None when Spotify no longer sends it (development-mode apps).
    followers: int | None
    genres: list[str]


class FollowedArtistsOut(BaseModel):
    items: list[FollowedArtistOut]
    total: int


class SavedAlbumOut(BaseModel):
    id: str
    name: str
    artists: str
    image: str | None
    release_date: str
    total_tracks: int
    added_at: str


class SavedAlbumsOut(BaseModel):
    items: list[SavedAlbumOut]
    total: int
    limit: int
    offset: int
