"""Analytics' best-effort view of the catalog: hydration, genres, audio features, candidates.

Everything here is optional knowledge. When the catalog answers UNIMPLEMENTED, UNAVAILABLE,
runs out of time, or simply knows nothing, the answer is "nothing known": genres are empty,
audio-feature averages are null and items are shown with the names and ids the plays
carried. A figure never fails because the catalog did. Ids go in batches of
`catalog_batch_size`; batches run concurrently.

Settled facts are remembered in the process for a while (`remember_seconds`): a track's
audio features and an artist's genres. Recomputing a year's snapshot after a sync then asks
the catalog only about what it did not know, instead of thousands of ids again. What is
not known yet is never remembered, so it shows up as soon as enrichment finds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import grpc
from cachetools import TTLCache

from echostats.catalog.v1 import catalog_service_pb2 as pb
from echostats.catalog.v1 import catalog_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")


class CatalogView:
    """Lookups against the catalog service that degrade to "nothing known"."""

    def __init__(
        self,
        stub: pb_grpc.CatalogServiceStub,
        *,
        timeout: float = 3.0,
        batch_size: int = 500,
        remember_seconds: float = 600.0,
        remember_items: int = 200_000,
    ) -> None:
        self._stub = stub
        self._timeout = timeout
        self._batch_size = batch_size
        self._tracks_with_features: TTLCache[str, pb.Track] = TTLCache(
            remember_items, remember_seconds
        )
        self._genres: TTLCache[str, list[str]] = TTLCache(remember_items, remember_seconds)

    async def tracks(self, ids: Iterable[str]) -> dict[str, pb.Track]:
        """Known tracks by Spotify id (those with audio features remembered)."""
        known, unknown = _split(self._tracks_with_features, ids)
        fetched = await self._fetch_tracks(unknown)
        for spotify_id, track in fetched.items():
            if track.HasField("audio_features"):
                self._tracks_with_features[spotify_id] = track
        return known | fetched

    async def _fetch_tracks(self, ids: Iterable[str]) -> dict[str, pb.Track]:

        async def batch(chunk: list[str]) -> list[pb.Track]:
            response = await self._stub.BatchGetTracks(
                pb.BatchGetRequest(spotify_ids=chunk), timeout=self._timeout
            )
            return list(response.tracks)

        found = await self._batched("BatchGetTracks", ids, batch)
        return {track.spotify_id: track for track in found}

    async def artists(self, ids: Iterable[str]) -> dict[str, pb.Artist]:
        """Known artists by Spotify id."""

        async def batch(chunk: list[str]) -> list[pb.Artist]:
            response = await self._stub.BatchGetArtists(
                pb.BatchGetRequest(spotify_ids=chunk), timeout=self._timeout
            )
            return list(response.artists)

        found = await self._batched("BatchGetArtists", ids, batch)
        return {artist.spotify_id: artist for artist in found}

    async def albums(self, ids: Iterable[str]) -> dict[str, pb.Album]:
        """Known albums by Spotify id."""

        async def batch(chunk: list[str]) -> list[pb.Album]:
            response = await self._stub.BatchGetAlbums(
                pb.BatchGetRequest(spotify_ids=chunk), timeout=self._timeout
            )
            return list(response.albums)

        found = await self._batched("BatchGetAlbums", ids, batch)
        return {album.spotify_id: album for album in found}

    async def artist_genres(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """Genres by artist id (artists without known genres are left out; the rest remembered)."""
        known, unknown = _split(self._genres, ids)
        fetched = await self._fetch_genres(unknown)
        self._genres.update(fetched)
        return known | fetched

    async def _fetch_genres(self, ids: Iterable[str]) -> dict[str, list[str]]:

        async def batch(chunk: list[str]) -> list[tuple[str, list[str]]]:
            response = await self._stub.GetArtistGenres(
                pb.BatchGetRequest(spotify_ids=chunk), timeout=self._timeout
            )
            return [(key, list(value.genres)) for key, value in response.genres_by_artist.items()]

        found = await self._batched("GetArtistGenres", ids, batch)
        return {artist_id: genres for artist_id, genres in found if genres}

    async def recommend(self, request: pb.RecommendTracksRequest) -> list[pb.Track]:
        """Candidate tracks for the seeds (empty when the catalog cannot say)."""
        try:
            response = await self._stub.RecommendTracks(request, timeout=self._timeout * 3)
        except grpc.aio.AioRpcError as exc:
            _log_unknown("RecommendTracks", exc)
            return []
        return list(response.tracks)

    async def _batched(
        self,
        method: str,
        ids: Iterable[str],
        call: Callable[[list[str]], Awaitable[Sequence[T]]],
    ) -> list[T]:
        unique = sorted({spotify_id for spotify_id in ids if spotify_id})
        if not unique:
            return []
        chunks = [
            unique[start : start + self._batch_size]
            for start in range(0, len(unique), self._batch_size)
        ]
        results = await asyncio.gather(*(call(chunk) for chunk in chunks), return_exceptions=True)
        found: list[T] = []
        for result in results:
            if isinstance(result, grpc.aio.AioRpcError):
                _log_unknown(method, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                found.extend(result)
        return found


def _split(remembered: TTLCache[str, T], ids: Iterable[str]) -> tuple[dict[str, T], list[str]]:
    """(what is remembered of `ids`, the other ids)."""
    known: dict[str, T] = {}
    unknown: list[str] = []
    for spotify_id in ids:
        value = remembered.get(spotify_id)
        if value is not None:
            known[spotify_id] = value
        elif spotify_id:
            unknown.append(spotify_id)
    return known, unknown


def _log_unknown(method: str, exc: grpc.aio.AioRpcError) -> None:
    # UNIMPLEMENTED is the catalog not being there yet: normal, not worth a warning each time.
    level = logging.DEBUG if exc.code() == grpc.StatusCode.UNIMPLEMENTED else logging.WARNING
    log.log(
        level, "catalog %s failed; treating as unknown", method, extra={"code": exc.code().name}
    )
