"""Period snapshots: merged from rollups, stored, and served until their data changes.

A snapshot of (user, period) is fresh while it was computed from the user's current rollup
`version`, for today's local date (rolling windows move at midnight) and in the configured
time zone. Readers check the version (Redis, see `RollupRepository.version`) and serve a
fresh snapshot from this process's memory or by one `_id` read; a stale or missing one is
recomputed first, but a reader that has waited `stale_after_seconds` for that gets the
stored one as it is. Computations are one at a time per user and period across every
replica (a Redis lock): whoever holds the lock re-reads before computing, so readers that
queued behind a computation serve its result instead of repeating it. A refresh accepts
only a snapshot finished after the refresh was asked for, so concurrent refreshes also
compute once.

Computing merges the month summaries that lie wholly inside the window and the days of the
partial months at its edges (`rollups.Merged`), then asks the catalog (best effort) for
the artists' genres and images and the tracks' audio features. Genre play counts are the
plays of the artists having that genre (a play counts once for each genre of its primary
artist); `avg_audio_features` are play-weighted means over the tracks whose features are
known, each feature on its own (null when none is known). The listening streak is the
user's current one (consecutive local days with plays ending today or yesterday), the same
for every period.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cachetools import LRUCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from analytics_service.catalog_client import CatalogView
from analytics_service.periods import ALL_PERIODS, Period, month_bounds
from analytics_service.repository import (
    LIST_FIELDS,
    MonthSummary,
    RollupRepository,
    RollupState,
    SnapshotRepository,
    snapshot_id,
)
from analytics_service.rollups import Item, Merged, Rollup
from echostats_platform.context import deadline_var
from echostats_platform.lease import Lease
from echostats_platform.timeutil import utc_now

log = logging.getLogger(__name__)

SNAPSHOT_LOCK_PREFIX = "analytics:snapshot-lock:"
FEATURE_NAMES = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "tempo",
)
Snapshot = dict[str, Any]


def to_millis(moment: datetime) -> datetime:
    """The moment with its microseconds cut to milliseconds (what BSON stores)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def current_streak(days: set[str], today: date) -> int:
    """Consecutive days with plays ending today, or yesterday when today has none yet."""
    day = today if today.isoformat() in days else today - timedelta(days=1)
    streak = 0
    while day.isoformat() in days:
        streak += 1
        day -= timedelta(days=1)
    return streak


def genre_percentages(counts: list[tuple[str, int]]) -> list[float]:
    """Shares to one decimal that sum to exactly 100 (largest remainder), 0s for no plays."""
    total = sum(count for _, count in counts)
    if total == 0:
        return [0.0] * len(counts)
    tenths = [count * 1000 / total for _, count in counts]
    floors = [int(value) for value in tenths]
    short = 1000 - sum(floors)
    by_remainder = sorted(range(len(counts)), key=lambda i: (-(tenths[i] - floors[i]), i))
    for index in by_remainder[:short]:
        floors[index] += 1
    return [value / 10 for value in floors]


class MonthCache:
    """Month documents shared by the snapshots computed together (one read per month).

    Tied to one rollup version: a computation that saw another version starts it afresh,
    so a snapshot never mixes documents of two versions under the older one's name.
    """

    def __init__(self, rollups: RollupRepository, user_id: str) -> None:
        self._rollups = rollups
        self._user_id = user_id
        self._version: str | None = None
        self._summaries: dict[str, MonthSummary | None] = {}
        self._days: dict[str, dict[str, Rollup] | None] = {}
        self._lock = asyncio.Lock()

    async def summaries(self, state: RollupState, months: list[str]) -> dict[str, MonthSummary]:
        """The summaries of `months` that exist, as of (at least) `state`."""
        async with self._lock:
            self._check(state)
            missing = [month for month in months if month not in self._summaries]
            if missing:
                found = await self._rollups.summaries(self._user_id, missing)
                for month in missing:
                    self._summaries[month] = found.get(month)
            return {m: doc for m in months if (doc := self._summaries[m]) is not None}

    async def days(self, state: RollupState, months: list[str]) -> dict[str, dict[str, Rollup]]:
        """The day rollups of `months` that exist, as of (at least) `state`."""
        async with self._lock:
            self._check(state)
            missing = [month for month in months if month not in self._days]
            if missing:
                found = await self._rollups.month_days(self._user_id, missing)
                for month in missing:
                    self._days[month] = found.get(month)
            return {m: doc for m in months if (doc := self._days[m]) is not None}

    def _check(self, state: RollupState) -> None:
        if self._version != state.version:
            self._version, self._summaries, self._days = state.version, {}, {}


