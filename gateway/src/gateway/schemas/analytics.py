"""Response models of /api/v1/analytics."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

PeriodName = Literal["week", "month", "quarter", "year", "all_time"]


class TopArtistEntry(BaseModel):
    name: str
    play_count: int
    spotify_id: str | None
    image_url: str | None
    rank: int


class TopEntry(BaseModel):
    name: str
    play_count: int
    spotify_id: str | None
    rank: int


class TopGenreEntry(BaseModel):
    name: str
    play_count: int
    rank: int


class HourlyCount(BaseModel):
    hour: int
    plays: int


class DailyCount(BaseModel):
    day: str
    plays: int


class AudioFeatureAverages(BaseModel):
    danceability: float | None
    energy: float | None
    valence: float | None
    acousticness: float | None
    instrumentalness: float | None
    liveness: float | None
    speechiness: float | None
    tempo: float | None


class OverviewOut(BaseModel):
    period: PeriodName
    total_tracks_played: int
    total_ms_played: int
    total_hours: float
    unique_tracks: int
    unique_artists: int
    unique_albums: int
    unique_genres: int
    listening_streak_days: int
    top_artists: list[TopArtistEntry]
    top_tracks: list[TopEntry]
    top_albums: list[TopEntry]
    top_genres: list[TopGenreEntry]
    hourly_distribution: list[HourlyCount]
    daily_distribution: list[DailyCount]
    avg_audio_features: AudioFeatureAverages | None
    computed_at: str


class RefreshOut(BaseModel):
    status: Literal["refreshed"]
    periods: list[PeriodName]
    computed_at: str


class TrendPointOut(BaseModel):
    label: str
    plays: int
    ms: int
    hours: float


class TrendOut(BaseModel):
    period: PeriodName
    granularity: str
    points: list[TrendPointOut]


class RollupStatusOut(BaseModel):
    last_date: str | None
    total_days: int
    complete: bool
    coverage: float


class RollupBuildOut(BaseModel):
    status: Literal["started", "already_running"]
    job_id: str
