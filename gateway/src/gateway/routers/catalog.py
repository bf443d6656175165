"""/api/v1/tracks/{track_id}, /api/v1/artists/{artist_id} and /api/v1/playlists (catalog).

Track and artist lookups need no sign-in. With a valid session the user's id goes along,
so catalog may fetch a miss from Spotify with that user's token; without one catalog
answers from what it stores. Unknown ids are 404 `Track not found` / `Artist not found`.
The top lists (/tracks/top, /artists/top) live in analytics' router, included first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from echostats.catalog.v1 import catalog_service_pb2 as catalog_pb
from gateway.dependencies import Clients, CurrentUser, SessionToken, resolve_session
from gateway.paging import Page
from gateway.schemas.catalog import (
    ArtistDetail,
    ArtistRef,
    PlaylistItem,
    PlaylistPage,
    TrackAlbum,
    TrackAudioFeatures,
    TrackDetail,
)

router = APIRouter(tags=["catalog"])

_FEATURES = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "tempo",
    "key",
    "mode",
    "time_signature",
)


def _opt(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def track_detail(track: catalog_pb.Track) -> TrackDetail:
    """The REST shape of a catalog track."""
    album = None
    if track.HasField("album"):
        album = TrackAlbum(
            spotify_id=track.album.spotify_id,
            name=track.album.name,
            image_url=_opt(track.album, "image_url"),
            release_date=_opt(track.album, "release_date"),
        )
    features = None
    if track.HasField("audio_features"):
        features = TrackAudioFeatures(
            **{name: _opt(track.audio_features, name) for name in _FEATURES}
        )
    return TrackDetail(
        id=track.id,
        spotify_id=track.spotify_id,
        name=track.name,
        artists=[ArtistRef(spotify_id=a.spotify_id, name=a.name) for a in track.artists],
        album=album,
        duration_ms=_opt(track, "duration_ms"),
        popularity=_opt(track, "popularity"),
        explicit=_opt(track, "explicit"),
        external_url=track.external_url,
        audio_features=features,
    )


def artist_detail(artist: catalog_pb.Artist) -> ArtistDetail:
    """The REST shape of a catalog artist."""
    return ArtistDetail(
        id=artist.id,
        spotify_id=artist.spotify_id,
        name=artist.name,
        image_url=_opt(artist, "image_url"),
        genres=list(artist.genres),
        popularity=_opt(artist, "popularity"),
        followers=_opt(artist, "followers"),
        external_url=artist.external_url,
    )


def playlist_item(playlist: catalog_pb.Playlist) -> PlaylistItem:
    """The REST shape of a synced playlist."""
    return PlaylistItem(
        id=playlist.id,
        user_id=playlist.user_id,
        spotify_id=playlist.spotify_id,
        name=playlist.name,
        description=_opt(playlist, "description"),
        image_url=_opt(playlist, "image_url"),
        tracks_total=playlist.tracks_total,
        owner=_opt(playlist, "owner"),
        public=_opt(playlist, "public"),
        collaborative=playlist.collaborative,
        external_url=playlist.external_url,
    )


@router.get(
    "/api/v1/tracks/{track_id}",
    response_model=TrackDetail,
    responses={404: {"description": '`{"detail": "Track not found"}`'}},
)
async def get_track(track_id: str, token: SessionToken, clients: Clients) -> TrackDetail:
    """One track by Spotify id (no auth needed; 404 `Track not found`)."""
    request = catalog_pb.GetTrackRequest(spotify_id=track_id)
    user = await resolve_session(token, clients)
    if user is not None:
        request.user_id = user.id
    return track_detail(await clients.catalog.GetTrack(request))


@router.get(
    "/api/v1/artists/{artist_id}",
    response_model=ArtistDetail,
    responses={404: {"description": '`{"detail": "Artist not found"}`'}},
)
async def get_artist(artist_id: str, token: SessionToken, clients: Clients) -> ArtistDetail:
    """One artist by Spotify id (no auth needed; 404 `Artist not found`)."""
    request = catalog_pb.GetArtistRequest(spotify_id=artist_id)
    user = await resolve_session(token, clients)
    if user is not None:
        request.user_id = user.id
    return artist_detail(await clients.catalog.GetArtist(request))


@router.get("/api/v1/playlists", response_model=PlaylistPage)
async def list_playlists(
    user: CurrentUser,
    clients: Clients,
    page: Page = 1,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1-100)")] = 50,
) -> PlaylistPage:
    """The signed-in user's synced playlists, in library order."""
    response = await clients.catalog.ListPlaylists(
        catalog_pb.ListPlaylistsRequest(user_id=user.id, page=page, page_size=limit)
    )
    return PlaylistPage(
        items=[playlist_item(p) for p in response.playlists],
        total=response.total,
        page=page,
        limit=limit,
    )