class SnapshotService:
    """Serves, refreshes and computes period snapshots."""

    def __init__(
        self,
        *,
        rollups: RollupRepository,
        snapshots: SnapshotRepository,
        catalog: CatalogView,
        redis: Redis,
        zone: ZoneInfo,
        top_items: int = 100,
        lock_seconds: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
        remembered_snapshots: int = 512,
        stale_after_seconds: float | None = 2.0,
    ) -> None:
        self._rollups = rollups
        self._snapshots = snapshots
        self._catalog = catalog
        self._redis = redis
        self.zone = zone
        self._top_items = top_items
        self._lock_ms = int(lock_seconds * 1000)
        self._clock = clock
        # How many snapshots this process computed (tests check "computed once").
        self.computations = 0
        # Snapshots this process read or computed lately, by (user, period): served again
        # without a database read while they are fresh (checked against the version).
        self._recent: LRUCache[tuple[str, str], Snapshot] = LRUCache(remembered_snapshots)
        # A reader that has waited this long for a recomputation gets the stored (stale)
        # snapshot instead, while the computation goes on: a history that keeps changing (a
        # big import being rolled up) must not turn reads into timeouts. None: always wait.
        self._stale_after = stale_after_seconds

    def today(self) -> date:
        """Today's date in the analytics time zone."""
        return self._clock().astimezone(self.zone).date()

    def is_fresh(self, snapshot: Snapshot | None, version: str, today: date) -> bool:
        """Computed from the current rollups (`version`), for today, in this time zone."""
        return (
            snapshot is not None
            and snapshot.get("version") == version
            and snapshot.get("as_of") == today.isoformat()
            and snapshot.get("timezone") == self.zone.key
        )

    async def get(
        self,
        user_id: str,
        period: Period,
        cache: MonthCache | None = None,
        *,
        may_be_stale: bool = True,
    ) -> Snapshot:
        """The fresh snapshot: the stored one, or one computed now (once across replicas).

        With `may_be_stale`, a stored snapshot whose recomputation takes longer than
        `stale_after_seconds` is served as it is (its `computed_at` says how old it is).
        """
        today = self.today()
        key = (user_id, period.value)
        version = await self._rollups.version(user_id)
        snapshot = self._recent.get(key)
        if snapshot is not None and self.is_fresh(snapshot, version, today):
            return snapshot
        snapshot = await self._snapshots.get(user_id, period.value)
        if snapshot is not None and self.is_fresh(snapshot, version, today):
            self._recent[key] = snapshot
            return snapshot
        return await self._compute_once(
            user_id,
            period,
            lambda snap, st: self.is_fresh(snap, st.version, today),
            cache,
            fallback=snapshot if may_be_stale else None,
        )

    async def get_with_lists(self, user_id: str, period: Period) -> Snapshot:
        """The fresh snapshot with its whole ranked lists (for the top-list endpoints)."""
        snapshot = await self.get(user_id, period)
        lists = await self._snapshots.get_lists(user_id, period.value)
        if lists is None:
            return snapshot
        return {**snapshot, **{name: lists[name] for name in LIST_FIELDS}}

    async def refresh(self, user_id: str, periods: tuple[Period, ...]) -> list[Snapshot]:
        """Recompute these periods now (a computation that finishes meanwhile counts)."""
        asked = self._clock()

        def accept(snapshot: Snapshot | None, state: RollupState) -> bool:
            return (
                snapshot is not None
                and self.is_fresh(snapshot, state.version, self.today())
                and snapshot["computed_at"] >= to_millis(asked)
            )

        cache = MonthCache(self._rollups, user_id)
        return list(
            await asyncio.gather(
                *(self._compute_once(user_id, period, accept, cache) for period in periods)
            )
        )

    async def warm(self, user_id: str) -> int:
        """Bring every period's snapshot up to date; returns how many were computed."""
        before = self.computations
        cache = MonthCache(self._rollups, user_id)
        await asyncio.gather(
            *(self.get(user_id, period, cache, may_be_stale=False) for period in ALL_PERIODS)
        )
        return self.computations - before

    async def _compute_once(
        self,
        user_id: str,
        period: Period,
        accept: Callable[[Snapshot | None, RollupState], bool],
        cache: MonthCache | None = None,
        *,
        fallback: Snapshot | None = None,
    ) -> Snapshot:
        loop = asyncio.get_running_loop()
        started = loop.time()
        patience = self._stale_after if fallback is not None else None
        lock = Lease(
            self._redis,
            SNAPSHOT_LOCK_PREFIX + snapshot_id(user_id, period.value),
            owner=uuid.uuid4().hex,
            ttl_ms=self._lock_ms,
        )
        while True:
            try:
                held = await lock.acquire()
            except RedisError as exc:
                log.warning(
                    "snapshot lock unavailable; computing unlocked", extra={"error": repr(exc)}
                )
                held = None
            if held is False:
                # Another computation of this snapshot is running: wait for it to finish.
                if patience is not None and loop.time() - started >= patience:
                    return fallback  # type: ignore[return-value]
                await asyncio.sleep(0.01)
                continue
            # The work runs in a task of its own, without the caller's deadline: a caller
            # that gives up (a gateway timeout) does not waste it, and the readers queued on
            # the lock serve its result.
            work = asyncio.create_task(
                self._locked_compute(user_id, period, accept, cache, lock if held else None),
                context=contextvars.copy_context(),
            )
            work.add_done_callback(_log_failure)
            if patience is None:
                return await asyncio.shield(work)
            try:
                remaining = max(0.0, patience - (loop.time() - started))
                return await asyncio.wait_for(asyncio.shield(work), remaining)
            except TimeoutError:
                return fallback  # type: ignore[return-value]

    async def _locked_compute(
        self,
        user_id: str,
        period: Period,
        accept: Callable[[Snapshot | None, RollupState], bool],
        cache: MonthCache | None,
        lock: Lease | None,
    ) -> Snapshot:
        deadline_var.set(None)
        renewer = asyncio.create_task(_keep(lock)) if lock is not None else None
        try:
            state, snapshot = await asyncio.gather(
                self._rollups.state(user_id), self._snapshots.get(user_id, period.value)
            )
            if accept(snapshot, state):
                assert snapshot is not None
                return snapshot
            snapshot = await self.compute(user_id, period, state, cache)
            await self._snapshots.put(snapshot)
            self._recent[(user_id, period.value)] = snapshot
            return snapshot
        finally:
            if renewer is not None:
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)
            if lock is not None:
                try:
                    await lock.release()
                except RedisError:
                    log.warning("could not release snapshot lock")

    async def compute(
        self,
        user_id: str,
        period: Period,
        state: RollupState,
        cache: MonthCache | None = None,
    ) -> Snapshot:
        """Merge the period's rollups into a snapshot document (not stored)."""
        started = time.perf_counter()
        self.computations += 1
        today = self.today()
        first, last = period.window(today)
        months = [
            month
            for month in state.months
            if (first is None or month_bounds(month)[1] >= first) and month_bounds(month)[0] <= last
        ]
        cache = cache or MonthCache(self._rollups, user_id)
        summaries = await cache.summaries(state, months)

        def inside(day: str) -> bool:
            return (first is None or day >= first.isoformat()) and day <= last.isoformat()

        # A month wholly inside the window adds its summary; one the window cuts through
        # adds the days inside it (read only for those months).
        cut = [
            month
            for month, doc in summaries.items()
            if not all(inside(day) for day in doc.day_totals)
        ]
        cut_days = await cache.days(state, cut)
        read_done = time.perf_counter()
        merged = Merged()
        per_day: dict[str, tuple[int, int]] = {}
        for month in sorted(summaries):
            if month in cut:
                days = cut_days.get(month, {})
                for day in sorted(days):
                    if inside(day):
                        merged.add(days[day])
            else:
                merged.add(summaries[month].summary)
            for day, totals in summaries[month].day_totals.items():
                if inside(day):
                    per_day[day] = totals
        resolved = merged.resolve()

        artist_ids = [artist.spotify_id for artist in resolved.artists if artist.spotify_id]
        track_ids = [track.spotify_id for track in resolved.tracks if track.spotify_id]
        top_artist_ids = [a.spotify_id for a in resolved.artists[: self._top_items] if a.spotify_id]
        merge_done = time.perf_counter()
        genres_by_artist, tracks_known, artists_known = await asyncio.gather(
            self._catalog.artist_genres(artist_ids),
            self._catalog.tracks(track_ids),
            self._catalog.artists(top_artist_ids),
        )
        genre_counts: dict[str, int] = {}
        for artist in resolved.artists:
            for genre in genres_by_artist.get(artist.spotify_id, ()) if artist.spotify_id else ():
                genre_counts[genre] = genre_counts.get(genre, 0) + artist.plays
        genres = sorted(genre_counts.items(), key=lambda item: (-item[1], item[0]))
        catalog_done = time.perf_counter()
        features = _average_features(resolved.tracks, tracks_known)

        top_artists = [
            _item_doc(artist, artists_known.get(artist.spotify_id))
            for artist in resolved.artists[: self._top_items]
        ]
        granularity = period.granularity
        trend_first = first
        if trend_first is None and state.days:
            trend_first = date.fromisoformat(min(state.days))
        trend: dict[str, list[int]] = {}
        if trend_first is not None:
            trend = {label: [0, 0] for label in granularity.labels(trend_first, last)}
        for day, (plays, ms) in per_day.items():
            point = trend.setdefault(granularity.label(date.fromisoformat(day)), [0, 0])
            point[0] += plays
            point[1] += ms
        computed_at = utc_now()
        log.info(
            "snapshot computed",
            extra={
                "user_id": user_id,
                "period": period.value,
                "plays": merged.plays,
                "months": len(summaries),
                "ms": round((time.perf_counter() - started) * 1000, 1),
                "read_ms": round((read_done - started) * 1000, 1),
                "merge_ms": round((merge_done - read_done) * 1000, 1),
                "catalog_ms": round((catalog_done - merge_done) * 1000, 1),
            },
        )
        return {
            "_id": snapshot_id(user_id, period.value),
            "user_id": user_id,
            "period": period.value,
            "version": state.version,
            "as_of": today.isoformat(),
            "timezone": self.zone.key,
            # BSON keeps milliseconds: the same value whether read back or returned now.
            "computed_at": to_millis(computed_at),
            "plays": merged.plays,
            "ms": merged.ms,
            "unique_tracks": len(resolved.tracks),
            "unique_artists": len(resolved.artists),
            "unique_albums": len(resolved.albums),
            "unique_genres": len(genres),
            "streak": current_streak(set(state.days), today),
            "top_tracks": [_item_doc(track) for track in resolved.tracks[: self._top_items]],
            "top_artists": top_artists,
            "top_albums": [_item_doc(album) for album in resolved.albums[: self._top_items]],
            "genres": [{"name": name, "plays": count} for name, count in genres],
            "hours": merged.hours,
            "weekdays": merged.weekdays,
            "avg_features": features,
            "granularity": granularity.value,
            "trend": [
                {"label": label, "plays": plays, "ms": ms}
                for label, (plays, ms) in sorted(trend.items())
            ],
        }


