"""/api/v1/tracks/top, /artists/top, /albums/top, /genres/distribution, /recommendations.

All served by the analytics service from the user's stored snapshots, hydrated from the
catalog. Registered before any `/tracks/{track_id}`-style route so `top` is not taken for
an id.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from echostats.analytics.v1 import analytics_service_pb2 as pb
from echostats.catalog.v1 import catalog_service_pb2 as catalog_pb
from gateway.dependencies import Clients, CurrentUser
from gateway.routers.analytics import PERIODS, PeriodQuery, optional
from gateway.schemas.top_lists import (
    GenreDistributionOut,
    GenreShareOut,
    RecommendationFeaturesOut,
    RecommendationOut,
    RecommendationsOut,
    TopAlbumOut,
    TopAlbumsOut,
    TopArtistOut,
    TopArtistsOut,
    TopTrackOut,
    TopTracksOut,
    TrackAlbumOut,
    TrackArtistOut,
    TrackAudioFeaturesOut,
)

router = APIRouter(prefix="/api/v1", tags=["top-lists"])

TopLimit = Annotated[int, Query(ge=1, le=100, description="Number of items (1-100)")]
SeedType = Literal["artists", "tracks", "genres", "mixed"]


def _text(value: str) -> str | None:
    return value or None


def track_out(track: catalog_pb.Track) -> TopTrackOut:
    """A catalog track in the top-tracks shape."""
    album = None
    if track.HasField("album"):
        album = TrackAlbumOut(
            spotify_id=_text(track.album.spotify_id),
            name=track.album.name,
            image_url=optional(track.album, "image_url"),  # type: ignore[arg-type]
        )
    features = None
    if track.HasField("audio_features"):
        source = track.audio_features
        features = TrackAudioFeaturesOut(
            danceability=optional(source, "danceability"),  # type: ignore[arg-type]
            energy=optional(source, "energy"),  # type: ignore[arg-type]
            valence=optional(source, "valence"),  # type: ignore[arg-type]
            tempo=optional(source, "tempo"),  # type: ignore[arg-type]
        )
    return TopTrackOut(
        id=_text(track.id),
        spotify_id=_text(track.spotify_id),
        name=track.name,
        artists=[
            TrackArtistOut(spotify_id=_text(a.spotify_id), name=a.name) for a in track.artists
        ],
        album=album,
        duration_ms=optional(track, "duration_ms"),  # type: ignore[arg-type]
        popularity=optional(track, "popularity"),  # type: ignore[arg-type]
        external_url=_text(track.external_url),
        audio_features=features,
    )


@router.get("/tracks/top", response_model=TopTracksOut, tags=["tracks"])
async def top_tracks(
    user: CurrentUser, clients: Clients, period: PeriodQuery = "all_time", limit: TopLimit = 50
) -> TopTracksOut:
    """The user's top tracks of the period by play count."""
    response = await clients.analytics.ListTopTracks(
        pb.TopItemsRequest(user_id=user.id, period=PERIODS[period], limit=limit)
    )
    return TopTracksOut(
        items=[track_out(track) for track in response.tracks], period=period, total=response.total
    )


@router.get("/artists/top", response_model=TopArtistsOut, tags=["artists"])
async def top_artists(
    user: CurrentUser, clients: Clients, period: PeriodQuery = "all_time", limit: TopLimit = 50
) -> TopArtistsOut:
    """The user's top artists of the period by play count."""
    response = await clients.analytics.ListTopArtists(
        pb.TopItemsRequest(user_id=user.id, period=PERIODS[period], limit=limit)
    )
    return TopArtistsOut(
        items=[
            TopArtistOut(
                id=_text(artist.id),
                spotify_id=_text(artist.spotify_id),
                name=artist.name,
                image_url=optional(artist, "image_url"),  # type: ignore[arg-type]
                genres=list(artist.genres),
                popularity=optional(artist, "popularity"),  # type: ignore[arg-type]
                followers=optional(artist, "followers"),  # type: ignore[arg-type]
                external_url=_text(artist.external_url),
            )
            for artist in response.artists
        ],
        period=period,
        total=response.total,
    )


