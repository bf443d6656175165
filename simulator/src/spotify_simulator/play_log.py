"""Per-user ground truth of plays: what recently-played serves and top items are ranked from.

Each user has a log of plays sorted by `played_at` (Unix ms, unique per user). Seeded users
start with the last `seeded_plays` plays (each >= 30 s, as recently-played would list them)
of their `echostats_synthetic` history before the moment of reset, so a seeded user's log
matches a year of the same user's history generated elsewhere from
`listener_seed(user_id)`. Users added later start empty.

Tests add plays with `append` (`POST /_sim/plays`). The n-th appended play of a user always
gets the same track and context (drawn from the user's synthetic taste), however the plays
are batched, until the log is cleared or reset.

`recent_window` limits which plays the Web API can reach to the newest N, as Spotify does
with N = 50; the ground truth (`plays`) always shows everything.
"""

from __future__ import annotations

import random
import threading
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from echostats_synthetic.catalog import Catalog
from echostats_synthetic.history import (
    ListenerTaste,
    from_epoch_ms,
    listener_seed,
    listener_taste,
    recent_plays,
)
from echostats_synthetic.ids import stable_seed

from .clock import iso_utc_ms

# Spotify only lists plays that lasted at least 30 s (ref §2).
MIN_LISTED_MS = 30_000
# Shortest pause the simulator leaves between the newest logged play and a batch whose end
# it chooses itself, so that plays never overlap.
_BATCH_GAP_MS = 1_000


class PlayCollision(ValueError):
    """A new play would share its `played_at` with a logged play of the same user."""


