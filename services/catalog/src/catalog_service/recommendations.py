"""Candidate tracks for a user's recommendations.

Where Spotify's `/v1/recommendations` is open to the app (Extended Quota Mode) it is asked,
with at most 5 seeds (artists first, then tracks, then genres) and the user's audio profile
as `target_*` values. Where it is closed (404 to development-mode apps since Nov 2024; the
capability registry remembers it, so it is probed once per detection window) or fails,
candidates come from the catalog: tracks of the seed artists, of the seed tracks' artists
and of stored artists with a seed genre, nearest to the target profile first (tracks
without features after those with), then the more popular, then by id. Catalog data is
Spotify's metadata, shared by everyone; nothing here reads another user's listening.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from catalog_service.enrichment import Enricher
from catalog_service.repository import CatalogRepository
from echostats_spotify import (
    Capability,
    CapabilityRegistry,
    Priority,
    SpotifyClient,
    SpotifyHTTPError,
)

log = logging.getLogger(__name__)

MAX_SEEDS = 5
MAX_LIMIT = 100
# Candidate tracks read from the catalog per request.
_CANDIDATES = 2000
_TARGET_SCALE = {"tempo": 250.0, "loudness": 60.0, "key": 11.0, "time_signature": 7.0}


@dataclass(frozen=True, slots=True)
class RecommendationQuery:
    """What the caller wants recommendations for."""

    user_id: str
    seed_artist_ids: Sequence[str]
    seed_track_ids: Sequence[str]
    seed_genres: Sequence[str]
    target_features: Mapping[str, float]
    exclude_track_ids: Sequence[str]
    limit: int


def feature_distance(features: Mapping[str, Any] | None, targets: Mapping[str, float]) -> float:
    """Mean scaled distance of a track's features to the targets (inf without features)."""
    if not targets:
        return 0.0
    if not features:
        return float("inf")
    distances = [
        abs(float(features[name]) - target) / _TARGET_SCALE.get(name, 1.0)
        for name, target in targets.items()
        if features.get(name) is not None
    ]
    return sum(distances) / len(distances) if distances else float("inf")


class Recommender:
    """Spotify's recommendations when open, the catalog's otherwise."""

    def __init__(
        self,
        *,
        spotify: SpotifyClient,
        capabilities: CapabilityRegistry,
        catalog: CatalogRepository,
        enricher: Enricher,
    ) -> None:
        self._spotify = spotify
        self._capabilities = capabilities
        self._catalog = catalog
        self._enricher = enricher

    async def recommend(self, query: RecommendationQuery) -> tuple[list[dict[str, Any]], str]:
        """(track documents, "spotify" | "catalog")."""
        limit = max(1, min(query.limit or 20, MAX_LIMIT))
        excluded = set(query.exclude_track_ids)
        has_seeds = query.seed_artist_ids or query.seed_track_ids or query.seed_genres
        if has_seeds and not await self._capabilities.is_closed(Capability.RECOMMENDATIONS):
            try:
                tracks = await self._from_spotify(query, limit, excluded)
            except (SpotifyHTTPError, grpc.aio.AioRpcError) as exc:
                # Closed (the registry now knows), failing, or no token for the user.
                log.info(
                    "spotify recommendations unavailable; using the catalog",
                    extra={"error": type(exc).__name__},
                )
            else:
                return tracks, "spotify"
        return await self._from_catalog(query, limit, excluded), "catalog"

    async def _from_spotify(
        self, query: RecommendationQuery, limit: int, excluded: set[str]
    ) -> list[dict[str, Any]]:
        seeds: list[tuple[str, str]] = [
            *(("seed_artists", s) for s in query.seed_artist_ids),
            *(("seed_tracks", s) for s in query.seed_track_ids),
            *(("seed_genres", s) for s in query.seed_genres),
        ][:MAX_SEEDS]
        params: dict[str, Any] = {"limit": min(MAX_LIMIT, limit + len(excluded))}
        for name in ("seed_artists", "seed_tracks", "seed_genres"):
            values = [v for n, v in seeds if n == name]
            if values:
                params[name] = ",".join(values)
        for name, value in query.target_features.items():
            params[f"target_{name}"] = value
        body = await self._spotify.get_json(
            "/v1/recommendations",
            user_id=query.user_id,
            params=params,
            priority=Priority.INTERACTIVE,
        )
        bodies = [
            t
            for t in ((body or {}).get("tracks") or ())
            if isinstance(t, dict) and t.get("id") and t["id"] not in excluded
        ][:limit]
        await self._enricher.store_tracks(query.user_id, bodies)
        stored = await self._catalog.get_tracks(str(t["id"]) for t in bodies)
        return [stored[str(t["id"])] for t in bodies if str(t["id"]) in stored]

    async def _from_catalog(
        self, query: RecommendationQuery, limit: int, excluded: set[str]
    ) -> list[dict[str, Any]]:
        artist_ids = list(dict.fromkeys(query.seed_artist_ids))
        seed_tracks = await self._catalog.get_tracks(query.seed_track_ids)
        for doc in seed_tracks.values():
            artist_ids.extend(a["spotify_id"] for a in doc.get("artists", ()))
        if query.seed_genres:
            artist_ids.extend(await self._catalog.artists_with_genres(query.seed_genres, 200))
        artist_ids = list(dict.fromkeys(artist_ids))
        if not artist_ids:
            return []
        candidates = [
            doc
            for doc in await self._catalog.tracks_by_artists(artist_ids, _CANDIDATES)
            if doc["_id"] not in excluded and doc["_id"] not in query.seed_track_ids
        ]
        targets = dict(query.target_features)
        candidates.sort(
            key=lambda doc: (
                feature_distance(doc.get("audio_features"), targets),
                -(doc.get("popularity") or 0),
                doc["_id"],
            )
        )
        return candidates[:limit]
