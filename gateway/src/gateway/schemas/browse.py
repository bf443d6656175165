"""Response models of /api/v1/browse.

When Spotify has closed an endpoint to this app (development mode, or withdrawn for
everyone), the answer is 200 with empty `items` and a `reason` saying why; `reason` is
absent otherwise, so normal answers are exactly the documented shape.
"""

from __future__ import annotations

from pydantic import BaseModel


class NewReleaseOut(BaseModel):
    id: str
    name: str
    artists: str
    image: str | None
    release_date: str
    total_tracks: int
    type: str


class NewReleasesOut(BaseModel):
    items: list[NewReleaseOut]
    reason: str | None = None


class FeaturedPlaylistOut(BaseModel):
    id: str
    name: str
    description: str
    image: str | None
    tracks_total: int
    owner: str


class FeaturedPlaylistsOut(BaseModel):
    message: str | None
    items: list[FeaturedPlaylistOut]
    reason: str | None = None


class CategoryOut(BaseModel):
    id: str
    name: str
    image: str | None


class CategoriesOut(BaseModel):
    items: list[CategoryOut]
    reason: str | None = None
