"""The ingestion service's MongoDB collections, their documents and indexes.

`plays`: one document per play, `_id` from `identity.play_id`, so every write is an
idempotent `insert_many(ordered=False)` whose duplicate-key errors (11000) mean "already
present". It is the truth of what was stored (identity, dedup, the import counters); each
batch is then also written to the day buckets of `history_days.py`, which serve every
history page, filtered or not: reads by `_id` (the only lookup FerretDB pushes down,
reference/ferretdb.md §4), with the artist/track substring filters applied here to
case-folded names. The (user_id, played_at desc) index exists on MongoDB only (operators'
ad-hoc queries); FerretDB's indexes serve no read and slow every insert.

`sync_state`: one document per user (`_id` = user id) with the recently-played cursor
(newest stored end-of-play time in Unix ms, only ever moved forward with `$max`) and the
marker that the demo history is stored. `$max` is atomic on MongoDB; FerretDB applies
updates read-modify-write, so two concurrent writers could lose one move there. Only one
sync per user runs at a time (the ledger decides that), so the cursor has one writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from echostats_platform.mongo import is_ferretdb, upsert_by_id
from echostats_platform.timeutil import utc_now
from ingestion_service.history_days import HistoryDays
from ingestion_service.models import (
    DemoHistoryMarker,
    InsertOutcome,
    Play,
    PlayPage,
    PlayQuery,
    PlaySource,
    PlayTrack,
    StoredPlay,
)

DUPLICATE_KEY = 11000


def fold(text: str) -> str:
    """The case-folded form stored beside a name and used for case-insensitive filters."""
    return text.casefold()


def play_document(play: Play, inserted_at: datetime) -> dict[str, Any]:
    """The stored form of a play."""
    track = play.track
    return {
        "_id": play.id,
        "user_id": play.user_id,
        "track": {
            "spotify_id": track.spotify_id,
            "name": track.name,
            "artist_name": track.artist_name,
            "album_name": track.album_name,
            "album_image_url": track.album_image_url,
            "duration_ms": track.duration_ms,
            "artist_ids": list(track.artist_ids),
            "album_id": track.album_id,
        },
        "played_at": play.played_at,
        "ms_played": play.ms_played,
        "source": play.source.value,
        "context_type": play.context_type,
        "context_uri": play.context_uri,
        "inserted_at": inserted_at,
    }


def _stored_play(doc: dict[str, Any]) -> StoredPlay:
    track = doc["track"]
    play = Play(
        user_id=doc["user_id"],
        track=PlayTrack(
            spotify_id=track["spotify_id"],
            name=track["name"],
            artist_name=track["artist_name"],
            album_name=track["album_name"],
            duration_ms=int(track["duration_ms"]),
            album_image_url=track.get("album_image_url"),
            artist_ids=tuple(track.get("artist_ids") or ()),
            album_id=track.get("album_id"),
        ),
        played_at=doc["played_at"],
        ms_played=int(doc["ms_played"]),
        source=PlaySource(doc["source"]),
        context_type=doc.get("context_type"),
        context_uri=doc.get("context_uri"),
    )
    return StoredPlay(id=doc["_id"], play=play, inserted_at=doc["inserted_at"])


class PlayRepository:
    """Listening history: idempotent inserts and user-scoped, filtered pages."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._plays = database["plays"]
        self._days = HistoryDays(database)

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries rely on (idempotent; none on FerretDB).

        FerretDB's SQLite indexes never serve a read (reference/ferretdb.md §4) but cost
        every insert: measured here, 20k play documents went in at ~12,700/s without the
        (user_id, played_at) index and ~8,200/s with it. So it is created on MongoDB only.
        """
        if await is_ferretdb(self._plays.database):
            return
        await self._plays.create_index(
            [("user_id", 1), ("played_at", DESCENDING)], name="user_played_at"
        )

    async def insert_plays(
        self,
        plays: Iterable[Play],
        *,
        now: datetime | None = None,
        tags: Mapping[str, Any] | None = None,
        repair: bool = True,
    ) -> InsertOutcome:
        """Store plays once each; a play already stored (same `_id`) is counted, not an error.

        `tags` are extra fields written on the plays this call inserts (an import marks its
        plays with its job id, so it can count exactly what it stored after a redelivery).
        `repair`: also write the plays already present to the day buckets, completing a
        batch that died between its two writes (reads the days they fall on). Callers pass
        False on a first delivery, when no earlier attempt can have died half-way: only the
        new plays go to the buckets then, appended without reading (history_days.py).
        """
        inserted_at = now or utc_now()
        unique: dict[str, Play] = {}
        repeats = 0
        for play in plays:
            # Two reports of one play in a single batch would make FerretDB roll the
            # batch back and retry it document by document; drop them here instead.
            if play.id in unique:
                repeats += 1
            else:
                unique[play.id] = play
        if not unique:
            return InsertOutcome(already_present=repeats)
        ordered = list(unique.values())
        duplicates: set[int] = set()
        documents = [play_document(play, inserted_at) for play in ordered]
        if tags:
            for document in documents:
                document.update(tags)
        try:
            await self._plays.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            other = [error for error in errors if error.get("code") != DUPLICATE_KEY]
            if other or exc.details.get("writeConcernErrors"):
                raise
            duplicates = {int(error["index"]) for error in errors}
        stored = [play for index, play in enumerate(ordered) if index not in duplicates]
        if repair:
            # Every play of the batch, not only the new ones: a batch that died between the
            # two writes is completed by whoever writes the same plays again.
            await self._days.add(ordered, inserted_at=inserted_at)
        else:
            await self._days.add(stored, inserted_at=inserted_at, all_new=True)
        times = [play.played_at for play in stored]
        return InsertOutcome(
            inserted=len(stored),
            already_present=len(duplicates) + repeats,
            first_inserted_at=min(times) if times else None,
            last_inserted_at=max(times) if times else None,
        )

    async def list_plays(self, query: PlayQuery) -> PlayPage:
        """One page of the user's plays, newest first, with the total that match."""
        if not query.artist and not query.track:
            return await self._days.page(query)
        return await self.search_plays(query)

    def plays_by_day(
        self, user_id: str, start: datetime | None, end: datetime | None
    ) -> AsyncIterator[tuple[str, list[StoredPlay]]]:
        """The user's plays that ended in [start, end], one UTC day at a time, oldest first."""
        return self._days.days_in_range(user_id, start, end)

    async def search_plays(self, query: PlayQuery) -> PlayPage:
        """A page filtered by case-insensitive artist/track substrings (and time bounds).

        Served from the user's day buckets, filtered here: on FerretDB a query on `plays`
        scans (and unmarshals) every user's plays, twice with the count, while the buckets
        are read by `_id`; on MongoDB a substring regex cannot use an index either.
        """
        artist = fold(query.artist) if query.artist else None
        track = fold(query.track) if query.track else None

        def matches(entry: dict[str, Any]) -> bool:
            names = entry["t"]
            return (artist is None or artist in fold(names["ar"])) and (
                track is None or track in fold(names["n"])
            )

        return await self._days.search(query, matches)

    async def count_tagged(self, user_id: str, field: str, value: str) -> int:
        """How many of a user's plays carry the tag `field` = `value` (one scan on FerretDB)."""
        return await self._plays.count_documents({"user_id": user_id, field: value})

    async def names_in_window(
        self, user_id: str, start: datetime, end: datetime
    ) -> list[tuple[str, str, str, datetime]]:
        """(_id, artist name, track name, played_at) of the user's plays ending in [start, end).

        Read from the day buckets (by `_id`): on FerretDB a query on `plays` would scan
        every user's plays, once per batch of an account-data import.
        """
        return [
            (
                stored.id,
                stored.play.track.artist_name,
                stored.play.track.name,
                stored.play.played_at,
            )
            async for _, day_plays in self._days.days_in_range(user_id, start, end)
            for stored in day_plays
            if stored.play.played_at < end
        ]

    async def count_for_user(self, user_id: str) -> int:
        """How many plays a user has."""
        return await self._plays.count_documents({"user_id": user_id})

    async def ids_for_user(self, user_id: str) -> list[str]:
        """Every play id of a user (tests and tools; scans the user's plays)."""
        return [doc["_id"] async for doc in self._plays.find({"user_id": user_id}, {"_id": 1})]


