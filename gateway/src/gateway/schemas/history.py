"""Response models of /api/v1/history."""

from __future__ import annotations

from pydantic import BaseModel


class HistoryTrack(BaseModel):
    spotify_id: str
    name: str
    artist_name: str
    album_name: str
    album_image_url: str | None
    duration_ms: int


class HistoryItem(BaseModel):
    id: str
    user_id: str
    track: HistoryTrack
    played_at: str
    ms_played: int
    source: str
    context_type: str | None
    context_uri: str | None


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    total: int
    page: int
    limit: int
    pages: int
