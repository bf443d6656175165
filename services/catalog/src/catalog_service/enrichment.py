"""Fetching what Spotify knows about queued ids, within the app's capabilities and budget.

One run (`Enricher.enrich_user`) works through one user's queues in order: tracks (50 per
batch call), then the artists those tracks name (50), albums not reached through a track
(20), then audio features (100). Albums normally cost nothing: the simplified album inside
every track object carries all album fields catalog keeps (image, release date, total
tracks, type, artists), so albums are stored from the track answers.

Capabilities (libs/spotify `CapabilityRegistry`, shared in Redis): before a batch call the
run asks whether the family (batch-tracks, batch-artists, batch-albums, audio-features) is
known to be closed. When open it calls the batch endpoint; a 403/404 there marks the family
closed for `capability_closed_ttl_seconds` (the client does it) and the same round carries on
with single lookups (`/v1/tracks/{id}`, open to development-mode apps). So a closed endpoint
is called at most once per detection window, never in a loop. Audio features have no single
form open to such apps: while closed, their queue simply waits (tracks keep no features,
which REST shows as null).

Budget and pauses: each run may spend at most the caller's `max_calls` and what is left of
the user's budget for the window (`EnrichmentQueue.budget_left`); every call is charged to
the user. Calls go out at background priority, behind interactive ones. A `RateLimited` (a
Retry-After longer than the client waits, or QUOTA_EXCEEDED) stores a global pause in Redis
and ends the run; ids leave a queue only once their answer is stored, so the next run after
the pause carries on where this one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from catalog_service.enrichment_queue import EnrichmentQueue, Kind
from catalog_service.models import (
    SeenTrack,
    album_fields,
    artist_fields,
    audio_features_fields,
    track_fields,
)
from catalog_service.repository import CatalogRepository
from echostats_spotify import (
    Capability,
    CapabilityRegistry,
    Priority,
    RateLimited,
    SpotifyBadRequest,
    SpotifyClient,
    SpotifyHTTPError,
    SpotifyNotFound,
)

log = logging.getLogger(__name__)

BATCH_SIZE = {Kind.TRACKS: 50, Kind.ARTISTS: 50, Kind.ALBUMS: 20, Kind.FEATURES: 100}
_BATCH = {
    Kind.TRACKS: ("/v1/tracks", "tracks", Capability.BATCH_TRACKS),
    Kind.ARTISTS: ("/v1/artists", "artists", Capability.BATCH_ARTISTS),
    Kind.ALBUMS: ("/v1/albums", "albums", Capability.BATCH_ALBUMS),
    Kind.FEATURES: ("/v1/audio-features", "audio_features", Capability.AUDIO_FEATURES),
}
# Long pause when Spotify gave no usable Retry-After with a RateLimited.
DEFAULT_PAUSE_SECONDS = 60.0


def utcnow() -> datetime:
    """Now, aware UTC."""
    return datetime.now(UTC)


@dataclass
class EnrichReport:
    """What one run did."""

    tracks: int = 0
    artists: int = 0
    albums: int = 0
    features: int = 0
    missing: int = 0
    calls: int = 0
    # Seconds of pause (a RateLimited now, or one already in force); None when not paused.
    paused_for: float | None = None
    # Another run holds the user's lock.
    busy: bool = False
    budget_exhausted: bool = False
    closed: set[str] = field(default_factory=set)
    remaining: dict[str, int] = field(default_factory=dict)

    @property
    def remaining_tracks(self) -> int:
        """Tracks still queued after the run."""
        return self.remaining.get(Kind.TRACKS.value, 0)


@dataclass(frozen=True, slots=True)
class _Fetched:
    """Answers of one round: {id: Spotify object} and ids Spotify does not know."""

    found: dict[str, dict[str, Any]]
    missing: list[str]


class _PausedMidRound(Exception):
    """A RateLimited in the middle of single lookups, with what was fetched before it."""

    def __init__(self, fetched: _Fetched, cause: RateLimited) -> None:
        super().__init__(str(cause))
        self.fetched = fetched
        self.cause = cause


class Enricher:
    """Notes ids seen in plays and fetches their metadata from Spotify."""

    def __init__(
        self,
        *,
        spotify: SpotifyClient,
        capabilities: CapabilityRegistry,
        catalog: CatalogRepository,
        queue: EnrichmentQueue,
        lock_seconds: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._spotify = spotify
        self._capabilities = capabilities
        self._catalog = catalog
        self._queue = queue
        self._lock_seconds = lock_seconds
        self._clock = clock

    @property
    def queue(self) -> EnrichmentQueue:
        """The Redis queue this enricher drains."""
        return self._queue

    async def note(self, user_id: str, seen: Sequence[SeenTrack]) -> tuple[int, int]:
        """Store placeholders for unknown ids and queue them for the user: (new, queued).

        Tracks enriched already still queue what they lack for this user (artists, audio
        features): whoever enriched them may never get to it (a user whose sign-in was
        revoked keeps their queue on hold), and this user's plays need it.
        """
        noted = await self._catalog.note_seen(seen, self._clock())
        queued = await self._queue.add(Kind.TRACKS, user_id, noted.to_enrich)
        queued += await self._queue_details(
            user_id,
            {
                track_id: [a.get("spotify_id", "") for a in doc.get("artists") or ()]
                for track_id, doc in noted.enriched.items()
            },
        )
        return len(noted.new), queued

    async def _queue_details(self, user_id: str, artists_by_track: dict[str, list[str]]) -> int:
        """Queue the artists and audio features these enriched tracks still lack."""
        if not artists_by_track:
            return 0
        artist_ids = {a for artists in artists_by_track.values() for a in artists if a}
        known = await self._catalog.get_artists(artist_ids)
        queued = await self._queue.add(
            Kind.ARTISTS,
            user_id,
            [a for a in artist_ids if not known.get(a, {}).get("enriched")],
        )
        checked = await self._catalog.features_checked(artists_by_track)
        return queued + await self._queue.add(
            Kind.FEATURES, user_id, [i for i in artists_by_track if i not in checked]
        )

    async def enrich_user(
        self, user_id: str, *, max_calls: int, priority: Priority = Priority.BACKGROUND
    ) -> EnrichReport:
        """Work through the user's queues until done, out of budget, or paused."""
        report = EnrichReport()
        paused = await self._queue.paused_for()
        if paused > 0:
            report.paused_for = paused
            await self._fill_remaining(user_id, report)
            return report
        token = await self._queue.lock(user_id, self._lock_seconds)
        if token is None:
            report.busy = True
            await self._fill_remaining(user_id, report)
            return report
        try:
            budget = min(max_calls, await self._queue.budget_left(user_id))
            for kind in (Kind.TRACKS, Kind.ARTISTS, Kind.ALBUMS, Kind.FEATURES):
                while report.calls < budget:
                    if kind is Kind.FEATURES and await self._capabilities.is_closed(
                        Capability.AUDIO_FEATURES
                    ):
                        report.closed.add(Capability.AUDIO_FEATURES.value)
                        break
                    ids = await self._queue.take(kind, user_id, BATCH_SIZE[kind])
                    if not ids:
                        break
                    if not await self._round(kind, user_id, ids, report, budget, priority):
                        break
            report.budget_exhausted = report.calls >= budget
        except RateLimited as exc:
            wait = float(exc.retry_after or DEFAULT_PAUSE_SECONDS)
            await self._queue.pause(wait)
            report.paused_for = wait
            log.warning(
                "enrichment paused by Spotify rate limit",
                extra={"user_id": user_id, "retry_after": wait, "quota": exc.quota_exceeded},
            )
        finally:
            await self._queue.unlock(user_id, token)
        await self._fill_remaining(user_id, report)
        return report

    async def _fill_remaining(self, user_id: str, report: EnrichReport) -> None:
        for kind in Kind:
            report.remaining[kind.value] = await self._queue.size(kind, user_id)

    async def _round(
        self,
        kind: Kind,
        user_id: str,
        ids: list[str],
        report: EnrichReport,
        budget: int,
        priority: Priority,
    ) -> bool:
        """Fetch and store one round of ids; False when the kind cannot go on now."""
        path, key, capability = _BATCH[kind]
        fetched: _Fetched | None = None
        if not await self._capabilities.is_closed(capability):
            fetched = await self._batch(path, key, user_id, ids, report, priority)
        if fetched is None:
            if kind is Kind.FEATURES:
                # No single form is open where the batch is closed.
                report.closed.add(capability.value)
                return False
            ids = ids[: max(0, budget - report.calls)]
            try:
                fetched = await self._singles(path, user_id, ids, report, priority)
            except _PausedMidRound as paused:
                # Keep what this round already fetched; the rest stays queued.
                await self._store(kind, user_id, paused.fetched, report)
                await self._queue.done(
                    kind, user_id, [*paused.fetched.found, *paused.fetched.missing]
                )
                raise paused.cause from None
        await self._store(kind, user_id, fetched, report)
        handled = [*fetched.found, *fetched.missing]
        await self._queue.done(kind, user_id, handled)
        return bool(handled)

    async def _batch(
        self,
        path: str,
        key: str,
        user_id: str,
        ids: list[str],
        report: EnrichReport,
        priority: Priority,
    ) -> _Fetched | None:
        """One batch call; None when the family turned out closed or refused these ids."""
        try:
            body = await self._call(path, user_id, report, priority, {"ids": ",".join(ids)})
        except SpotifyBadRequest:
            # e.g. "invalid id" for one of them: single lookups tell which.
            return None
        except SpotifyHTTPError as exc:
            if exc.capability is None:
                raise
            log.info(
                "spotify batch endpoint closed to the app; using single lookups",
                extra={"endpoint": path, "capability": exc.capability},
            )
            return None
        items = body.get(key) if isinstance(body, dict) else None
        items = items if isinstance(items, list) else []
        found: dict[str, dict[str, Any]] = {}
        for wanted, item in zip(ids, items, strict=False):
            if isinstance(item, dict):
                found[str(item.get("id") or wanted)] = item
        return _Fetched(found, [i for i in ids if i not in found])

    async def _singles(
        self, path: str, user_id: str, ids: list[str], report: EnrichReport, priority: Priority
    ) -> _Fetched:
        found: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for entity_id in ids:
            try:
                item = await self._call(f"{path}/{entity_id}", user_id, report, priority)
            except (SpotifyNotFound, SpotifyBadRequest):
                missing.append(entity_id)
                continue
            except RateLimited as exc:
                raise _PausedMidRound(_Fetched(found, missing), exc) from exc
            if isinstance(item, dict):
                found[entity_id] = item
            else:
                missing.append(entity_id)
        return _Fetched(found, missing)

    async def _call(
        self,
        path: str,
        user_id: str,
        report: EnrichReport,
        priority: Priority,
        params: dict[str, str] | None = None,
    ) -> Any:
        report.calls += 1
        await self._queue.spend(user_id, 1)
        return await self._spotify.get_json(path, user_id=user_id, params=params, priority=priority)

    async def _store(
        self, kind: Kind, user_id: str, fetched: _Fetched, report: EnrichReport
    ) -> None:
        now = self._clock()
        report.missing += len(fetched.missing)
        if kind is Kind.TRACKS:
            await self.store_tracks(user_id, list(fetched.found.values()), report)
            await self._catalog.mark_missing("tracks", fetched.missing, now)
        elif kind is Kind.ARTISTS:
            await self._catalog.store_artists(
                {i: artist_fields(a) for i, a in fetched.found.items()}, now
            )
            report.artists += len(fetched.found)
        elif kind is Kind.ALBUMS:
            await self._catalog.store_albums(
                {i: album_fields(a) for i, a in fetched.found.items()}, now
            )
            report.albums += len(fetched.found)
        else:
            features: dict[str, dict[str, Any] | None] = {
                i: audio_features_fields(f) for i, f in fetched.found.items()
            }
            features.update({i: None for i in fetched.missing})
            await self._catalog.store_audio_features(features, now)
            report.features += len(fetched.found)

    async def store_tracks(
        self, user_id: str, bodies: Sequence[dict[str, Any]], report: EnrichReport | None = None
    ) -> None:
        """Store full track objects, their albums, and queue their artists and features."""
        now = self._clock()
        bodies = [b for b in bodies if isinstance(b, dict) and b.get("id")]
        if not bodies:
            return
        await self._catalog.store_tracks({str(b["id"]): track_fields(b) for b in bodies}, now)
        albums = {
            str(b["album"]["id"]): album_fields(b["album"])
            for b in bodies
            if isinstance(b.get("album"), dict) and b["album"].get("id")
        }
        await self._catalog.store_albums(albums, now)
        await self._queue_details(
            user_id,
            {str(b["id"]): [a["spotify_id"] for a in track_fields(b)["artists"]] for b in bodies},
        )
        if report is not None:
            report.tracks += len(bodies)
            report.albums += len(albums)

    async def not_enriched(
        self, collection: str, bodies: dict[str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The objects of `bodies` ({id: object}) whose stored copy is not enriched."""
        getter = self._catalog.get_tracks if collection == "tracks" else self._catalog.get_artists
        stored = await getter(bodies)
        return [b for i, b in bodies.items() if not stored.get(i, {}).get("enriched")]

    async def store_artists(self, bodies: Sequence[dict[str, Any]]) -> None:
        """Store full artist objects (top artists, single lookups)."""
        await self._catalog.store_artists(
            {str(b["id"]): artist_fields(b) for b in bodies if isinstance(b, dict) and b.get("id")},
            self._clock(),
        )
