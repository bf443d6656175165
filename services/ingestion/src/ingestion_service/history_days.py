"""The history page's read model: each user's plays in day buckets (MongoDB's bucket pattern).

Why: FerretDB (development and tests) pushes nothing but `_id` lookups down to SQLite and
unmarshals every document of a collection for any other query (reference/ferretdb.md §4):
listing the demo user's ~14,000 plays from `plays` took 7-10 s a page there. A page read
from buckets costs the user's index document and the one to three day buckets the page
falls in, all fetched by `_id`: a fraction of a second on FerretDB, three small reads on
MongoDB.

Layout:
- `history_days`: a day's bucket is one or more insert-only *parts*. Part 0 has `_id` =
  `<user_id>:<YYYY-MM-DD>` (the UTC day the play ended), part n `<user_id>:<day>#<n>`;
  `plays` = a map from the play's key (`identity.play_key`) to a compact copy of the play.
  A key already in any part of the day is never written again, so every write is
  idempotent.
- `history_index`: `_id` = user id; `days` = `{YYYY-MM-DD: plays that day}`, `parts` =
  `{YYYY-MM-DD: parts that day}` (absent: one). A page is located from these counts
  without reading the buckets it skips.

Why parts instead of updating a day's bucket: an update rewrites the whole growing document
(on FerretDB a read-modify-write in Go, reference/ferretdb.md §4), while an insert writes
only the new plays. This was forced at first by FerretDB's `_id` lookups not using an
index (every UPDATE scanned every user's history: 10 s socket timeouts at 1M plays); the
FerretDB launcher now indexes that lookup, and parts stay the cheaper write. New plays for
a day that has a bucket go in one new part; readers take every part by `_id`. A writer
reads the day's parts, inserts the part after the last one, and on a duplicate key
(another writer took that number) reads it and tries the next: no update, no lost write,
on either server.

Consistency: `plays` stays the truth (identity, dedup counting, the filtered queries).
Every batch written there is then written here, the plays already present included, so a
batch that died between the two writes is repaired by its redelivery, a re-sync or a
re-import of the same plays. A repaired entry is built from the report at hand, which may
differ from the first report in `source` or `ms_played`; only that crash window does
this. A part inserted by a writer that died before updating the index is found anyway:
readers probe the part after the last one the index lists. A day's count is recomputed on
every write and checked (and corrected) whenever a page reads the day.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ingestion_service.models import Play, PlayPage, PlayQuery, PlaySource, PlayTrack, StoredPlay

DUPLICATE_KEY = 11000
# Days read concurrently by `days_in_range` (StreamPlays, account-data checks).
READ_AHEAD = 8

Entry = dict[str, Any]


def day_of(played_at: datetime) -> str:
    """The UTC day a play ended on (`YYYY-MM-DD`): its bucket."""
    return played_at.astimezone(UTC).date().isoformat()


def bucket_id(user_id: str, day: str) -> str:
    """The `_id` of a user's bucket for a day (its first part)."""
    return f"{user_id}:{day}"