def _log_failure(task: asyncio.Task[Snapshot]) -> None:
    """Log a computation that failed after its caller had gone (nobody else will)."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("snapshot computation failed", extra={"error": repr(task.exception())})


async def _keep(lock: Lease) -> None:
    """Renew a held lock well within its ttl while a long computation runs."""
    while True:
        await asyncio.sleep(lock.ttl_ms / 3000)
        try:
            await lock.acquire()
        except RedisError:
            log.warning("could not renew snapshot lock")


def _item_doc(item: Item, artist: Any = None) -> dict[str, Any]:
    doc = asdict(item)
    if artist is not None and artist.HasField("image_url"):
        doc["image"] = artist.image_url
    return doc


def _average_features(tracks: list[Item], known: dict[str, Any]) -> dict[str, float] | None:
    """Play-weighted mean of each audio feature over the tracks that have it; None if none."""
    sums = dict.fromkeys(FEATURE_NAMES, 0.0)
    weights = dict.fromkeys(FEATURE_NAMES, 0)
    for track in tracks:
        catalog_track = known.get(track.spotify_id) if track.spotify_id else None
        if catalog_track is None or not catalog_track.HasField("audio_features"):
            continue
        features = catalog_track.audio_features
        for name in FEATURE_NAMES:
            if features.HasField(name):
                sums[name] += getattr(features, name) * track.plays
                weights[name] += track.plays
    if not any(weights.values()):
        return None
    return {
        name: round(sums[name] / weights[name], 3) if weights[name] else None
        for name in FEATURE_NAMES
    }
