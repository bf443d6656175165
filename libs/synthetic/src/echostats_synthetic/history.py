"""Deterministic synthetic listening history: which track a listener played, when, for how long.

`generate_history(catalog, seed=..., start=..., end=...)` streams `SyntheticPlay`s with
strictly increasing `played_at`. It is a generator whose caches are bounded by the catalog
size, so a million plays stream in constant memory.

Determinism: every draw comes from an RNG seeded by the seed and the local listening day
(plus per-listener, per-artist and per-4-week RNGs), never from the clock or global state.
A play therefore depends only on the catalog, the seed, the parameters and its own day, so
windows agree where they overlap: the plays of `[a, c)` are those of `[a, b)` followed by
those of `[b, c)`. That is what lets the simulator seed "the last day" of a user whose year
of history was imported elsewhere from the same seed (`listener_seed(user_id)`).

The model:
- Taste (`ListenerTaste`): the listener ranks artists (weighted towards popular artists and
  two or three favourite genres) and picks them by a Zipf law; tracks within an artist are
  Zipf-distributed too. A 4-week rotation of "current obsessions" and a little discovery of
  random catalog tracks keep the long tail alive (hundreds of artists a year).
- Days: a listening day runs from 05:00 to 05:00 local time, so the quiet night is the seam
  and sessions never cross it. Some days have no plays, and a few multi-day breaks happen.
  The volume of a day varies around `plays_per_day` times a weekday factor.
- Sessions: start times follow weekday or weekend hourly curves (commute and evening peaks
  on weekdays; late mornings and long evenings at weekends). A session is a run of plays
  back to back in one context: an album in order, an artist, one of the listener's
  playlists, or no context.
- Plays: `played_at` is when the play ENDED (as in Spotify's API and exports). Some plays
  are skipped (`ms_played` shorter than the track), a few are immediate repeats.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import accumulate
from typing import NamedTuple

from .catalog import Catalog
from .ids import image_url, stable_id, stable_seed

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_HOUR_MS = 3_600_000
_DAY = timedelta(days=1)

# --- taste ---------------------------------------------------------------------------------
ZIPF_ARTISTS = 1.0  # weight of the artist at rank r is 1 / (r + 1) ** s
ZIPF_TRACKS = 0.9
DISCOVERY_RATE = 0.06  # share of plays that are a random catalog track
ROTATION_RATE = 0.2  # share of plays from the current 4-week "obsessions"
ROTATION_DAYS = 28
ROTATION_SIZE = 3
FAVOURITE_GENRE_BOOST = 6.0
PLAYLIST_COUNT = 6

# --- rhythm --------------------------------------------------------------------------------
DAY_START_HOUR = 5  # a listening day runs 05:00 -> 05:00 local time
# Relative chance that a session starts in each local hour, 00..23.
# fmt: off
WEEKDAY_HOURS = (0.25, 0.12, 0.06, 0.04, 0.04, 0.10, 0.45, 1.50, 1.90, 1.10, 0.80, 0.85,
                 1.25, 1.05, 0.85, 0.85, 1.05, 1.55, 1.75, 1.95, 2.25, 2.10, 1.50, 0.70)
WEEKEND_HOURS = (0.80, 0.55, 0.30, 0.15, 0.08, 0.05, 0.08, 0.20, 0.50, 1.00, 1.40, 1.55,
                 1.55, 1.45, 1.40, 1.40, 1.45, 1.55, 1.75, 2.00, 2.20, 2.10, 1.70, 1.20)
# fmt: on
WEEKDAY_VOLUME = (0.95, 1.0, 1.0, 1.05, 1.15, 1.1, 0.8)  # Monday .. Sunday
DAY_VOLUME_SHAPE = 2.5  # gamma shape of day-to-day volume noise (mean 1)
BREAK_RATE = 0.25  # chance that a 4-week block holds a 2-6 day break
SESSION_MEDIAN_PLAYS = 7.0
SESSION_SIGMA = 0.75
SESSION_PAUSE_MS = (5 * 60_000, 45 * 60_000)  # least/most quiet time between sessions
REPEAT_RATE = 0.03
EARLY_SKIP_SHARE = 0.6  # skips within the first seconds vs. somewhere later

_CONTEXT_KINDS = ("playlist", "album", "artist", None)
_CONTEXT_CUM_WEIGHTS = tuple(accumulate((35, 15, 15, 35)))
_PLAYLIST_NAMES = (
    "Morning Commute", "Deep Focus", "Running Mix", "Sunday Slow", "Late Night Drive",
    "Kitchen Dancing", "Throwbacks", "Rainy Days", "Gym Rotation", "Road Trip", "Chill Evenings",
    "Summer Anthems", "Study Beats", "Feel Good", "Heartbreak Hotel", "New Finds",
)  # fmt: skip


class ArtistRef(NamedTuple):
    """An artist as a play record names it: `(id, name)`."""

    id: str
    name: str


class AlbumRef(NamedTuple):
    """An album as a play record names it: `(id, name, image_url)` (640 px cover)."""

    id: str
    name: str
    image_url: str


class PlayContext(NamedTuple):
    """What the play was started from: `(type, uri)`, type `album`, `artist` or `playlist`."""

    type: str
    uri: str


@dataclass(frozen=True, slots=True)
class PlayedTrack:
    """The track of a play, with the names an export or a feed needs."""

    id: str
    name: str
    artists: tuple[ArtistRef, ...]
    album: AlbumRef
    duration_ms: int

    @property
    def uri(self) -> str:
        """The track's Spotify URI."""
        return f"spotify:track:{self.id}"


