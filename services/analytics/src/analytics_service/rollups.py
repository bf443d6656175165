"""Daily rollups: what one local day of one user's plays adds up to, and how rollups merge.

A rollup (one local day, or a month's summary of its days) is a plain document:

    {"plays": int, "ms": int, "hours": [24 ints], "weekdays": [7 ints, Monday first],
     "tracks": [[track_key, plays, ms, track_name, track_id, artist_key, artist_name,
                 artist_id, album_key, album_name, album_id, album_image], ...]}

Everything a figure needs is there; artists and albums are derived from the track rows at
merge time (a track key fixes its primary artist and album). Rows are sorted by key and a
row's names come from the day's latest play, so building the same plays twice gives the
same document (replays change nothing, and an unchanged day is not rewritten).

Identity rules (documented in the README, "Analytics"):
- a track is its Spotify id; plays without one (account-data imports) are keyed by the
  folded track and artist names (`~name\x1fartist`);
- a play counts for its **primary** artist (the first one; its name is the one the play
  carries): the artist's Spotify id, else `~folded name`;
- an album is its Spotify id, else `~folded album\x1fartist` (plays without an album name
  have no album);
- when merging, a name-keyed item whose folded names match an id-keyed item of the same
  merge is counted as that item, so an import without ids and a live sync with ids of the
  same listening do not show up twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

Rollup = dict[str, Any]

# Positions in a track row.
T_KEY, T_PLAYS, T_MS, T_NAME, T_ID = 0, 1, 2, 3, 4
A_KEY, A_NAME, A_ID = 5, 6, 7
L_KEY, L_NAME, L_ID, L_IMAGE = 8, 9, 10, 11
NAME_KEY_PREFIX = "~"
SEPARATOR = "\x1f"


def fold(name: str) -> str:
    """Case- and space-insensitive form of a name (for name keys)."""
    return " ".join(name.casefold().split())


def track_name_key(name: str, artist_name: str) -> str:
    """The key of a track known only by its names."""
    return f"{NAME_KEY_PREFIX}{fold(name)}{SEPARATOR}{fold(artist_name)}"


def artist_name_key(name: str) -> str:
    """The key of an artist known only by name."""
    return f"{NAME_KEY_PREFIX}{fold(name)}"


def album_name_key(name: str, artist_name: str) -> str:
    """The key of an album known only by its names."""
    return f"{NAME_KEY_PREFIX}{fold(name)}{SEPARATOR}{fold(artist_name)}"


def is_name_key(key: str) -> bool:
    """Whether a key is name-based (no Spotify id known)."""
    return key.startswith(NAME_KEY_PREFIX)


class PlayFacts(NamedTuple):
    """What a rollup needs of one play (built from ingestion's Play message).

    A NamedTuple: a rebuild makes one per play, and tuples are the cheapest to build.
    """

    local_time: datetime
    ms: int
    track_id: str
    track_name: str
    artist_id: str
    artist_name: str
    album_id: str
    album_name: str
    album_image: str

    def track_row_meta(self) -> list[Any]:
        """A track row without the counters (key, 0, 0, names and ids)."""
        track_key = self.track_id or track_name_key(self.track_name, self.artist_name)
        artist_key = self.artist_id or (
            artist_name_key(self.artist_name) if self.artist_name else ""
        )
        if self.album_id:
            album_key = self.album_id
        elif self.album_name:
            album_key = album_name_key(self.album_name, self.artist_name)
        else:
            album_key = ""
        return [
            track_key,
            0,
            0,
            self.track_name,
            self.track_id,
            artist_key,
            self.artist_name,
            self.artist_id,
            album_key,
            self.album_name,
            self.album_id,
            self.album_image,
        ]


class DayBuilder:
    """Accumulates one local day's plays into its rollup."""

    def __init__(self) -> None:
        self.plays = 0
        self.ms = 0
        self.hours = [0] * 24
        self.weekday = -1
        # track key -> (row, time of the play that gave the row its names)
        self._tracks: dict[str, tuple[list[Any], datetime]] = {}

    def add(self, play: PlayFacts) -> None:
        """Count one play."""
        self.plays += 1
        self.ms += play.ms
        self.hours[play.local_time.hour] += 1
        self.weekday = play.local_time.weekday()
        meta = play.track_row_meta()
        current = self._tracks.get(meta[T_KEY])
        if current is None:
            row, latest = meta, play.local_time
        else:
            row, latest = current
            if play.local_time > latest or (play.local_time == latest and meta[3:] > row[3:]):
                meta[T_PLAYS], meta[T_MS] = row[T_PLAYS], row[T_MS]
                row, latest = meta, play.local_time
        row[T_PLAYS] += 1
        row[T_MS] += play.ms
        self._tracks[meta[T_KEY]] = (row, latest)

    def rollup(self) -> Rollup:
        """The day's rollup document."""
        weekdays = [0] * 7
        if self.weekday >= 0:
            weekdays[self.weekday] = self.plays
        return {
            "plays": self.plays,
            "ms": self.ms,
            "hours": list(self.hours),
            "weekdays": weekdays,
            "tracks": [row for _, (row, _) in sorted(self._tracks.items())],
        }


TRACK_COLUMNS = (
    "key",
    "plays",
    "ms",
    "name",
    "id",
    "artist_key",
    "artist_name",
    "artist_id",
    "album_key",
    "album_name",
    "album_id",
    "album_image",
)


def to_document(rollup: Rollup) -> dict[str, Any]:
    """A rollup as stored: track rows as parallel columns (FerretDB has no nested arrays)."""
    rows = rollup["tracks"]
    columns = {name: [row[index] for row in rows] for index, name in enumerate(TRACK_COLUMNS)}
    return {**rollup, "tracks": columns}


def from_document(document: Mapping[str, Any]) -> Rollup:
    """A stored rollup back in its row form."""
    columns = document["tracks"]
    rows = [list(row) for row in zip(*(columns[name] for name in TRACK_COLUMNS), strict=True)]
    return {
        "plays": document["plays"],
        "ms": document["ms"],
        "hours": list(document["hours"]),
        "weekdays": list(document["weekdays"]),
        "tracks": rows,
    }


def empty_rollup() -> Rollup:
    """A rollup of no plays."""
    return {"plays": 0, "ms": 0, "hours": [0] * 24, "weekdays": [0] * 7, "tracks": []}


@dataclass
class Merged:
    """Rollups added together, with artists and albums derived from the track rows."""

    plays: int = 0
    ms: int = 0
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    weekdays: list[int] = field(default_factory=lambda: [0] * 7)
    # key -> row (the counters are the merged ones; names from the latest rollup added)
    tracks: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, rollup: Mapping[str, Any]) -> None:
        """Add one rollup (days in chronological order keep the latest names)."""
        self.plays += rollup["plays"]
        self.ms += rollup["ms"]
        hours, weekdays = self.hours, self.weekdays
        for hour, count in enumerate(rollup["hours"]):
            hours[hour] += count
        for day, count in enumerate(rollup["weekdays"]):
            weekdays[day] += count
        tracks = self.tracks
        for row in rollup["tracks"]:
            key = row[T_KEY]
            current = tracks.get(key)
            if current is None:
                tracks[key] = list(row)
            else:
                plays, ms = current[T_PLAYS] + row[T_PLAYS], current[T_MS] + row[T_MS]
                current[:] = row
                current[T_PLAYS], current[T_MS] = plays, ms

    def as_rollup(self) -> Rollup:
        """The merge as a rollup document (a month's summary)."""
        return {
            "plays": self.plays,
            "ms": self.ms,
            "hours": list(self.hours),
            "weekdays": list(self.weekdays),
            "tracks": [self.tracks[key] for key in sorted(self.tracks)],
        }

    def resolve(self) -> Resolved:
        """Tracks, artists and albums with name-keyed items folded into id-keyed ones."""
        return resolve(self.tracks.values())


