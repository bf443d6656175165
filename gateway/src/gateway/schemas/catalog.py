"""Response models of /api/v1/tracks/{track_id}, /api/v1/artists/{artist_id}, /api/v1/playlists.

Fields Spotify no longer sends to the app (e.g. popularity in development mode) are null,
never invented; `audio_features` is null when the app could not get them.
"""

from __future__ import annotations

from pydantic import BaseModel


class ArtistRef(BaseModel):
    spotify_id: str
    name: str


class TrackAlbum(BaseModel):
    spotify_id: str
    name: str
    image_url: str | None
    release_date: str | None


class TrackAudioFeatures(BaseModel):
    danceability: float | None
    energy: float | None
    valence: float | None
    acousticness: float | None
    instrumentalness: float | None
    liveness: float | None
    speechiness: float | None
    tempo: float | None
    key: int | None
    mode: int | None
    time_signature: int | None


class TrackDetail(BaseModel):
    id: str
    spotify_id: str
    name: str
    artists: list[ArtistRef]
    album: TrackAlbum | None
    duration_ms: int | None
    popularity: int | None
    explicit: bool | None
    external_url: str
    audio_features: TrackAudioFeatures | None


class ArtistDetail(BaseModel):
    id: str
    spotify_id: str
    name: str
    image_url: str | None
    genres: list[str]
    popularity: int | None
    followers: int | None
    external_url: str


class PlaylistItem(BaseModel):
    id: str
    user_id: str
    spotify_id: str
    name: str
    description: str | None
    image_url: str | None
    tracks_total: int
    owner: str | None
    public: bool | None
    collaborative: bool
    external_url: str


class PlaylistPage(BaseModel):
    items: list[PlaylistItem]
    total: int
    page: int
    limit: int