@dataclass(frozen=True, slots=True)
class SyntheticPlay:
    """One play; `played_at` is the aware UTC instant the play ended."""

    track: PlayedTrack
    played_at: datetime
    ms_played: int
    context: PlayContext | None

    @property
    def played_at_ms(self) -> int:
        """`played_at` as Unix milliseconds (exact)."""
        return to_epoch_ms(self.played_at)

    @property
    def skipped(self) -> bool:
        """True if the listener left the track before its end."""
        return self.ms_played < self.track.duration_ms


@dataclass(frozen=True, slots=True)
class SyntheticPlaylist:
    """One of a listener's own playlists (the `playlist` contexts of their plays)."""

    id: str
    name: str
    description: str
    track_ids: tuple[str, ...]

    @property
    def uri(self) -> str:
        """The playlist's Spotify URI."""
        return f"spotify:playlist:{self.id}"


def to_epoch_ms(moment: datetime) -> int:
    """Unix milliseconds of an aware datetime, computed exactly (no float rounding)."""
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return (moment - _EPOCH) // _ONE_MS


def from_epoch_ms(epoch_ms: int) -> datetime:
    """The aware UTC datetime of Unix milliseconds, exactly."""
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def listener_seed(user_id: str) -> int:
    """The history seed of a user id, shared by the simulator and the demo-data importer."""
    return stable_seed("listener", user_id)


def _zipf_cum_weights(n: int, exponent: float) -> list[float]:
    return list(accumulate(1.0 / (rank + 1) ** exponent for rank in range(n)))


