"""The history page's read model: each user's plays in day buckets (MongoDB's bucket pattern).

Why: FerretDB (development and tests) pushes nothing but `_id` lookups down to SQLite and
unmarshals every document of a collection for any other query (reference/ferretdb.md §4):
listing the demo user's ~14,000 plays from `plays` took 7-10 s a page there. A page read
from buckets costs the user's index document and the one to three day buckets the page
falls in, all fetched by `_id`: a fraction of a second on FerretDB, three small reads on
MongoDB.

Layout:
- `history_days`: `_id` = `<user_id>:<YYYY-MM-DD>` (the UTC day the play ended); `plays` =
  a map from the play's key (`identity.play_key`) to a compact copy of the play. Writing a
  key twice is harmless, so every bucket write is idempotent.
- `history_index`: `_id` = user id; `days` = `{YYYY-MM-DD: plays that day}`. A page is
  located from these counts without reading the buckets it skips.

Consistency: `plays` stays the truth (identity, dedup counting, the filtered queries).
Every batch written there is then written here, the plays already present included, so a
batch that died between the two writes is repaired by its redelivery, a re-sync or a
re-import of the same plays. A repaired entry is built from the report at hand, which may
differ from the first report in `source` or `ms_played`; only that crash window does
this. A day's count is recomputed from its bucket on every write and checked (and
corrected) whenever a page reads the bucket. On FerretDB two writers updating one bucket
in the same instant may lose an update (it applies updates read-modify-write); one sync
and one import per user at a time make that a rare race there, and MongoDB applies each
`$set` atomically.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ingestion_service.models import Play, PlayPage, PlayQuery, PlaySource, PlayTrack, StoredPlay

DUPLICATE_KEY = 11000

Entry = dict[str, Any]


def day_of(played_at: datetime) -> str:
    """The UTC day a play ended on (`YYYY-MM-DD`): its bucket."""
    return played_at.astimezone(UTC).date().isoformat()


def bucket_id(user_id: str, day: str) -> str:
    """The `_id` of a user's bucket for a day."""
    return f"{user_id}:{day}"


def entry_of(play: Play, inserted_at: datetime) -> Entry:
    """The compact copy of a play kept in its bucket."""
    track = play.track
    return {
        "id": play.id,
        "t": {
            "id": track.spotify_id,
            "n": track.name,
            "ar": track.artist_name,
            "al": track.album_name,
            "img": track.album_image_url,
            "d": track.duration_ms,
            "ars": list(track.artist_ids),
            "alid": track.album_id,
        },
        "at": play.played_at,
        "ms": play.ms_played,
        "src": play.source.value,
        "ct": play.context_type,
        "cu": play.context_uri,
        "ins": inserted_at,
    }


def stored_play_of(user_id: str, entry: Entry) -> StoredPlay:
    """A bucket entry as a stored play."""
    track = entry["t"]
    play = Play(
        user_id=user_id,
        track=PlayTrack(
            spotify_id=track["id"],
            name=track["n"],
            artist_name=track["ar"],
            album_name=track["al"],
            duration_ms=int(track["d"]),
            album_image_url=track.get("img"),
            artist_ids=tuple(track.get("ars") or ()),
            album_id=track.get("alid"),
        ),
        played_at=entry["at"],
        ms_played=int(entry["ms"]),
        source=PlaySource(entry["src"]),
        context_type=entry.get("ct"),
        context_uri=entry.get("cu"),
    )
    return StoredPlay(id=entry["id"], play=play, inserted_at=entry["ins"])


def _newest_first(entries: Iterable[Entry]) -> list[Entry]:
    # The same order as the `plays` query: end of play, then id, both descending.
    return sorted(entries, key=lambda e: (e["at"], e["id"]), reverse=True)


