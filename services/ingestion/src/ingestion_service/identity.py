"""The identity of a play, defined once: what makes two reports of a play the same play.

Rule
----
A play's `_id` is ``"<user_id>:<track_id>:<played_at as whole Unix seconds>"``, where
`played_at` is the moment the play **ended** (Spotify reports the end of a play both in
`/me/player/recently-played` and in the privacy exports) and the sub-second part is
dropped (floored, never rounded).

Why
---
- Every write is an `insert_many(ordered=False)` of documents carrying this `_id`; the
  unique `_id` index turns a second copy into a duplicate-key error (11000), which the
  repository counts as "already present". So overlapping syncs, a redelivered job, a
  re-imported file, and a play seen by both live sync (millisecond timestamps) and an
  export (second timestamps) are all stored once, without reads or transactions, on
  MongoDB and FerretDB alike (`_id` is the only lookup FerretDB pushes down to SQLite).
- The user id leads the key, so one user's plays sort together and a sharded cluster can
  split on it.

Limits (accepted, and why)
--------------------------
- Two plays of the same track by the same user that end within the same wall-clock second
  collapse into one. A play lasts at least a few seconds, so this needs two devices
  finishing the same track in the same second; we accept losing one of those.
- A source that rounds to the nearest second instead of truncating, or whose clock
  disagrees with Spotify's live timestamp by a second or more, yields a different key:
  such a play would be stored twice. Spotify's exports and live API truncate the same
  server timestamp, which is what this rule relies on.
- Plays without a Spotify track id (local files, episodes, some export rows) have no
  identity here; callers skip them (and say so) rather than inventing one. A track id is
  base62 (letters and digits), which also makes `play_key` safe as a MongoDB field name
  in the history read model (`history_days.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)


def played_at_seconds(played_at: datetime) -> int:
    """Whole Unix seconds of an aware end-of-play time, sub-second part dropped."""
    if played_at.tzinfo is None:
        raise ValueError("played_at must be timezone-aware (UTC)")
    # Integer arithmetic on timedeltas: exact, unlike float timestamps, and a floor
    # (not a truncation toward zero) for times before 1970 too.
    return (played_at - _EPOCH) // _ONE_SECOND


def is_track_id(value: str | None) -> bool:
    """Whether `value` looks like a Spotify track id (base62: letters and digits only)."""
    return bool(value) and value.isascii() and value.isalnum()  # type: ignore[union-attr]


def play_key(track_id: str, played_at: datetime) -> str:
    """A play's identity within its user: ``<track_id>:<played_at Unix seconds>``.

    Also a field name in the history read model, so it never holds `.` or `$`.
    """
    if not is_track_id(track_id):
        raise ValueError(f"not a Spotify track id: {track_id!r}")
    return f"{track_id}:{played_at_seconds(played_at)}"


def play_id(user_id: str, track_id: str, played_at: datetime) -> str:
    """The `_id` of a play: ``<user_id>:<track_id>:<played_at Unix seconds>``."""
    if not user_id:
        raise ValueError("a play needs a user id")
    return f"{user_id}:{play_key(track_id, played_at)}"


def played_at_ms(played_at: datetime) -> int:
    """Unix milliseconds of an aware time (the unit of Spotify's recently-played cursors)."""
    if played_at.tzinfo is None:
        raise ValueError("played_at must be timezone-aware (UTC)")
    return (played_at - _EPOCH) // timedelta(milliseconds=1)


def from_unix_ms(value: int) -> datetime:
    """An aware UTC datetime from Unix milliseconds."""
    return _EPOCH + timedelta(milliseconds=value)


def parse_spotify_time(value: str) -> datetime:
    """Parse Spotify's ISO 8601 time (`2026-04-20T10:00:00.123Z`) as aware UTC.

    Sub-millisecond digits are dropped: MongoDB stores milliseconds, and keeping more here
    would make a re-read document differ from the one written.
    """
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)