class ListenerTaste:
    """One listener's deterministic taste over a catalog: ranked artists, tracks, playlists."""

    def __init__(self, catalog: Catalog, *, seed: int) -> None:
        self.catalog = catalog
        self.seed = seed
        rng = random.Random(stable_seed("taste", str(seed)))
        playable = [a for a, ids in catalog.artist_track_ids.items() if ids]
        if not playable:
            raise ValueError("the catalog has no artist with tracks")
        # Favourite genres: the main genre of a few artists this listener happens to love.
        loved = rng.sample(playable, k=min(3, len(playable)))
        favourite_genres = {g for a in loved for g in catalog.artists[a].genres[:1]}

        def weight(artist_id: str) -> float:
            artist = catalog.artists[artist_id]
            boost = FAVOURITE_GENRE_BOOST if favourite_genres.intersection(artist.genres) else 1
            return (1 + artist.popularity) * boost

        # A weighted random permutation (exponential keys): favourites first.
        self.favourite_genres = tuple(sorted(favourite_genres))
        self.artist_ids: tuple[str, ...] = tuple(
            sorted(playable, key=lambda a: rng.expovariate(weight(a)))
        )
        self._artist_cum = _zipf_cum_weights(len(self.artist_ids), ZIPF_ARTISTS)
        self._track_ids = tuple(catalog.tracks)
        self._by_artist: dict[str, tuple[tuple[str, ...], list[float]]] = {}
        self._albums_of: dict[str, tuple[str, ...]] = {}
        self._rotations: dict[int, tuple[str, ...]] = {}
        self._playlists: tuple[SyntheticPlaylist, ...] | None = None

    # --- ranking --------------------------------------------------------------------------

    def artist_tracks(self, artist_id: str) -> tuple[str, ...]:
        """The artist's tracks, this listener's favourite first."""
        return self._artist_tracks(artist_id)[0]

    def _artist_tracks(self, artist_id: str) -> tuple[tuple[str, ...], list[float]]:
        cached = self._by_artist.get(artist_id)
        if cached is None:
            rng = random.Random(stable_seed("taste", str(self.seed), artist_id))
            tracks = self.catalog.tracks
            ordered = sorted(
                self.catalog.artist_track_ids[artist_id],
                key=lambda t: rng.expovariate(1 + tracks[t].popularity),
            )
            cached = (tuple(ordered), _zipf_cum_weights(len(ordered), ZIPF_TRACKS))
            self._by_artist[artist_id] = cached
        return cached

    def favourite_artist_ids(self, n: int) -> list[str]:
        """The `n` artists this listener plays most, in expected play-count order."""
        return list(self.artist_ids[:n])

    def favourite_track_ids(self, n: int) -> list[str]:
        """The `n` tracks with the highest expected play share, most played first."""
        artist_weights = [1.0 / (r + 1) ** ZIPF_ARTISTS for r in range(n)]
        scored: dict[str, float] = {}
        for artist_id, artist_weight in zip(self.artist_ids[:n], artist_weights, strict=False):
            ordered, cum = self._artist_tracks(artist_id)
            for rank, track_id in enumerate(ordered[:n]):
                share = artist_weight / (rank + 1) ** ZIPF_TRACKS / cum[-1]
                scored[track_id] = scored.get(track_id, 0.0) + share
        return sorted(scored, key=lambda t: (-scored[t], t))[:n]

    def rotation(self, period: int) -> tuple[str, ...]:
        """The artists this listener is hooked on during 4-week period `period`."""
        cached = self._rotations.get(period)
        if cached is None:
            rng = random.Random(stable_seed("rotation", str(self.seed), str(period)))
            pool = self.artist_ids[2:150] or self.artist_ids
            cached = tuple(rng.sample(pool, k=min(ROTATION_SIZE, len(pool))))
            if len(self._rotations) > 16:
                self._rotations.clear()
            self._rotations[period] = cached
        return cached

    # --- drawing --------------------------------------------------------------------------

    def pick_artist(self, rng: random.Random, rotation: Sequence[str] = ()) -> str:
        """Draw an artist: mostly by rank (Zipf), sometimes from the current rotation."""
        if rotation and rng.random() < ROTATION_RATE:
            return rotation[int(rng.random() * len(rotation))]
        cum = self._artist_cum
        return self.artist_ids[bisect(cum, rng.random() * cum[-1])]

    def pick_artist_track(self, rng: random.Random, artist_id: str) -> str:
        """Draw one of the artist's tracks, favourites most often."""
        ordered, cum = self._artist_tracks(artist_id)
        return ordered[bisect(cum, rng.random() * cum[-1])]

    def pick_track(self, rng: random.Random, rotation: Sequence[str] = ()) -> str:
        """Draw the next track this listener plays outside an album or artist context."""
        if rng.random() < DISCOVERY_RATE:
            return self._track_ids[int(rng.random() * len(self._track_ids))]
        return self.pick_artist_track(rng, self.pick_artist(rng, rotation))

    def albums_of(self, artist_id: str) -> tuple[str, ...]:
        """Albums released by the artist (not ones they only guest on)."""
        cached = self._albums_of.get(artist_id)
        if cached is None:
            albums = self.catalog.albums
            tracks = self.catalog.tracks
            owned = (tracks[t].album_id for t in self.catalog.artist_track_ids[artist_id])
            cached = tuple(a for a in dict.fromkeys(owned) if albums[a].artist_ids[0] == artist_id)
            self._albums_of[artist_id] = cached
        return cached

    def playlists(self) -> tuple[SyntheticPlaylist, ...]:
        """The listener's own playlists, stable for the seed (ids derived, not drawn)."""
        if self._playlists is None:
            rng = random.Random(stable_seed("playlists", str(self.seed)))
            names = rng.sample(_PLAYLIST_NAMES, k=PLAYLIST_COUNT)
            made = []
            for index, name in enumerate(names):
                size = rng.randint(12, 60)
                picks = dict.fromkeys(self.pick_track(rng) for _ in range(size * 2))
                made.append(
                    SyntheticPlaylist(
                        id=stable_id("playlist", str(self.seed), str(index)),
                        name=name,
                        description=rng.choice(("", "", f"{name.lower()}, on repeat")),
                        track_ids=tuple(list(picks)[:size]),
                    )
                )
            self._playlists = tuple(made)
        return self._playlists