@router.get("/albums/top", response_model=TopAlbumsOut, tags=["albums"])
async def top_albums(
    user: CurrentUser, clients: Clients, period: PeriodQuery = "all_time", limit: TopLimit = 50
) -> TopAlbumsOut:
    """The user's top albums of the period by play count."""
    response = await clients.analytics.ListTopAlbums(
        pb.TopItemsRequest(user_id=user.id, period=PERIODS[period], limit=limit)
    )
    return TopAlbumsOut(
        items=[
            TopAlbumOut(
                id=_text(album.id),
                spotify_id=_text(album.spotify_id),
                name=album.name,
                artists=[artist.name for artist in album.artists],
                image_url=optional(album, "image_url"),  # type: ignore[arg-type]
                release_date=optional(album, "release_date"),  # type: ignore[arg-type]
                total_tracks=optional(album, "total_tracks"),  # type: ignore[arg-type]
                type=optional(album, "album_type"),  # type: ignore[arg-type]
                external_url=_text(album.external_url),
            )
            for album in response.albums
        ],
        period=period,
        total=response.total,
    )


@router.get("/genres/distribution", response_model=GenreDistributionOut, tags=["genres"])
async def genre_distribution(
    user: CurrentUser, clients: Clients, period: PeriodQuery = "all_time"
) -> GenreDistributionOut:
    """Plays per genre (from the artists' genres) with percentages summing to 100."""
    response = await clients.analytics.GetGenreDistribution(
        pb.PeriodRequest(user_id=user.id, period=PERIODS[period])
    )
    return GenreDistributionOut(
        genres=[
            GenreShareOut(name=g.name, play_count=g.play_count, percentage=g.percentage)
            for g in response.genres
        ],
        period=period,
        total_genres=response.total_genres,
    )


@router.get("/recommendations", response_model=RecommendationsOut, tags=["recommendations"])
async def recommendations(
    user: CurrentUser,
    clients: Clients,
    limit: Annotated[int, Query(ge=1, le=50, description="Number of recommendations (1-50)")] = 20,
    seed_type: Annotated[
        SeedType, Query(description="One of artists, tracks, genres, mixed")
    ] = "mixed",
) -> RecommendationsOut | JSONResponse:
    """Tracks recommended from the user's analytics snapshot."""
    response = await clients.analytics.GetRecommendations(
        pb.GetRecommendationsRequest(user_id=user.id, limit=limit, seed_type=seed_type)
    )
    if not response.seed_info:
        # No snapshot with plays: the documented empty answer, exactly.
        return JSONResponse({"items": [], "seed_info": {}})
    items = []
    for track in response.tracks:
        features = None
        if track.HasField("audio_features"):
            source = track.audio_features
            features = RecommendationFeaturesOut(
                danceability=optional(source, "danceability"),  # type: ignore[arg-type]
                energy=optional(source, "energy"),  # type: ignore[arg-type]
                valence=optional(source, "valence"),  # type: ignore[arg-type]
            )
        names = [artist.name for artist in track.artists]
        items.append(
            RecommendationOut(
                id=track.spotify_id or track.id,
                name=track.name,
                artists=names,
                artist=names[0] if names else None,
                album=track.album.name if track.HasField("album") else None,
                album_image=(
                    optional(track.album, "image_url") if track.HasField("album") else None  # type: ignore[arg-type]
                ),
                duration_ms=optional(track, "duration_ms"),  # type: ignore[arg-type]
                popularity=optional(track, "popularity"),  # type: ignore[arg-type]
                audio_features=features,
                external_url=_text(track.external_url),
            )
        )
    return RecommendationsOut(items=items, total=len(items), seed_info=dict(response.seed_info))
