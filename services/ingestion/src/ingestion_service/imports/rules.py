"""The import rules: which export rows are music plays, and what each play is.

Rules (the README quotes these)
-------------------------------
1. **Music plays.** Extended history: a row whose `spotify_track_uri` is
   `spotify:track:<22 base62 characters>`, with a track name and an artist name. Account
   data: a row with a non-empty `trackName` and `artistName` (no track id: the service
   recognises these by `account_play_key`).
2. **Skipped and counted, by reason** (checked in this order, first match wins):
   - `VIDEO`: a row of a `Streaming_History_Video_*` file;
   - `PODCAST`: `spotify_episode_uri` / `episode_name` / `episode_show_name` set
     (extended), `podcastName` / `episodeName` set (account);
   - `AUDIOBOOK`: any `audiobook_*` field set;
   - `MISSING_FIELDS`: a required field missing or unparsable (extended: `ts`, `ms_played`,
     and a track uri or track name; account: `endTime`, `msPlayed`, `trackName`,
     `artistName`), a negative `ms_played`, or a music row without names. Not fatal;
     the service fails a job only when no row at all is usable;
   - `LOCAL_OR_UNKNOWN_TRACK`: no usable Spotify track id (`spotify:local:...`, a null
     uri on a row that has a track name, any other uri form) or account data's
     placeholder names "Unknown Track" / "Unknown Artist";
   - `TOO_SHORT`: `ms_played` < `min_ms_played` (default 30 000 ms: Spotify's own rule
     for counting a stream; configurable);
   - `INCOGNITO`: `incognito_mode` true and `keep_incognito` false (default: kept,
     since the user chose to upload them).
3. **played_at** is when the play ENDED, aware UTC, as everywhere else (`identity.py`):
   extended `ts` (ISO 8601 with seconds, `...Z`); account `endTime` (`YYYY-MM-DD HH:MM`,
   UTC, minute precision: seconds are 0).
4. **Already stored?** Extended rows carry a track id, so their play `_id`
   (`identity.play_id`) matches the same play from live sync or an earlier import
   exactly (both truncate the same server timestamp to the second). Account rows have no
   track id and only minutes: `account_play_key(artist, track, played_at)` (normalised
   names + the minute) is what the service compares against plays it already holds.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from ingestion_service.identity import parse_spotify_time, played_at_seconds
from ingestion_service.imports.formats import (
    ImportFileKind,
    basename,
    kind_from_keys,
    kind_from_name,
)
from ingestion_service.imports.reader import ArchiveLimits, RawRow, iter_rows

_TRACK_URI = re.compile(r"spotify:track:([0-9A-Za-z]{22})")
_EPISODE_FIELDS = ("spotify_episode_uri", "episode_name", "episode_show_name")
_AUDIOBOOK_FIELDS = (
    "audiobook_uri",
    "audiobook_title",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
)
_ACCOUNT_PODCAST_FIELDS = ("podcastName", "episodeName")
# Account data names plays of local files and unavailable tracks with these placeholders.
_UNKNOWN_NAMES = frozenset({"unknown track", "unknown artist"})
_ACCOUNT_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ImportRules:
    """The configurable part of the rules (see the module docstring)."""

    min_ms_played: int = 30_000
    keep_incognito: bool = True


class SkipReason(StrEnum):
    """Why a row is not stored as a play (counted per reason in the job's result)."""

    PODCAST = "podcast"
    AUDIOBOOK = "audiobook"
    VIDEO = "video"
    TOO_SHORT = "too_short"
    INCOGNITO = "incognito"
    MISSING_FIELDS = "missing_fields"
    LOCAL_OR_UNKNOWN_TRACK = "local_or_unknown_track"


@dataclass(frozen=True)
class ImportedPlay:
    """A music play read from an export; `played_at` is the aware UTC end of the play."""

    track_id: str | None
    track_name: str
    artist_name: str
    album_name: str | None
    played_at: datetime
    ms_played: int
    source: Literal["import_extended", "import_account"]
    incognito: bool
    platform: str | None
    reason_end: str | None
    skipped: bool | None


def _text(value: Any) -> str | None:
    """A non-blank string stripped, else None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _ms(value: Any) -> int | None:
    """A non-negative whole number of milliseconds, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _optional_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


@lru_cache(maxsize=256)
def _is_video_file(source_file: str) -> bool:
    return basename(source_file).lower().startswith("streaming_history_video")


@lru_cache(maxsize=256)
def _kind_of_file(source_file: str) -> ImportFileKind | None:
    return kind_from_name(source_file)


def _parse_ts(value: Any) -> datetime | None:
    """Extended `ts` (ISO 8601, UTC) as aware UTC, else None."""
    if not isinstance(value, str) or len(value) < 16:
        return None
    try:
        return parse_spotify_time(value)
    except ValueError:
        return None


def _parse_end_time(value: Any) -> datetime | None:
    """Account `endTime` (`YYYY-MM-DD HH:MM`, UTC) as aware UTC, else None."""
    if not isinstance(value, str):
        return None
    for fmt in _ACCOUNT_TIME_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _classify_extended(row: RawRow, rules: ImportRules) -> ImportedPlay | SkipReason:
    data = row.data
    if any(data.get(field) for field in _EPISODE_FIELDS):
        return SkipReason.PODCAST
    if any(data.get(field) for field in _AUDIOBOOK_FIELDS):
        return SkipReason.AUDIOBOOK
    played_at = _parse_ts(data.get("ts"))
    ms_played = _ms(data.get("ms_played"))
    uri = data.get("spotify_track_uri")
    track_name = _text(data.get("master_metadata_track_name"))
    artist_name = _text(data.get("master_metadata_album_artist_name"))
    if played_at is None or ms_played is None or (uri is None and track_name is None):
        return SkipReason.MISSING_FIELDS
    match = _TRACK_URI.fullmatch(uri) if isinstance(uri, str) else None
    if match is None:
        return SkipReason.LOCAL_OR_UNKNOWN_TRACK
    if track_name is None or artist_name is None:
        return SkipReason.MISSING_FIELDS
    if ms_played < rules.min_ms_played:
        return SkipReason.TOO_SHORT
    incognito = data.get("incognito_mode") is True
    if incognito and not rules.keep_incognito:
        return SkipReason.INCOGNITO
    return ImportedPlay(
        track_id=match.group(1),
        track_name=track_name,
        artist_name=artist_name,
        album_name=_text(data.get("master_metadata_album_album_name")),
        played_at=played_at,
        ms_played=ms_played,
        source="import_extended",
        incognito=incognito,
        platform=_text(data.get("platform")),
        reason_end=_text(data.get("reason_end")),
        skipped=_optional_bool(data.get("skipped")),
    )


def _classify_account(row: RawRow, rules: ImportRules) -> ImportedPlay | SkipReason:
    data = row.data
    if any(data.get(field) for field in _ACCOUNT_PODCAST_FIELDS):
        return SkipReason.PODCAST
    played_at = _parse_end_time(data.get("endTime"))
    ms_played = _ms(data.get("msPlayed"))
    track_name = _text(data.get("trackName"))
    artist_name = _text(data.get("artistName"))
    if played_at is None or ms_played is None or track_name is None or artist_name is None:
        return SkipReason.MISSING_FIELDS
    if track_name.lower() in _UNKNOWN_NAMES or artist_name.lower() in _UNKNOWN_NAMES:
        return SkipReason.LOCAL_OR_UNKNOWN_TRACK
    if ms_played < rules.min_ms_played:
        return SkipReason.TOO_SHORT
    return ImportedPlay(
        track_id=None,
        track_name=track_name,
        artist_name=artist_name,
        album_name=None,
        played_at=played_at,
        ms_played=ms_played,
        source="import_account",
        incognito=False,
        platform=None,
        reason_end=None,
        skipped=None,
    )


def classify(row: RawRow, kind: ImportFileKind, rules: ImportRules) -> ImportedPlay | SkipReason:
    """Apply the rules to one row: the play it records, or why it is skipped."""
    if _is_video_file(row.source_file):
        return SkipReason.VIDEO
    if kind is ImportFileKind.ZIP:
        # A zip mixes both formats in principle: decide per member, then per row.
        kind = _kind_of_file(row.source_file) or kind_from_keys(row.data.keys()) or kind
    if kind is ImportFileKind.EXTENDED:
        return _classify_extended(row, rules)
    if kind is ImportFileKind.ACCOUNT:
        return _classify_account(row, rules)
    return SkipReason.MISSING_FIELDS


def _normalise_name(name: str) -> str:
    """Compatibility-normalised, case-folded, single-spaced, without control characters."""
    name = unicodedata.normalize("NFKC", name).casefold()
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return _SPACES.sub(" ", name).strip()


def account_play_key(artist_name: str, track_name: str, played_at: datetime) -> str:
    """Key of a play at minute precision: ``<unix minute>:<artist>\\x1f<track>`` (normalised).

    Both an account-data row and an already stored play (live sync, extended import) map to
    it, so the service can tell that an account row is a play it already holds. The minute
    is the end of the play floored to the minute (account data's `endTime` precision).
    """
    minute = played_at_seconds(played_at) // 60
    return f"{minute}:{_normalise_name(artist_name)}\x1f{_normalise_name(track_name)}"


@dataclass(frozen=True)
class Survey:
    """What one validating pass over an upload found."""

    rows: int
    usable: int
    skipped: dict[str, int]


def survey(
    path: Path, filename: str, kind: ImportFileKind, rules: ImportRules, *, limits: ArchiveLimits
) -> Survey:
    """Validate a whole upload and count its rows, the plays it would import and the skips.

    Run before anything is stored, so malformed input and input with nothing usable are
    refused up front with a clear answer instead of failing later as a job.
    """
    rows = usable = 0
    skipped: Counter[str] = Counter()
    for row in iter_rows(path, filename, limits=limits):
        rows += 1
        outcome = classify(row, kind, rules)
        if isinstance(outcome, SkipReason):
            skipped[outcome.value] += 1
        else:
            usable += 1
    return Survey(rows=rows, usable=usable, skipped=dict(skipped))