class HistoryDays:
    """Day buckets of each user's plays, and the per-user index of their sizes."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._days = database["history_days"]
        self._index = database["history_index"]

    async def add(self, plays: Iterable[Play], *, inserted_at: datetime) -> None:
        """Put plays in their buckets (idempotent; keys already there are left as they are)."""
        by_bucket: dict[str, dict[str, Play]] = defaultdict(dict)
        for play in plays:
            by_bucket[bucket_id(play.user_id, day_of(play.played_at))][play.key] = play
        if not by_bucket:
            return
        # Most buckets of a large import are new and a sync's is usually today's: create
        # them all in one insert first, and read only the ones that already existed.
        created = await self._create(by_bucket, inserted_at)
        sizes: dict[str, dict[str, int]] = defaultdict(dict)
        for _id, plays_of_day in by_bucket.items():
            user_id, _, day = _id.rpartition(":")
            if _id in created:
                sizes[user_id][day] = len(plays_of_day)
                continue
            bucket = await self._days.find_one({"_id": _id})
            have = (bucket or {}).get("plays") or {}
            missing = {
                k: entry_of(p, inserted_at) for k, p in plays_of_day.items() if k not in have
            }
            if missing:
                await self._days.update_one(
                    {"_id": _id},
                    {
                        "$set": {f"plays.{key}": entry for key, entry in missing.items()},
                        "$setOnInsert": {"user_id": user_id, "day": day},
                    },
                    upsert=True,
                )
            sizes[user_id][day] = len(have) + len(missing)
        for user_id, days in sizes.items():
            await self._set_sizes(user_id, days)

    async def page(self, query: PlayQuery) -> PlayPage:
        """One page of the user's history, newest first, within the optional time bounds."""
        index = await self._index.find_one({"_id": query.user_id})
        start_day = day_of(query.start) if query.start else None
        end_day = day_of(query.end) if query.end else None
        days = [
            (day, int(size))
            for day, size in sorted((index or {}).get("days", {}).items(), reverse=True)
            if (start_day is None or day >= start_day) and (end_day is None or day <= end_day)
        ]
        loaded: dict[str, list[Entry]] = {}

        async def load(day: str, size: int) -> list[Entry]:
            if day not in loaded:
                bucket = await self._days.find_one({"_id": bucket_id(query.user_id, day)})
                entries = list(((bucket or {}).get("plays") or {}).values())
                if len(entries) != size:
                    # A write raced this count, or died before updating it: correct it.
                    await self._set_sizes(query.user_id, {day: len(entries)})
                loaded[day] = _newest_first(e for e in entries if _within(e["at"], query))
            return loaded[day]

        # The first and last day may hold plays outside the bounds: count those exactly.
        total = 0
        for day, size in days:
            total += len(await load(day, size)) if day in (start_day, end_day) else size
        skip = (query.page - 1) * query.page_size
        result: list[Entry] = []
        seen = 0
        for day, size in days:
            if len(result) >= query.page_size:
                break
            count = len(loaded[day]) if day in loaded else size
            if seen + count <= skip:
                seen += count  # a whole day before the page: skipped without reading it
                continue
            for entry in await load(day, size):
                if seen >= skip and len(result) < query.page_size:
                    result.append(entry)
                seen += 1
        return PlayPage(
            plays=[stored_play_of(query.user_id, entry) for entry in result], total=total
        )

    async def days_in_range(
        self, user_id: str, start: datetime | None, end: datetime | None
    ) -> AsyncIterator[tuple[str, list[StoredPlay]]]:
        """The user's plays that ended in [start, end], one UTC day at a time, oldest first."""
        index = await self._index.find_one({"_id": user_id})
        start_day = day_of(start) if start else None
        end_day = day_of(end) if end else None
        for day in sorted((index or {}).get("days", {})):
            if (start_day is not None and day < start_day) or (
                end_day is not None and day > end_day
            ):
                continue
            bucket = await self._days.find_one({"_id": bucket_id(user_id, day)})
            entries = ((bucket or {}).get("plays") or {}).values()
            plays = [
                stored_play_of(user_id, entry)
                for entry in entries
                if (start is None or entry["at"] >= start) and (end is None or entry["at"] <= end)
            ]
            if plays:
                yield day, plays

    async def _create(
        self, by_bucket: dict[str, dict[str, Play]], inserted_at: datetime
    ) -> set[str]:
        """Insert the buckets that do not exist yet; returns the ids inserted."""
        docs = []
        for _id, plays_of_day in by_bucket.items():
            user_id, _, day = _id.rpartition(":")
            entries = {key: entry_of(play, inserted_at) for key, play in plays_of_day.items()}
            docs.append({"_id": _id, "user_id": user_id, "day": day, "plays": entries})
        try:
            await self._days.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            existed = {int(error["index"]) for error in errors}
            return {doc["_id"] for index, doc in enumerate(docs) if index not in existed}
        return {doc["_id"] for doc in docs}

    async def _set_sizes(self, user_id: str, days: dict[str, int]) -> None:
        update = {"$set": {f"days.{day}": size for day, size in days.items()}}
        try:
            await self._index.update_one({"_id": user_id}, update, upsert=True)
        except DuplicateKeyError:
            # Two first writes raced to create the document; the loser updates it.
            await self._index.update_one({"_id": user_id}, update, upsert=True)


def _within(moment: datetime, query: PlayQuery) -> bool:
    return (query.start is None or moment >= query.start) and (
        query.end is None or moment <= query.end
    )