# Tastes are deterministic and only memoise inside, so one per (catalog, seed) can serve a
# whole process (every simulator app of a test run, every call of `generate_history`).
# The entry keeps its catalog alive, so an `id()` cannot be reused while it is cached.
_TASTE_CACHE_SIZE = 64
_tastes: dict[tuple[int, int], tuple[Catalog, ListenerTaste]] = {}


def listener_taste(catalog: Catalog, seed: int) -> ListenerTaste:
    """The shared `ListenerTaste` of `seed` over `catalog`, cached per process."""
    key = (id(catalog), seed)
    hit = _tastes.get(key)
    if hit is not None and hit[0] is catalog:
        return hit[1]
    taste = ListenerTaste(catalog, seed=seed)
    if len(_tastes) >= _TASTE_CACHE_SIZE:
        _tastes.pop(next(iter(_tastes)), None)
    _tastes[key] = (catalog, taste)
    return taste


# --- the generator -------------------------------------------------------------------------


def _listening_day_cum(hours: Sequence[float]) -> list[float]:
    # Reorder 00..23 weights so index 0 is DAY_START_HOUR, matching offsets from day start.
    ordered = [hours[(DAY_START_HOUR + i) % 24] for i in range(24)]
    return list(accumulate(ordered))


_WEEKDAY_CUM = _listening_day_cum(WEEKDAY_HOURS)
_WEEKEND_CUM = _listening_day_cum(WEEKEND_HOURS)
_SESSION_MU = math.log(SESSION_MEDIAN_PLAYS)

_Row = tuple[int, str, int, PlayContext | None]


