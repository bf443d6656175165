"""Top lists, genre distribution and recommendations: read from the snapshot, hydrated late.

Top lists take the snapshot's ranked items (up to `snapshot_top_items`) and hydrate them from
the catalog at read time, so names and images improve as the catalog enriches; an item the
catalog does not know is shown from the names and ids its plays carried (`id` is then its
Spotify id, or empty for items known only by name).

Recommendations seed from the all-time snapshot: artists (top 5 artist ids), tracks (top 5
track ids), genres (top 5 genres) or mixed (2 artists, 2 tracks, 1 genre), with the user's
play-weighted audio profile as target and the tracks heard in the last 30 days excluded.
The catalog's RecommendTracks decides (Spotify's endpoint when open to the app, else its own
catalog). When it has nothing (not there, or no candidates), the user's own data answers:
all-time favourites not heard in the last 30 days, favourite artists first. Never other
users' data. No plays at all: no items and an empty seed_info.
"""

from __future__ import annotations

from typing import Any

from analytics_service.catalog_client import CatalogView
from analytics_service.periods import Period
from analytics_service.snapshots import FEATURE_NAMES, SnapshotService
from echostats.catalog.v1 import catalog_service_pb2 as catalog_pb
from echostats_platform.errors import InvalidArgument

SEED_TYPES = ("artists", "tracks", "genres", "mixed")
TOP_LIMIT_MAX = 100
RECOMMENDATIONS_LIMIT_MAX = 50
SPOTIFY_OPEN_URL = "https://open.spotify.com"


def _url(kind: str, spotify_id: str) -> str:
    return f"{SPOTIFY_OPEN_URL}/{kind}/{spotify_id}" if spotify_id else ""


def track_from_item(item: dict[str, Any]) -> catalog_pb.Track:
    """A track as the plays knew it."""
    track = catalog_pb.Track(
        id=item["spotify_id"],
        spotify_id=item["spotify_id"],
        name=item["name"],
        external_url=_url("track", item["spotify_id"]),
    )
    if item.get("artist_name") or item.get("artist_id"):
        track.artists.add(spotify_id=item.get("artist_id", ""), name=item.get("artist_name", ""))
    if item.get("album_name") or item.get("album_id"):
        album = catalog_pb.AlbumRef(
            spotify_id=item.get("album_id", ""), name=item.get("album_name", "")
        )
        if item.get("image"):
            album.image_url = item["image"]
        track.album.CopyFrom(album)
    return track


def artist_from_item(item: dict[str, Any]) -> catalog_pb.Artist:
    """An artist as the plays knew it."""
    artist = catalog_pb.Artist(
        id=item["spotify_id"],
        spotify_id=item["spotify_id"],
        name=item["name"],
        external_url=_url("artist", item["spotify_id"]),
    )
    if item.get("image"):
        artist.image_url = item["image"]
    return artist


def album_from_item(item: dict[str, Any]) -> catalog_pb.Album:
    """An album as the plays knew it."""
    album = catalog_pb.Album(
        id=item["spotify_id"],
        spotify_id=item["spotify_id"],
        name=item["name"],
        external_url=_url("album", item["spotify_id"]),
    )
    if item.get("artist_name"):
        album.artists.add(spotify_id=item.get("artist_id", ""), name=item["artist_name"])
    if item.get("image"):
        album.image_url = item["image"]
    return album


def check_limit(limit: int, maximum: int) -> int:
    """A limit within 1..maximum, else INVALID_ARGUMENT."""
    if not 1 <= limit <= maximum:
        raise InvalidArgument(f"limit must be between 1 and {maximum}")
    return limit