@dataclass(frozen=True, slots=True)
class LoggedPlay:
    """One play in a user's log; `played_at_ms` is when it ended (Unix ms)."""

    track_id: str
    played_at_ms: int
    ms_played: int
    context_type: str | None = None
    context_uri: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The ground-truth view served by `GET /_sim/plays`."""
        return {
            "track_id": self.track_id,
            "played_at": iso_utc_ms(self.played_at_ms),
            "ms_played": self.ms_played,
            "context_uri": self.context_uri,
        }


def _played_at(play: LoggedPlay) -> int:
    return play.played_at_ms


class PlayLog:
    """Every user's plays, oldest first; thread-safe, never held across an `await`."""

    def __init__(self, catalog: Catalog, *, recent_window: int | None = None) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._plays: dict[str, list[LoggedPlay]] = {}
        self._appended: dict[str, int] = {}
        self._recent_window = recent_window

    # --- lifecycle ------------------------------------------------------------------------

    def reset(
        self, user_ids: list[str], *, now_ms: int, count: int, recent_window: int | None
    ) -> None:
        """Forget every play, then seed each of `user_ids` with its last `count` plays."""
        seeded = {u: self.seed_plays(u, now_ms=now_ms, count=count) for u in user_ids}
        with self._lock:
            self._plays = seeded
            self._appended = {}
            self._recent_window = recent_window

    def seed_plays(self, user_id: str, *, now_ms: int, count: int) -> list[LoggedPlay]:
        """The user's last `count` synthetic plays (>= 30 s) that ended before `now_ms`."""
        # The history's default rhythm and volume, so that a demo history generated with
        # `listener_seed(user_id)` and the defaults holds these very plays.
        plays = recent_plays(
            self.catalog,
            seed=listener_seed(user_id),
            before=from_epoch_ms(now_ms),
            count=count,
            max_lookback=timedelta(days=60),
            min_ms_played=MIN_LISTED_MS,
            taste=self.taste(user_id),
        )
        return [
            LoggedPlay(
                track_id=p.track.id,
                played_at_ms=p.played_at_ms,
                ms_played=p.ms_played,
                context_type=p.context.type if p.context else None,
                context_uri=p.context.uri if p.context else None,
            )
            for p in plays
        ]

    def taste(self, user_id: str) -> ListenerTaste:
        """The user's synthetic taste (shared per process): favourites, playlists, picks."""
        return listener_taste(self.catalog, listener_seed(user_id))

    # --- recent window --------------------------------------------------------------------

    @property
    def recent_window(self) -> int | None:
        """How many of the newest plays the Web API can reach (None: all)."""
        return self._recent_window

    def set_recent_window(self, size: int | None) -> int | None:
        """Limit Web API reachability to the newest `size` plays (None: all)."""
        if size is not None and size < 1:
            raise ValueError("recent_window must be positive or None")
        with self._lock:
            self._recent_window = size
            return size

    # --- ground truth ---------------------------------------------------------------------

    def plays(self, user_id: str) -> list[LoggedPlay]:
        """Every logged play of the user, oldest first."""
        with self._lock:
            return list(self._plays.get(user_id, ()))

    def clear(self, user_id: str | None = None) -> int:
        """Forget the plays of one user (or everyone); return how many were dropped."""
        with self._lock:
            targets = list(self._plays) if user_id is None else [user_id]
            dropped = 0
            for target in targets:
                dropped += len(self._plays.pop(target, ()))
                self._appended.pop(target, None)
            return dropped

    def append(
        self,
        user_id: str,
        *,
        count: int,
        now_ms: int,
        end_ms: int | None = None,
        spacing_ms: int | None = None,
    ) -> list[LoggedPlay]:
        """Add `count` plays, the last one ending at `end_ms`; return them oldest first.

        Without `spacing_ms` the plays run back to back, each lasting its track. With it,
        plays end `spacing_ms` apart and last `min(track, spacing_ms)`. Without `end_ms`
        the batch ends now, or later if it would otherwise overlap the newest logged play.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        taste = self.taste(user_id)
        with self._lock:
            log = self._plays.setdefault(user_id, [])
            first_index = self._appended.get(user_id, 0)
            picks = [self._pick(user_id, taste, first_index + i) for i in range(count)]
            # Offsets of each play's end from the batch's last end, and the batch's length.
            durations = [self.catalog.tracks[track_id].duration_ms for track_id, _ in picks]
            played = [d if spacing_ms is None else min(d, spacing_ms) for d in durations]
            offsets = [0] * count
            for i in range(count - 2, -1, -1):
                step = played[i + 1] if spacing_ms is None else spacing_ms
                offsets[i] = offsets[i + 1] + step
            span = offsets[0] + played[0]
            if end_ms is None:
                end_ms = now_ms
                if log:
                    end_ms = max(end_ms, log[-1].played_at_ms + _BATCH_GAP_MS + span)
            new = [
                LoggedPlay(
                    track_id=track_id,
                    played_at_ms=end_ms - offsets[i],
                    ms_played=played[i],
                    context_type=context[0] if context else None,
                    context_uri=context[1] if context else None,
                )
                for i, (track_id, context) in enumerate(picks)
            ]
            taken = {p.played_at_ms for p in log}
            clashes = [p.played_at_ms for p in new if p.played_at_ms in taken]
            if clashes:
                raise PlayCollision(
                    f"a play of {user_id!r} already ended at {iso_utc_ms(clashes[0])}"
                )
            if not log or new[0].played_at_ms > log[-1].played_at_ms:
                log.extend(new)
            else:
                log.extend(new)
                log.sort(key=_played_at)
            self._appended[user_id] = first_index + count
            return new

    def _pick(
        self, user_id: str, taste: ListenerTaste, index: int
    ) -> tuple[str, tuple[str, str] | None]:
        # One RNG per appended play, so a play's track does not depend on batching.
        rng = random.Random(stable_seed("sim-append", user_id, str(index)))
        track_id = taste.pick_track(rng)
        roll = rng.random()
        if roll < 0.35:
            return track_id, None
        if roll < 0.7:
            playlists = taste.playlists()
            playlist = playlists[int(rng.random() * len(playlists))]
            return track_id, ("playlist", playlist.uri)
        return track_id, ("album", f"spotify:album:{self.catalog.tracks[track_id].album_id}")

    # --- what the Web API sees ------------------------------------------------------------

    def _reachable(self, user_id: str) -> list[LoggedPlay]:
        log = self._plays.get(user_id, [])
        if self._recent_window is not None:
            return log[-self._recent_window :]
        return log

    def recently_played(
        self, user_id: str, *, limit: int, after: int | None = None, before: int | None = None
    ) -> tuple[list[LoggedPlay], bool]:
        """One recently-played page, newest first, and whether older reachable plays exist.

        `before=T`: the `limit` newest plays with played_at < T. `after=T`: the `limit`
        OLDEST plays with played_at > T (so paging forward never skips any). Neither: the
        `limit` newest plays.
        """
        with self._lock:
            plays = self._reachable(user_id)
            if before is not None:
                stop = bisect_left(plays, before, key=_played_at)
                begin = max(0, stop - limit)
            elif after is not None:
                begin = bisect_right(plays, after, key=_played_at)
                stop = min(len(plays), begin + limit)
            else:
                stop = len(plays)
                begin = max(0, stop - limit)
            return plays[begin:stop][::-1], begin > 0

    def ranked(self, user_id: str, *, kind: str, since_ms: int, minimum: int) -> list[str]:
        """Artist or track ids by plays since `since_ms`, most played first.

        Ties go to the more recently played. When fewer than `minimum` were played, the
        user's synthetic favourites fill the list up, as Spotify always has top items.
        """
        # Top items come from the whole log: `recent_window` limits recently-played only.
        with self._lock:
            window = [p for p in self._plays.get(user_id, ()) if p.played_at_ms >= since_ms]
        counts: Counter[str] = Counter()
        latest: dict[str, int] = {}
        for play in window:
            keys = (
                (play.track_id,)
                if kind == "tracks"
                else self.catalog.tracks[play.track_id].artist_ids
            )
            for key in keys:
                counts[key] += 1
                latest[key] = play.played_at_ms
        ranking = sorted(counts, key=lambda k: (-counts[k], -latest[k], k))
        if len(ranking) < minimum:
            taste = self.taste(user_id)
            if kind == "tracks":
                favourites = taste.favourite_track_ids(minimum)
            else:
                favourites = taste.favourite_artist_ids(minimum)
            seen = set(ranking)
            ranking += [f for f in favourites if f not in seen][: minimum - len(ranking)]
        return ranking