class _HistoryModel:
    """Per-call state of `generate_history`: taste, parameters and record caches."""

    def __init__(
        self,
        catalog: Catalog,
        taste: ListenerTaste,
        *,
        seed: int,
        plays_per_day: float,
        skip_rate: float,
        gap_day_rate: float,
        with_ms: bool,
    ) -> None:
        self.catalog = catalog
        self.taste = taste
        self.seed = seed
        self.plays_per_day = plays_per_day
        self.skip_rate = skip_rate
        self.gap_day_rate = gap_day_rate
        self.with_ms = with_ms
        self._played: dict[str, PlayedTrack] = {}
        self._artists: dict[str, ArtistRef] = {}
        self._albums: dict[str, AlbumRef] = {}
        self._breaks: dict[int, range] = {}
        playlists = taste.playlists()
        self._playlists = tuple(
            (PlayContext("playlist", p.uri), p.track_ids) for p in playlists if p.track_ids
        )
        self._playlist_cum = _zipf_cum_weights(len(self._playlists), 1.0)

    def played_track(self, track_id: str) -> PlayedTrack:
        """The play-record view of a catalog track (cached)."""
        played = self._played.get(track_id)
        if played is None:
            track = self.catalog.tracks[track_id]
            artists = []
            for artist_id in track.artist_ids:
                ref = self._artists.get(artist_id)
                if ref is None:
                    ref = ArtistRef(artist_id, self.catalog.artists[artist_id].name)
                    self._artists[artist_id] = ref
                artists.append(ref)
            album = self._albums.get(track.album_id)
            if album is None:
                name = self.catalog.albums[track.album_id].name
                album = AlbumRef(track.album_id, name, image_url("album", track.album_id))
                self._albums[track.album_id] = album
            played = PlayedTrack(track.id, track.name, tuple(artists), album, track.duration_ms)
            self._played[track_id] = played
        return played

    def _on_break(self, ordinal: int) -> bool:
        block = ordinal // ROTATION_DAYS
        days = self._breaks.get(block)
        if days is None:
            rng = random.Random(stable_seed("break", str(self.seed), str(block)))
            days = range(0)
            if rng.random() < BREAK_RATE:
                length = rng.randint(2, 6)
                first = block * ROTATION_DAYS + rng.randrange(ROTATION_DAYS - length)
                days = range(first, first + length)
            if len(self._breaks) > 16:
                self._breaks.clear()
            self._breaks[block] = days
        return ordinal in days

    def day(self, day: date, day_start: int, day_end: int) -> list[_Row]:
        """Every play of one listening day as `(end_ms, track_id, ms_played, context)`."""
        ordinal = day.toordinal()
        rng = random.Random(stable_seed("day", str(self.seed), str(ordinal)))
        if rng.random() < self.gap_day_rate or self._on_break(ordinal):
            return []
        weekday = day.weekday()
        volume = self.plays_per_day * WEEKDAY_VOLUME[weekday]
        target = max(1, round(volume * rng.gammavariate(DAY_VOLUME_SHAPE, 1 / DAY_VOLUME_SHAPE)))
        lengths = []
        while target > 0:
            length = min(target, max(1, int(rng.lognormvariate(_SESSION_MU, SESSION_SIGMA))))
            lengths.append(length)
            target -= length
        hours = _WEEKEND_CUM if weekday >= 5 else _WEEKDAY_CUM
        total = hours[-1]
        starts = sorted(
            day_start + int((bisect(hours, rng.random() * total) + rng.random()) * _HOUR_MS)
            for _ in lengths
        )
        rotation = self.taste.rotation(ordinal // ROTATION_DAYS)
        rows: list[_Row] = []
        free_at = day_start
        last = day_start
        for start, length in zip(starts, lengths, strict=True):
            at = max(start, free_at)
            if at >= day_end:
                break
            at, last = self._session(rng, rows, length, rotation, at, last, day_end)
            free_at = at + rng.randint(*SESSION_PAUSE_MS)
        return rows

    def _session(
        self,
        rng: random.Random,
        rows: list[_Row],
        length: int,
        rotation: tuple[str, ...],
        at: int,
        last: int,
        day_end: int,
    ) -> tuple[int, int]:
        """Append one session's plays to `rows`; return (when it ended, last played_at)."""
        taste = self.taste
        tracks = self.catalog.tracks
        kind = _CONTEXT_KINDS[bisect(_CONTEXT_CUM_WEIGHTS, rng.random() * 100)]
        context: PlayContext | None = None
        queue: Sequence[str] = ()  # tracks played in order (album) or drawn from (playlist)
        artist_id = ""
        if kind == "playlist" and self._playlists:
            cum = self._playlist_cum
            context, queue = self._playlists[bisect(cum, rng.random() * cum[-1])]
        elif kind in ("album", "artist"):
            artist_id = taste.pick_artist(rng, rotation)
            albums = taste.albums_of(artist_id) if kind == "album" else ()
            if albums:
                album_id = albums[int(rng.random() * len(albums))]
                context = PlayContext("album", f"spotify:album:{album_id}")
                queue = self.catalog.albums[album_id].track_ids
                # Most album sessions start at track one; some jump in.
                if rng.random() > 0.7:
                    queue = queue[int(rng.random() * len(queue)) :]
            else:
                context = PlayContext("artist", f"spotify:artist:{artist_id}")
        in_order = context is not None and context.type == "album"
        previous = ""
        step = 1 if self.with_ms else 1000
        for index in range(length):
            if in_order:
                if index >= len(queue):
                    break
                track_id = queue[index]
            elif previous and rng.random() < REPEAT_RATE:
                track_id = previous
            elif queue:
                track_id = queue[int(rng.random() * len(queue))]
            elif artist_id:
                track_id = taste.pick_artist_track(rng, artist_id)
            else:
                track_id = taste.pick_track(rng, rotation)
            duration = tracks[track_id].duration_ms
            ms_played = duration
            if rng.random() < self.skip_rate:
                if rng.random() < EARLY_SKIP_SHARE:
                    ms_played = 1000 + int(rng.expovariate(1 / 12_000))
                else:
                    ms_played = int(duration * rng.uniform(0.2, 0.95))
                ms_played = max(1000, min(ms_played, duration - 1000))
            end = at + ms_played
            if not self.with_ms:
                end -= end % 1000
            if end <= last:
                end = last + step
            if end >= day_end:
                return day_end, last
            rows.append((end, track_id, ms_played, context))
            last = end
            # Gapless most of the time; now and then the listener pauses a while.
            # (`int(random() * n)` rather than `randint`: this runs once per play.)
            pause = rng.random()
            at = end + (int(pause * 1500) if pause > 0.03 else 10_000 + int(pause * 9_700_000))
            previous = track_id
        return at, last


def _local_day_start_ms(day: date, tz: tzinfo) -> int:
    return to_epoch_ms(datetime(day.year, day.month, day.day, DAY_START_HOUR, tzinfo=tz))


def _stream(
    model: _HistoryModel, start_ms: int, end_ms: int, tz: tzinfo, min_ms_played: int
) -> Iterator[SyntheticPlay]:
    # Start one day early: the listening day of `start`'s date - 1 may run into `start`.
    day = from_epoch_ms(start_ms).astimezone(tz).date() - _DAY
    while True:
        day_start = _local_day_start_ms(day, tz)
        if day_start >= end_ms:
            return
        day_end = _local_day_start_ms(day + _DAY, tz)
        if day_end > start_ms:
            for end, track_id, ms_played, context in model.day(day, day_start, day_end):
                if end < start_ms or ms_played < min_ms_played:
                    continue
                if end >= end_ms:
                    return
                yield SyntheticPlay(
                    model.played_track(track_id),
                    _EPOCH + timedelta(milliseconds=end),
                    ms_played,
                    context,
                )
        day += _DAY


def generate_history(
    catalog: Catalog,
    *,
    seed: int,
    start: datetime,
    end: datetime,
    plays_per_day: float = 40.0,
    skip_rate: float = 0.15,
    gap_day_rate: float = 0.04,
    min_ms_played: int = 0,
    tz: tzinfo = UTC,
    with_ms: bool = True,
    taste: ListenerTaste | None = None,
) -> Iterator[SyntheticPlay]:
    """Stream the plays that ended in `[start, end)`, oldest first, for listener `seed`.

    `plays_per_day` is the mean over days with listening (before skips are filtered);
    `tz` sets the listener's local time for the daily rhythm; `min_ms_played=30_000`
    keeps only plays Spotify's recently-played would list; `with_ms=False` gives whole
    seconds like the export files. Arguments are checked at call time, not at first use.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if plays_per_day <= 0:
        raise ValueError("plays_per_day must be positive")
    if not 0 <= skip_rate < 1 or not 0 <= gap_day_rate < 1:
        raise ValueError("skip_rate and gap_day_rate must be in [0, 1)")
    if taste is None:
        taste = listener_taste(catalog, seed)
    elif taste.catalog is not catalog:
        raise ValueError("taste was built for another catalog")
    model = _HistoryModel(
        catalog,
        taste,
        seed=seed,
        plays_per_day=plays_per_day,
        skip_rate=skip_rate,
        gap_day_rate=gap_day_rate,
        with_ms=with_ms,
    )
    return _stream(model, to_epoch_ms(start), to_epoch_ms(end), tz, min_ms_played)


def recent_plays(
    catalog: Catalog,
    *,
    seed: int,
    before: datetime,
    count: int,
    max_lookback: timedelta = timedelta(days=120),
    plays_per_day: float = 40.0,
    skip_rate: float = 0.15,
    gap_day_rate: float = 0.04,
    min_ms_played: int = 0,
    tz: tzinfo = UTC,
    with_ms: bool = True,
    taste: ListenerTaste | None = None,
) -> list[SyntheticPlay]:
    """The last `count` plays that ended before `before`, oldest first.

    Fewer if the listener played less within `max_lookback`. The other arguments mean
    what they mean for `generate_history`, so these are exactly its last `count` plays.
    """
    if count <= 0:
        return []
    taste = taste or listener_taste(catalog, seed)
    span = _DAY
    while True:
        history = generate_history(
            catalog,
            seed=seed,
            start=before - span,
            end=before,
            plays_per_day=plays_per_day,
            skip_rate=skip_rate,
            gap_day_rate=gap_day_rate,
            min_ms_played=min_ms_played,
            tz=tz,
            with_ms=with_ms,
            taste=taste,
        )
        plays = list(history)
        if len(plays) >= count or span >= max_lookback:
            return plays[-count:]
        span = min(span * 2, max_lookback)