class TopItems:
    """Read paths over stored snapshots."""

    def __init__(self, *, snapshots: SnapshotService, catalog: CatalogView) -> None:
        self._snapshots = snapshots
        self._catalog = catalog

    async def tracks(
        self, user_id: str, period: Period, limit: int
    ) -> tuple[list[catalog_pb.Track], int]:
        """The period's top tracks, hydrated, and the number of distinct tracks."""
        snapshot = await self._snapshots.get_with_lists(user_id, period)
        items = snapshot["top_tracks"][: check_limit(limit, TOP_LIMIT_MAX)]
        known = await self._catalog.tracks(item["spotify_id"] for item in items)
        hydrated = [known.get(item["spotify_id"]) or track_from_item(item) for item in items]
        return hydrated, snapshot["unique_tracks"]

    async def artists(
        self, user_id: str, period: Period, limit: int
    ) -> tuple[list[catalog_pb.Artist], int]:
        """The period's top artists, hydrated, and the number of distinct artists."""
        snapshot = await self._snapshots.get_with_lists(user_id, period)
        items = snapshot["top_artists"][: check_limit(limit, TOP_LIMIT_MAX)]
        known = await self._catalog.artists(item["spotify_id"] for item in items)
        hydrated = [known.get(item["spotify_id"]) or artist_from_item(item) for item in items]
        return hydrated, snapshot["unique_artists"]

    async def albums(
        self, user_id: str, period: Period, limit: int
    ) -> tuple[list[catalog_pb.Album], int]:
        """The period's top albums, hydrated, and the number of distinct albums."""
        snapshot = await self._snapshots.get_with_lists(user_id, period)
        items = snapshot["top_albums"][: check_limit(limit, TOP_LIMIT_MAX)]
        known = await self._catalog.albums(item["spotify_id"] for item in items)
        hydrated = [known.get(item["spotify_id"]) or album_from_item(item) for item in items]
        return hydrated, snapshot["unique_albums"]

    async def genres(self, user_id: str, period: Period) -> list[tuple[str, int]]:
        """(genre, plays) of the period, most played first."""
        snapshot = await self._snapshots.get(user_id, period)
        return [(genre["name"], int(genre["plays"])) for genre in snapshot["genres"]]

    async def recommendations(
        self, user_id: str, limit: int, seed_type: str
    ) -> tuple[list[catalog_pb.Track], dict[str, str]]:
        """Recommended tracks and what they were seeded with (see the module docs)."""
        if seed_type not in SEED_TYPES:
            raise InvalidArgument("seed_type must be one of artists, tracks, genres, mixed")
        check_limit(limit, RECOMMENDATIONS_LIMIT_MAX)
        snapshot = await self._snapshots.get_with_lists(user_id, Period.ALL_TIME)
        if not snapshot["plays"]:
            return [], {}
        recent = await self._snapshots.get_with_lists(user_id, Period.MONTH)
        recent_ids = {item["spotify_id"] for item in recent["top_tracks"] if item["spotify_id"]}
        recent_keys = {item["key"] for item in recent["top_tracks"]}
        artist_ids = [a["spotify_id"] for a in snapshot["top_artists"] if a["spotify_id"]]
        track_ids = [t["spotify_id"] for t in snapshot["top_tracks"] if t["spotify_id"]]
        genres = [genre["name"] for genre in snapshot["genres"]]
        counts = {"artists": (5, 0, 0), "tracks": (0, 5, 0), "genres": (0, 0, 5)}
        n_artists, n_tracks, n_genres = counts.get(seed_type, (2, 2, 1))
        request = catalog_pb.RecommendTracksRequest(
            user_id=user_id,
            seed_artist_ids=artist_ids[:n_artists],
            seed_track_ids=track_ids[:n_tracks],
            seed_genres=genres[:n_genres],
            exclude_track_ids=sorted(recent_ids),
            limit=limit,
        )
        if snapshot.get("avg_features"):
            features = {
                name: value
                for name, value in snapshot["avg_features"].items()
                if name in FEATURE_NAMES and value is not None
            }
            request.target_features.CopyFrom(catalog_pb.AudioFeatures(**features))
        has_seeds = request.seed_artist_ids or request.seed_track_ids or request.seed_genres
        tracks = await self._catalog.recommend(request) if has_seeds else []
        if not tracks:
            tracks = await self._own_favourites(snapshot, recent_keys, limit)
        seed_info = {"type": seed_type}
        if snapshot["top_artists"]:
            seed_info["top_artist"] = snapshot["top_artists"][0]["name"]
        if genres:
            seed_info["top_genre"] = genres[0]
        return tracks[:limit], seed_info

    async def _own_favourites(
        self, snapshot: dict[str, Any], recent_keys: set[str], limit: int
    ) -> list[catalog_pb.Track]:
        """All-time favourites not heard lately, those of favourite artists first."""
        artist_rank = {
            (artist["spotify_id"] or artist["name"]): rank
            for rank, artist in enumerate(snapshot["top_artists"])
        }
        candidates = [item for item in snapshot["top_tracks"] if item["key"] not in recent_keys]
        candidates.sort(
            key=lambda item: artist_rank.get(
                item["artist_id"] or item["artist_name"], len(artist_rank)
            )
        )
        chosen = candidates[:limit]
        known = await self._catalog.tracks(item["spotify_id"] for item in chosen)
        return [known.get(item["spotify_id"]) or track_from_item(item) for item in chosen]