def part_id(user_id: str, day: str, part: int) -> str:
    """The `_id` of part `part` of a day's bucket (part 0 is the bucket itself)."""
    return bucket_id(user_id, day) if part == 0 else f"{user_id}:{day}#{part}"


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
    """Day buckets of each user's plays (insert-only parts), and the per-user index of sizes."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._days = database["history_days"]
        self._index = database["history_index"]

    async def add(
        self, plays: Iterable[Play], *, inserted_at: datetime, all_new: bool = False
    ) -> None:
        """Put plays in their buckets (idempotent; keys already there are left as they are).

        `all_new`: the caller knows none of these plays is in a bucket yet (they were just
        inserted into `plays` for the first time, and buckets only ever hold plays already
        in `plays`). Their days are then appended to without being read: on FerretDB each
        read costs a scan of the collection.
        """
        by_bucket: dict[str, dict[str, Play]] = defaultdict(dict)
        for play in plays:
            by_bucket[bucket_id(play.user_id, day_of(play.played_at))][play.key] = play
        if not by_bucket:
            return
        # Most buckets of a large import are new and a sync's is usually today's: create
        # them all in one insert first, and read only the ones that already existed.
        created = await self._create(by_bucket, inserted_at)
        sizes: dict[str, dict[str, int]] = defaultdict(dict)
        parts: dict[str, dict[str, int]] = defaultdict(dict)
        indexes: dict[str, dict[str, Any]] = {}
        for _id, plays_of_day in by_bucket.items():
            user_id, _, day = _id.rpartition(":")
            if _id in created:
                sizes[user_id][day] = len(plays_of_day)
                continue
            if all_new:
                if user_id not in indexes:
                    indexes[user_id] = await self._index.find_one({"_id": user_id}) or {}
                count, next_part = await self._append_new(
                    user_id, day, plays_of_day, inserted_at, indexes[user_id]
                )
            else:
                count, next_part = await self._append(user_id, day, plays_of_day, inserted_at)
            sizes[user_id][day] = count
            parts[user_id][day] = next_part
        for user_id, days in sizes.items():
            await self._set_sizes(user_id, days, parts.get(user_id))

    async def _append(
        self, user_id: str, day: str, plays_of_day: dict[str, Play], inserted_at: datetime
    ) -> tuple[int, int]:
        """Add the plays a day does not have yet as a new part; (day's size, parts)."""
        known = await self._known_parts(user_id, day)
        while True:
            have, next_part = await self._read_day(user_id, day, known)
            missing = {
                k: entry_of(p, inserted_at) for k, p in plays_of_day.items() if k not in have
            }
            if not missing:
                return len(have), next_part
            document = {
                "_id": part_id(user_id, day, next_part),
                "user_id": user_id,
                "day": day,
                "plays": missing,
            }
            try:
                await self._days.insert_one(document)
            except DuplicateKeyError:
                known = next_part + 1  # another writer took this part: read it too, retry
                continue
            return len(have) + len(missing), next_part + 1

    async def _append_new(
        self,
        user_id: str,
        day: str,
        plays_of_day: dict[str, Play],
        inserted_at: datetime,
        index: dict[str, Any],
    ) -> tuple[int, int]:
        """Add plays known to be new as a part, without reading the day; (size, parts)."""
        part = int((index.get("parts") or {}).get(day, 1))
        entries = {key: entry_of(play, inserted_at) for key, play in plays_of_day.items()}
        while True:
            document = {
                "_id": part_id(user_id, day, part),
                "user_id": user_id,
                "day": day,
                "plays": entries,
            }
            try:
                await self._days.insert_one(document)
            except DuplicateKeyError:
                part += 1  # taken by a writer the index does not show yet
                continue
            # A stale count (a racing writer) is corrected by the next page that reads it.
            size = int((index.get("days") or {}).get(day, 0)) + len(entries)
            return size, part + 1

    async def _known_parts(self, user_id: str, day: str) -> int:
        index = await self._index.find_one({"_id": user_id}, {f"parts.{day}": 1})
        return int(((index or {}).get("parts") or {}).get(day, 1))

    async def _read_day(self, user_id: str, day: str, known_parts: int) -> tuple[Entry, int]:
        """A day's entries by key from all its parts, and the number of the next part.

        Reads the parts the index knows, then probes the following numbers: a writer that
        died (or raced) between inserting a part and updating the index left it unlisted.
        Every read is by `_id`, the only lookup FerretDB pushes down.
        """
        entries: Entry = {}
        part = 0
        while True:
            bucket = await self._days.find_one({"_id": part_id(user_id, day, part)})
            if bucket is None and part >= known_parts:
                return entries, part
            for key, entry in ((bucket or {}).get("plays") or {}).items():
                entries.setdefault(key, entry)
            part += 1

    async def page(self, query: PlayQuery) -> PlayPage:
        """One page of the user's history, newest first, within the optional time bounds."""
        index = await self._index.find_one({"_id": query.user_id})
        start_day = day_of(query.start) if query.start else None
        end_day = day_of(query.end) if query.end else None
        known = (index or {}).get("parts") or {}
        days = [
            (day, int(size))
            for day, size in sorted((index or {}).get("days", {}).items(), reverse=True)
            if (start_day is None or day >= start_day) and (end_day is None or day <= end_day)
        ]
        loaded: dict[str, list[Entry]] = {}

        async def load(day: str, size: int) -> list[Entry]:
            if day not in loaded:
                have, _ = await self._read_day(query.user_id, day, int(known.get(day, 1)))
                entries = list(have.values())
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

    async def search(self, query: PlayQuery, matches: Callable[[Entry], bool]) -> PlayPage:
        """One page of the user's plays within the bounds for which `matches(entry)` holds.

        Reads every day in the bounds (by `_id`), newest first; the total needs them all.
        """
        index = await self._index.find_one({"_id": query.user_id})
        known = (index or {}).get("parts") or {}
        start_day = day_of(query.start) if query.start else None
        end_day = day_of(query.end) if query.end else None
        found: list[Entry] = []
        for day in sorted((index or {}).get("days", {}), reverse=True):
            if (start_day is not None and day < start_day) or (
                end_day is not None and day > end_day
            ):
                continue
            have, _ = await self._read_day(query.user_id, day, int(known.get(day, 1)))
            found.extend(e for e in have.values() if _within(e["at"], query) and matches(e))
        ordered = _newest_first(found)
        skip = (query.page - 1) * query.page_size
        return PlayPage(
            plays=[
                stored_play_of(query.user_id, e) for e in ordered[skip : skip + query.page_size]
            ],
            total=len(ordered),
        )

    async def days_in_range(
        self, user_id: str, start: datetime | None, end: datetime | None
    ) -> AsyncIterator[tuple[str, list[StoredPlay]]]:
        """The user's plays that ended in [start, end], one UTC day at a time, oldest first.

        Days are read READ_AHEAD at a time, concurrently: each is a few `_id` reads, and
        the database works on the next ones while this process decodes the last.
        """
        index = await self._index.find_one({"_id": user_id})
        known = (index or {}).get("parts") or {}
        start_day = day_of(start) if start else None
        end_day = day_of(end) if end else None
        days = [
            day
            for day in sorted((index or {}).get("days", {}))
            if (start_day is None or day >= start_day) and (end_day is None or day <= end_day)
        ]

        async def read(day: str) -> list[StoredPlay]:
            have, _ = await self._read_day(user_id, day, int(known.get(day, 1)))
            return [
                stored_play_of(user_id, entry)
                for entry in have.values()
                if (start is None or entry["at"] >= start) and (end is None or entry["at"] <= end)
            ]

        for offset in range(0, len(days), READ_AHEAD):
            window = days[offset : offset + READ_AHEAD]
            for day, plays in zip(
                window, await asyncio.gather(*(read(day) for day in window)), strict=True
            ):
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

    async def _set_sizes(
        self, user_id: str, days: dict[str, int], parts: dict[str, int] | None = None
    ) -> None:
        fields: dict[str, int] = {f"days.{day}": size for day, size in days.items()}
        fields.update({f"parts.{day}": count for day, count in (parts or {}).items()})
        update = {"$set": fields}
        try:
            await self._index.update_one({"_id": user_id}, update, upsert=True)
        except DuplicateKeyError:
            # Two first writes raced to create the document; the loser updates it.
            await self._index.update_one({"_id": user_id}, update, upsert=True)


def _within(moment: datetime, query: PlayQuery) -> bool:
    return (query.start is None or moment >= query.start) and (
        query.end is None or moment <= query.end
    )
