"""Response models of /api/v1/tracks/top, /artists/top, /albums/top, /genres/distribution and
/api/v1/recommendations."""

from __future__ import annotations

from pydantic import BaseModel

from gateway.schemas.analytics import PeriodName


class TrackArtistOut(BaseModel):
    spotify_id: str | None
    name: str


class TrackAlbumOut(BaseModel):
    spotify_id: str | None
    name: str
    image_url: str | None


class TrackAudioFeaturesOut(BaseModel):
    danceability: float | None
    energy: float | None
    valence: float | None
    tempo: float | None


class TopTrackOut(BaseModel):
    id: str | None
    spotify_id: str | None
    name: str
    artists: list[TrackArtistOut]
    album: TrackAlbumOut | None
    duration_ms: int | None
    popularity: int | None
    external_url: str | None
    audio_features: TrackAudioFeaturesOut | None


class TopTracksOut(BaseModel):
    items: list[TopTrackOut]
    period: PeriodName
    total: int


class TopArtistOut(BaseModel):
    id: str | None
    spotify_id: str | None
    name: str
    image_url: str | None
    genres: list[str]
    popularity: int | None
    followers: int | None
    external_url: str | None


class TopArtistsOut(BaseModel):
    items: list[TopArtistOut]
    period: PeriodName
    total: int


class TopAlbumOut(BaseModel):
    id: str | None
    spotify_id: str | None
    name: str
    artists: list[str]
    image_url: str | None
    release_date: str | None
    total_tracks: int | None
    type: str | None
    external_url: str | None


class TopAlbumsOut(BaseModel):
    items: list[TopAlbumOut]
    period: PeriodName
    total: int


class GenreShareOut(BaseModel):
    name: str
    play_count: int
    percentage: float


class GenreDistributionOut(BaseModel):
    genres: list[GenreShareOut]
    period: PeriodName
    total_genres: int


class RecommendationFeaturesOut(BaseModel):
    danceability: float | None
    energy: float | None
    valence: float | None


class RecommendationOut(BaseModel):
    id: str
    name: str
    artists: list[str]
    artist: str | None
    album: str | None
    album_image: str | None
    duration_ms: int | None
    popularity: int | None
    audio_features: RecommendationFeaturesOut | None
    external_url: str | None


class RecommendationsOut(BaseModel):
    items: list[RecommendationOut]
    total: int
    seed_info: dict[str, str]