class SyncStateRepository:
    """Per-user sync bookkeeping: the recently-played cursor and the demo-history marker."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._state = database["sync_state"]

    async def get_cursor(self, user_id: str) -> int | None:
        """The newest stored end-of-play time from live sync (Unix ms), or None before the first."""
        doc = await self._state.find_one({"_id": user_id})
        value = doc.get("recently_played_cursor_ms") if doc else None
        return int(value) if value is not None else None

    async def advance_cursor(self, user_id: str, cursor_ms: int) -> None:
        """Move the cursor forward to `cursor_ms` (never backward; concurrent runs are safe)."""
        await self._upsert(
            user_id,
            {
                "$max": {"recently_played_cursor_ms": int(cursor_ms)},
                "$set": {"cursor_updated_at": utc_now()},
            },
        )

    async def demo_history_marker(self, user_id: str) -> DemoHistoryMarker | None:
        """The marker set once the user's demo history is stored, else None."""
        doc = await self._state.find_one({"_id": user_id})
        marker = doc.get("demo_history") if doc else None
        if not marker:
            return None
        return DemoHistoryMarker(
            job_id=marker.get("job_id", ""),
            seeded_at=marker["seeded_at"],
            counters={k: int(v) for k, v in (marker.get("counters") or {}).items()},
        )

    async def mark_demo_history_seeded(
        self, user_id: str, *, job_id: str, counters: dict[str, int]
    ) -> None:
        """Record that the user's demo history is stored, with what the job counted."""
        marker = {"job_id": job_id, "seeded_at": utc_now(), "counters": dict(counters)}
        await self._upsert(user_id, {"$set": {"demo_history": marker}})

    async def _upsert(self, user_id: str, update: dict[str, Any]) -> None:
        await upsert_by_id(self._state, user_id, update)
