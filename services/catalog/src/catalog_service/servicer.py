"""CatalogService gRPC servicer: protobuf <-> use cases, nothing else."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import grpc

from catalog_service.catalog import CatalogLookups
from catalog_service.enrichment import Enricher, EnrichReport
from catalog_service.models import FEATURE_FLOATS, FEATURE_INTS, SeenTrack
from catalog_service.playlists import PlaylistSync
from catalog_service.plays_consumer import PlaysReader
from catalog_service.recommendations import RecommendationQuery, Recommender
from catalog_service.repository import CatalogRepository, PlaylistRepository
from catalog_service.top_items import TopItemsSync
from echostats.catalog.v1 import catalog_service_pb2 as pb
from echostats.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from echostats_grpc.timestamps import to_timestamp
from echostats_platform.errors import InvalidArgument

MAX_BATCH_IDS = 500
MAX_PAGE_SIZE = 100
COMPLETED, SKIPPED = "completed", "skipped"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 track`, `2 tracks`."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def audio_features_pb(doc: dict[str, Any] | None) -> pb.AudioFeatures | None:
    """The stored features (only those Spotify sent), or None."""
    if not doc:
        return None
    values = {k: doc[k] for k in (*FEATURE_FLOATS, *FEATURE_INTS) if doc.get(k) is not None}
    return pb.AudioFeatures(**values)


def track_pb(doc: dict[str, Any]) -> pb.Track:
    """A stored track as a Track message (absent fields stay unset)."""
    track = pb.Track(
        id=doc.get("doc_id", ""),
        spotify_id=doc["_id"],
        name=doc.get("name", ""),
        artists=[
            pb.ArtistRef(spotify_id=a["spotify_id"], name=a.get("name", ""))
            for a in doc.get("artists", ())
        ],
        external_url=doc.get("external_url") or f"https://open.spotify.com/track/{doc['_id']}",
        enriched=bool(doc.get("enriched")),
    )
    album = doc.get("album")
    if album:
        track.album.CopyFrom(
            pb.AlbumRef(
                spotify_id=album.get("spotify_id", ""),
                name=album.get("name", ""),
                image_url=album.get("image_url"),
                release_date=album.get("release_date"),
            )
        )
    for name in ("duration_ms", "popularity", "explicit"):
        if doc.get(name) is not None:
            setattr(track, name, doc[name])
    features = audio_features_pb(doc.get("audio_features"))
    if features is not None:
        track.audio_features.CopyFrom(features)
    return track


def artist_pb(doc: dict[str, Any]) -> pb.Artist:
    """A stored artist as an Artist message."""
    artist = pb.Artist(
        id=doc.get("doc_id", ""),
        spotify_id=doc["_id"],
        name=doc.get("name", ""),
        genres=doc.get("genres") or [],
        external_url=doc.get("external_url") or f"https://open.spotify.com/artist/{doc['_id']}",
        enriched=bool(doc.get("enriched")),
    )
    for name in ("image_url", "popularity", "followers"):
        if doc.get(name) is not None:
            setattr(artist, name, doc[name])
    return artist


def album_pb(doc: dict[str, Any]) -> pb.Album:
    """A stored album as an Album message."""
    album = pb.Album(
        id=doc.get("doc_id", ""),
        spotify_id=doc["_id"],
        name=doc.get("name", ""),
        artists=[
            pb.ArtistRef(spotify_id=a["spotify_id"], name=a.get("name", ""))
            for a in doc.get("artists", ())
        ],
        external_url=doc.get("external_url") or f"https://open.spotify.com/album/{doc['_id']}",
        enriched=bool(doc.get("enriched")),
    )
    for name in ("image_url", "release_date", "total_tracks", "album_type"):
        if doc.get(name) is not None:
            setattr(album, name, doc[name])
    return album


def playlist_pb(doc: dict[str, Any]) -> pb.Playlist:
    """A stored playlist as a Playlist message."""
    playlist = pb.Playlist(
        id=doc.get("doc_id", ""),
        user_id=doc["user_id"],
        spotify_id=doc["spotify_id"],
        name=doc.get("name", ""),
        tracks_total=int(doc.get("tracks_total") or 0),
        collaborative=bool(doc.get("collaborative")),
        external_url=doc.get("external_url", ""),
        synced_at=to_timestamp(doc["synced_at"]),
    )
    for name in ("description", "image_url", "owner", "public"):
        if doc.get(name) is not None:
            setattr(playlist, name, doc[name])
    return playlist


def enrich_detail(report: EnrichReport, *, noted_new: int) -> str:
    """A readable account of an enrichment run for the job step."""
    parts = [
        f"{plural(noted_new, 'new track')} noted",
        f"enriched {plural(report.tracks, 'track')}, {plural(report.artists, 'artist')}, "
        f"{plural(report.albums, 'album')}",
        f"audio features for {plural(report.features, 'track')}",
        plural(report.calls, "Spotify call"),
    ]
    if "audio-features" in report.closed:
        parts.append("audio features are not available to this app")
    if report.missing:
        parts.append(f"{plural(report.missing, 'id')} unknown to Spotify")
    waiting = report.remaining_tracks
    if report.paused_for:
        parts.append(
            f"paused by Spotify's rate limit for {int(report.paused_for)} s; "
            f"{plural(waiting, 'track')} continue in the background"
        )
    elif report.busy:
        parts.append("enrichment already running for this user; it continues in the background")
    elif waiting and report.budget_exhausted:
        parts.append(f"call budget used up; {plural(waiting, 'track')} continue in the background")
    elif waiting:
        parts.append(f"{plural(waiting, 'track')} continue in the background")
    return "; ".join(parts)


def _ids(request: pb.BatchGetRequest) -> list[str]:
    ids = list(dict.fromkeys(i for i in request.spotify_ids if i))
    if len(ids) > MAX_BATCH_IDS:
        raise InvalidArgument(f"at most {MAX_BATCH_IDS} ids per request")
    return ids


def _require_user(user_id: str) -> str:
    if not user_id:
        raise InvalidArgument("user_id is required")
    return user_id


class CatalogServicer(pb_grpc.CatalogServiceServicer):
    """The catalog context's RPCs."""

    def __init__(
        self,
        *,
        catalog: CatalogRepository,
        playlists: PlaylistRepository,
        lookups: CatalogLookups,
        enricher: Enricher,
        plays: PlaysReader,
        playlist_sync: PlaylistSync,
        top_items: TopItemsSync,
        recommender: Recommender,
        step_max_calls: int,
    ) -> None:
        self._catalog = catalog
        self._playlists = playlists
        self._lookups = lookups
        self._enricher = enricher
        self._plays = plays
        self._playlist_sync = playlist_sync
        self._top_items = top_items
        self._recommender = recommender
        self._step_max_calls = step_max_calls

    async def GetTrack(
        self, request: pb.GetTrackRequest, context: grpc.aio.ServicerContext
    ) -> pb.Track:
        user_id = request.user_id if request.HasField("user_id") else None
        return track_pb(await self._lookups.track(request.spotify_id, user_id or None))

    async def GetArtist(
        self, request: pb.GetArtistRequest, context: grpc.aio.ServicerContext
    ) -> pb.Artist:
        user_id = request.user_id if request.HasField("user_id") else None
        return artist_pb(await self._lookups.artist(request.spotify_id, user_id or None))

    async def BatchGetTracks(
        self, request: pb.BatchGetRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetTracksResponse:
        ids = _ids(request)
        found = await self._catalog.get_tracks(ids)
        return pb.BatchGetTracksResponse(tracks=[track_pb(found[i]) for i in ids if i in found])

    async def BatchGetArtists(
        self, request: pb.BatchGetRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetArtistsResponse:
        ids = _ids(request)
        found = await self._catalog.get_artists(ids)
        return pb.BatchGetArtistsResponse(artists=[artist_pb(found[i]) for i in ids if i in found])

    async def BatchGetAlbums(
        self, request: pb.BatchGetRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetAlbumsResponse:
        ids = _ids(request)
        found = await self._catalog.get_albums(ids)
        return pb.BatchGetAlbumsResponse(albums=[album_pb(found[i]) for i in ids if i in found])

    async def GetArtistGenres(
        self, request: pb.BatchGetRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetArtistGenresResponse:
        ids = _ids(request)
        found = await self._catalog.get_artists(ids)
        return pb.GetArtistGenresResponse(
            genres_by_artist={
                i: pb.GenreList(genres=(found.get(i) or {}).get("genres") or []) for i in ids
            }
        )

    async def DescribeKnownTracks(
        self, request: pb.BatchGetRequest, context: grpc.aio.ServicerContext
    ) -> pb.DescribeKnownTracksResponse:
        ids = _ids(request)
        found = await self._catalog.get_tracks(ids)
        known = []
        for i in ids:
            doc = found.get(i)
            if doc is None:
                continue
            entry = pb.KnownTrack(
                spotify_id=i,
                enriched=bool(doc.get("enriched")),
                has_audio_features=bool(doc.get("audio_features")),
                artist_ids=[a["spotify_id"] for a in doc.get("artists", ())],
            )
            album = doc.get("album") or {}
            if album.get("spotify_id"):
                entry.album_id = album["spotify_id"]
            known.append(entry)
        return pb.DescribeKnownTracksResponse(tracks=known)

    async def NoteTracksSeen(
        self, request: pb.NoteTracksSeenRequest, context: grpc.aio.ServicerContext
    ) -> pb.NoteTracksSeenResponse:
        user_id = _require_user(request.user_id)
        seen = [
            SeenTrack(
                spotify_id=t.spotify_id,
                name=t.name,
                artist_name=t.artist_name,
                album_name=t.album_name,
                artist_ids=tuple(t.artist_ids),
                album_id=t.album_id if t.HasField("album_id") else None,
            )
            for t in request.tracks
        ]
        new, queued = await self._enricher.note(user_id, seen)
        return pb.NoteTracksSeenResponse(new_tracks=new, queued_for_enrichment=queued)

    async def EnrichForUser(
        self, request: pb.EnrichForUserRequest, context: grpc.aio.ServicerContext
    ) -> pb.StepReport:
        user_id = _require_user(request.user_id)
        noted_new = 0
        if request.HasField("played_from") or request.HasField("played_to"):
            start = (
                request.played_from.ToDatetime(tzinfo=UTC)
                if request.HasField("played_from")
                else None
            )
            end = (
                request.played_to.ToDatetime(tzinfo=UTC) if request.HasField("played_to") else None
            )
            _, noted_new, _ = await self._plays.note_range(user_id, start, end)
        if request.track_ids:
            seen = [SeenTrack(i, "", "", "") for i in request.track_ids if i]
            added, _ = await self._enricher.note(user_id, seen)
            noted_new += added
        report = await self._enricher.enrich_user(user_id, max_calls=self._step_max_calls)
        return pb.StepReport(
            status=COMPLETED,
            detail=enrich_detail(report, noted_new=noted_new),
            items=report.tracks,
        )

    async def SyncPlaylists(
        self, request: pb.UserRequest, context: grpc.aio.ServicerContext
    ) -> pb.StepReport:
        user_id = _require_user(request.user_id)
        result = await self._playlist_sync.sync(user_id)
        detail = (
            f"Synced {plural(result.total, 'playlist')}: {result.added} added, "
            f"{result.changed} changed, {result.removed} removed"
        )
        return pb.StepReport(status=COMPLETED, detail=detail, items=result.total)

    async def SyncTopItems(
        self, request: pb.UserRequest, context: grpc.aio.ServicerContext
    ) -> pb.StepReport:
        user_id = _require_user(request.user_id)
        result = await self._top_items.sync(user_id)
        if result.fresh_since is not None:
            since = result.fresh_since.strftime("%Y-%m-%dT%H:%M:%SZ")
            return pb.StepReport(status=SKIPPED, detail=f"Top items are fresh (synced {since})")
        tracks, artists = plural(result.tracks, "track"), plural(result.artists, "artist")
        detail = f"Synced top items: {tracks}, {artists}"
        return pb.StepReport(status=COMPLETED, detail=detail, items=result.tracks + result.artists)

    async def ListPlaylists(
        self, request: pb.ListPlaylistsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPlaylistsResponse:
        user_id = _require_user(request.user_id)
        page = request.page or 1
        size = request.page_size or 50
        if page < 1:
            raise InvalidArgument("page must be at least 1")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        docs, total = await self._playlists.page_for_user(
            user_id, skip=(page - 1) * size, limit=size
        )
        return pb.ListPlaylistsResponse(playlists=[playlist_pb(d) for d in docs], total=total)

    async def RecommendTracks(
        self, request: pb.RecommendTracksRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecommendTracksResponse:
        user_id = _require_user(request.user_id)
        targets: dict[str, float] = {}
        if request.HasField("target_features"):
            for name in (*FEATURE_FLOATS, *FEATURE_INTS):
                if request.target_features.HasField(name):
                    targets[name] = float(getattr(request.target_features, name))
        docs, source = await self._recommender.recommend(
            RecommendationQuery(
                user_id=user_id,
                seed_artist_ids=list(request.seed_artist_ids),
                seed_track_ids=list(request.seed_track_ids),
                seed_genres=list(request.seed_genres),
                target_features=targets,
                exclude_track_ids=list(request.exclude_track_ids),
                limit=request.limit,
            )
        )
        return pb.RecommendTracksResponse(tracks=[track_pb(d) for d in docs], source=source)