@dataclass(frozen=True, slots=True)
class Item:
    """A counted track, artist or album."""

    key: str
    plays: int
    ms: int
    name: str
    spotify_id: str
    # Tracks: the primary artist's key/name/id; albums: the album's artist name.
    artist_name: str = ""
    artist_id: str = ""
    album_name: str = ""
    album_id: str = ""
    image: str = ""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A merge's items, each list ranked (plays, then ms, then name, then key)."""

    tracks: list[Item]
    artists: list[Item]
    albums: list[Item]


def _rank(items: Iterable[Item]) -> list[Item]:
    return sorted(items, key=lambda item: (-item.plays, -item.ms, fold(item.name), item.key))


def resolve(rows: Iterable[list[Any]]) -> Resolved:
    """Turn merged track rows into ranked tracks, artists and albums (see module docs)."""
    rows = list(rows)
    track_alias = {
        track_name_key(row[T_NAME], row[A_NAME]): row[T_KEY]
        for row in rows
        if not is_name_key(row[T_KEY])
    }
    artist_alias = {
        artist_name_key(row[A_NAME]): row[A_KEY]
        for row in rows
        if row[A_KEY] and not is_name_key(row[A_KEY])
    }
    album_alias = {
        album_name_key(row[L_NAME], row[A_NAME]): row[L_KEY]
        for row in rows
        if row[L_KEY] and not is_name_key(row[L_KEY])
    }
    tracks: dict[str, list[Any]] = {}
    artists: dict[str, list[Any]] = {}
    albums: dict[str, list[Any]] = {}
    # Id-keyed rows first, so an alias always lands on an entry that holds the id's names.
    for row in sorted(rows, key=lambda row: is_name_key(row[T_KEY])):
        plays, ms = row[T_PLAYS], row[T_MS]
        track_key = track_alias.get(row[T_KEY], row[T_KEY])
        _count(tracks, track_key, plays, ms, row, _track_item_fields)
        artist_key = artist_alias.get(row[A_KEY], row[A_KEY])
        if artist_key:
            _count(artists, artist_key, plays, ms, row, _artist_item_fields)
        album_key = album_alias.get(row[L_KEY], row[L_KEY])
        if album_key:
            _count(albums, album_key, plays, ms, row, _album_item_fields)
    return Resolved(
        tracks=_rank(Item(key, *fields) for key, fields in tracks.items()),
        artists=_rank(Item(key, *fields) for key, fields in artists.items()),
        albums=_rank(Item(key, *fields) for key, fields in albums.items()),
    )


def _track_item_fields(row: list[Any]) -> list[Any]:
    return [row[T_NAME], row[T_ID], row[A_NAME], row[A_ID], row[L_NAME], row[L_ID], row[L_IMAGE]]


def _artist_item_fields(row: list[Any]) -> list[Any]:
    return [row[A_NAME], row[A_ID], "", "", "", "", ""]


def _album_item_fields(row: list[Any]) -> list[Any]:
    return [row[L_NAME], row[L_ID], row[A_NAME], row[A_ID], "", "", row[L_IMAGE]]


def _count(
    into: dict[str, list[Any]],
    key: str,
    plays: int,
    ms: int,
    row: list[Any],
    fields_of: Callable[[list[Any]], list[Any]],
) -> None:
    entry = into.get(key)
    if entry is None:
        into[key] = [plays, ms, *fields_of(row)]
        return
    entry[0] += plays
    entry[1] += ms
    # An image learnt from any of the item's rows beats none.
    if not entry[-1] and fields_of is not _artist_item_fields and row[L_IMAGE]:
        entry[-1] = row[L_IMAGE]
