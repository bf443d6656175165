"""Analytics' best-effort view of the catalog: hydration, genres, audio features, candidates.

Everything here is optional knowledge. When the catalog answers UNIMPLEMENTED, UNAVAILABLE,
runs out of time, or simply knows nothing, the answer is "nothing known": genres are empty,
audio-feature averages are null and items are shown with the names and ids the plays
carried. A figure never fails because the catalog did. Ids go in batches of
`catalog_batch_size`; batches run concurrently.

Tracks and artists' genres are remembered in the process (`_Lookup`): settled facts (a
track's audio features, an artist's genres) for `remember_seconds`, and an id another
caller is asking about right now is awaited, not asked again. The five snapshots of a
refresh then ask about each id once, and a snapshot recomputed after a sync asks only about
what was not settled, instead of thousands of ids again. "Not known" is remembered only if
`recent_seconds` says so (default 0: what enrichment learns shows up at once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Generic, TypeVar

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
        recent_seconds: float = 0.0,
        remember_items: int = 200_000,
    ) -> None:
        self._stub = stub
        self._timeout = timeout
        self._batch_size = batch_size
        self._tracks = _Lookup(
            self._fetch_tracks,
            settled=lambda track: track.HasField("audio_features"),
            items=remember_items,
            settled_seconds=remember_seconds,
            recent_seconds=recent_seconds,
        )
        self._genres = _Lookup(
            self._fetch_genres,
            settled=bool,
            items=remember_items,
            settled_seconds=remember_seconds,
            recent_seconds=recent_seconds,
        )

    async def tracks(self, ids: Iterable[str]) -> dict[str, pb.Track]:
        """Known tracks by Spotify id."""
        return await self._tracks.get(ids)

    async def _fetch_tracks(self, ids: list[str]) -> tuple[dict[str, pb.Track], bool]:

        async def batch(chunk: list[str]) -> list[pb.Track]:
            response = await self._stub.BatchGetTracks(
                pb.BatchGetRequest(spotify_ids=chunk), timeout=self._timeout
            )
            return list(response.tracks)

        found, complete = await self._batched("BatchGetTracks", ids, batch)
        return {track.spotify_id: track for track in found}, complete

    async def artists(self, ids: Iterable[str]) -> dict[str, pb.Artist]:
        """Known artists by Spotify id."""

        async def batch(chunk: list[str]) -> list[pb.Artist]:
            response = await self._stub.BatchGetArtists(
                pb.BatchGetRequest(spotify_ids=chunk), timeout=self._timeout
            )
            return list(response.artists)

        found, _ = await self._batched("BatchGetArtists", ids, batch)
        return {artist.spotify_id: artist for artist in found}

    async def albums(self, ids: Iterable[str]) -> dict[str, pb.Album]:
        """Known albums by Spotify id."""

        async def batch(chunk: list[str]) -> list[pb.Album]:
            response = await self._stub.BatchGetAlbums(
                pb.BatchGetRequest(spotify_ids=chunk), timeout=self._timeout
            )
            return list(response.albums)

        found, _ = await self._batched("BatchGetAlbums", ids, batch)
        return {album.spotify_id: album for album in found}

    async def artist_genres(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """Genres by artist id (artists without known genres are left out)."""
        return {key: genres for key, genres in (await self._genres.get(ids)).items() if genres}

    async def _fetch_genres(self, ids: list[str]) -> tuple[dict[str, list[str]], bool]:

        async def batch(chunk: list[str]) -> list[tuple[str, list[str]]]:
            response = await self._stub.GetArtistGenres(
                pb.BatchGetRequest(spotify_ids=chunk), timeout=self._timeout
            )
            return [(key, list(value.genres)) for key, value in response.genres_by_artist.items()]

        found, complete = await self._batched("GetArtistGenres", ids, batch)
        return {artist_id: genres for artist_id, genres in found}, complete

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
    ) -> tuple[list[T], bool]:
        """What the batches found, and whether every batch answered."""
        unique = sorted({spotify_id for spotify_id in ids if spotify_id})
        if not unique:
            return [], True
        chunks = [
            unique[start : start + self._batch_size]
            for start in range(0, len(unique), self._batch_size)
        ]
        results = await asyncio.gather(*(call(chunk) for chunk in chunks), return_exceptions=True)
        found: list[T] = []
        complete = True
        for result in results:
            if isinstance(result, grpc.aio.AioRpcError):
                _log_unknown(method, result)
                complete = False
            elif isinstance(result, BaseException):
                raise result
            else:
                found.extend(result)
        return found, complete


class _Lookup(Generic[T]):
    """Answers by id, remembered: settled ones for long, any answer briefly, shared in flight.

    Settled answers (`settled(value)`) are kept `settled_seconds`; every answer of a
    complete fetch, "not known" included, `recent_seconds` (so the five snapshots of one
    refresh, and refreshes close together, ask once); an id another caller is fetching
    right now is awaited, not fetched again. An id whose batch failed is not remembered.
    """

    def __init__(
        self,
        fetch: Callable[[list[str]], Awaitable[tuple[dict[str, T], bool]]],
        *,
        settled: Callable[[T], bool],
        items: int,
        settled_seconds: float,
        recent_seconds: float,
    ) -> None:
        self._fetch = fetch
        self._is_settled = settled
        self._settled: TTLCache[str, T] = TTLCache(items, settled_seconds)
        self._recent: TTLCache[str, T | None] | None = (
            TTLCache(items, recent_seconds) if recent_seconds > 0 else None
        )
        self._pending: dict[str, asyncio.Future[T | None]] = {}

    async def get(self, ids: Iterable[str]) -> dict[str, T]:
        """What is known of `ids`."""
        found: dict[str, T] = {}
        waiting: dict[str, asyncio.Future[T | None]] = {}
        ask: list[str] = []
        for spotify_id in dict.fromkeys(ids):
            if not spotify_id:
                continue
            if (value := self._settled.get(spotify_id)) is not None:
                found[spotify_id] = value
            elif self._recent is not None and spotify_id in self._recent:
                if (recent := self._recent[spotify_id]) is not None:
                    found[spotify_id] = recent
            elif (future := self._pending.get(spotify_id)) is not None:
                waiting[spotify_id] = future
            else:
                ask.append(spotify_id)
        if ask:
            found.update(await self._ask(ask))
        for spotify_id, future in waiting.items():
            if (value := await asyncio.shield(future)) is not None:
                found[spotify_id] = value
        return found

    async def _ask(self, ids: list[str]) -> dict[str, T]:
        loop = asyncio.get_running_loop()
        futures = {spotify_id: loop.create_future() for spotify_id in ids}
        self._pending.update(futures)
        answers: dict[str, T] = {}
        try:
            answers, complete = await self._fetch(ids)
            for spotify_id in ids:
                value = answers.get(spotify_id)
                if value is not None and self._is_settled(value):
                    self._settled[spotify_id] = value
                elif complete and self._recent is not None:
                    self._recent[spotify_id] = value
        finally:
            for spotify_id, future in futures.items():
                self._pending.pop(spotify_id, None)
                if not future.done():
                    future.set_result(answers.get(spotify_id))
        return answers


def _log_unknown(method: str, exc: grpc.aio.AioRpcError) -> None:
    # UNIMPLEMENTED is the catalog not being there yet: normal, not worth a warning each time.
    level = logging.DEBUG if exc.code() == grpc.StatusCode.UNIMPLEMENTED else logging.WARNING
    log.log(
        level, "catalog %s failed; treating as unknown", method, extra={"code": exc.code().name}
    )
