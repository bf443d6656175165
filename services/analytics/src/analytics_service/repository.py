"""Analytics' own collections, read and written by `_id` only (FerretDB pushes nothing else down).

- `rollup_months`: `_id` = `<user_id>:<YYYY-MM>`; the month's `summary` (its days merged, so
  a year or all time merges a dozen summaries instead of hundreds of days) and `day_totals`
  (`{YYYY-MM-DD: [plays, ms]}`, for trends), packed in one compressed BSON blob.
- `rollup_month_days`: same `_id`; the month's day rollups (`{YYYY-MM-DD: rollup}`) in one
  blob. Read only for the months a period cuts through, and by writes.

  Why blobs: these are read whole and merged in Python, never queried inside. FerretDB
  turns every stored element into BSON on each read, ~9 MB/s: a month of a heavy
  listener as plain fields (1.4 MB) took 160 ms to read, the same as a zlib'd BSON
  binary 18 ms. MongoDB reads either quickly.
- `rollup_state`: `_id` = user id; `version` (a new random token whenever any rollup of the
  user changed: snapshots remember the version they were computed from), `days`
  (`{YYYY-MM-DD: plays}`, for streaks, rollup status and which months exist) and
  `rolled_plays` (their sum).
- `rollup_versions`: `_id` = user id; just `version`, what the overview's freshness check reads.
  Also kept in Redis (`analytics:rollup-version:<user>`, a minute at most, set after every
  write) so the overview's check costs a Redis GET; a Redis that fails is skipped.
- `snapshots` / `snapshot_lists`: `_id` = `<user_id>:<period>`; one stored snapshot per user
  and period (its ranked lists cut to the overview's heads) and its whole ranked lists,
  their figures packed the same way.

Rollup writes of one user are serialised by the caller (a Redis lock in `rollup_builder`),
so the read-modify-write of a month document never loses an update.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import bson
from bson import Binary
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import RedisError

from analytics_service.periods import month_of
from analytics_service.rollups import Merged, Rollup, from_document
from echostats_platform.timeutil import utc_now

log = logging.getLogger(__name__)


def month_id(user_id: str, month: str) -> str:
    """The `_id` of a user's month document."""
    return f"{user_id}:{month}"


def snapshot_id(user_id: str, period: str) -> str:
    """The `_id` of a user's snapshot of a period."""
    return f"{user_id}:{period}"


@dataclass
class RollupState:
    """A user's rollup bookkeeping."""

    user_id: str
    version: str = ""
    days: dict[str, int] = field(default_factory=dict)
    rolled_plays: int = 0
    updated_at: datetime | None = None

    @property
    def months(self) -> list[str]:
        """Months with at least one rolled-up day, oldest first."""
        return sorted({month_of(day) for day in self.days})


@dataclass(frozen=True, slots=True)
class MonthSummary:
    """A month's days merged (row form), and each day's (plays, ms)."""

    summary: Rollup
    day_totals: dict[str, tuple[int, int]]


def pack(value: Mapping[str, Any]) -> Binary:
    """A document as a compressed BSON blob (FerretDB stores one field, not thousands)."""
    return Binary(zlib.compress(bson.encode(value), 1))


def unpack(blob: bytes) -> dict[str, Any]:
    """The document `pack` stored."""
    return bson.decode(zlib.decompress(blob))


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What a rollup write changed."""

    changed_days: int
    plays: int
    version: str

    def __add__(self, other: WriteOutcome) -> WriteOutcome:
        """Two writes together (the later version)."""
        return WriteOutcome(
            changed_days=self.changed_days + other.changed_days,
            plays=self.plays + other.plays,
            version=other.version or self.version,
        )


VERSION_KEY_PREFIX = "analytics:rollup-version:"
VERSION_CACHE_SECONDS = 60


class RollupRepository:
    """Month documents of day rollups, and the per-user state beside them."""

    def __init__(self, database: AsyncDatabase, *, redis: Redis | None = None) -> None:
        self._redis = redis
        self._months = database["rollup_months"]
        self._days = database["rollup_month_days"]
        self._state = database["rollup_state"]
        self._versions = database["rollup_versions"]

    async def version(self, user_id: str) -> str:
        """The user's rollup data version ("" before any rollup): Redis, else a tiny document."""
        if self._redis is not None:
            try:
                cached = await self._redis.get(VERSION_KEY_PREFIX + user_id)
            except RedisError:
                cached = None
            if cached is not None:
                return cached.decode() if isinstance(cached, bytes) else str(cached)
        doc = await self._versions.find_one({"_id": user_id})
        # Rollups written before the versions document existed: their state knows it.
        version = str(doc["version"]) if doc else (await self.state(user_id)).version
        # Only if absent: a writer may have set a newer version since this read.
        await self._remember_version(user_id, version, only_if_absent=True)
        return version

    async def _remember_version(
        self, user_id: str, version: str, *, only_if_absent: bool = False
    ) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.set(
                VERSION_KEY_PREFIX + user_id, version, ex=VERSION_CACHE_SECONDS, nx=only_if_absent
            )
        except RedisError:
            log.warning("could not cache a rollup version", extra={"user_id": user_id})

    async def state(self, user_id: str) -> RollupState:
        """The user's state (an empty one when nothing was rolled up yet)."""
        doc = await self._state.find_one({"_id": user_id})
        if doc is None:
            return RollupState(user_id=user_id)
        return RollupState(
            user_id=user_id,
            version=doc.get("version", ""),
            days=dict(doc.get("days") or {}),
            rolled_plays=int(doc.get("rolled_plays", 0)),
            updated_at=doc.get("updated_at"),
        )

    async def summaries(self, user_id: str, months: Iterable[str]) -> dict[str, MonthSummary]:
        """Month summaries by month (months without plays left out), each read by `_id`."""
        wanted = list(months)
        docs = await asyncio.gather(
            *(self._months.find_one({"_id": month_id(user_id, month)}) for month in wanted)
        )
        found: dict[str, MonthSummary] = {}
        for month, doc in zip(wanted, docs, strict=True):
            if doc is None:
                continue
            if "packed" in doc:
                packed = unpack(doc["packed"])
                found[month] = MonthSummary(
                    summary=packed["summary"],
                    day_totals={day: (t[0], t[1]) for day, t in packed["day_totals"].items()},
                )
            else:  # the plain layout of earlier versions
                days = doc.get("days") or {}
                found[month] = MonthSummary(
                    summary=from_document(doc["summary"]),
                    day_totals={day: (r["plays"], r["ms"]) for day, r in days.items()},
                )
        return found

    async def month_days(self, user_id: str, months: Iterable[str]) -> dict[str, dict[str, Rollup]]:
        """The day rollups of these months by month (months without plays left out)."""
        wanted = list(months)
        ids = [month_id(user_id, month) for month in wanted]
        docs = await asyncio.gather(*(self._days.find_one({"_id": _id}) for _id in ids))
        found: dict[str, dict[str, Rollup]] = {}
        for month, _id, doc in zip(wanted, ids, docs, strict=True):
            if doc is not None:
                found[month] = unpack(doc["packed"])["days"]
                continue
            # Written by an earlier version: the days are in the month document itself.
            legacy = await self._months.find_one({"_id": _id})
            if legacy is not None and "days" in legacy:
                found[month] = {day: from_document(r) for day, r in legacy["days"].items()}
        return found

    async def write_days(
        self,
        user_id: str,
        days: Mapping[str, Rollup | None],
        *,
        replace_all: bool = False,
    ) -> WriteOutcome:
        """Set these days' rollups (None or no plays: the day has none); only changes are written.

        With `replace_all`, `days` is the user's whole history: every other day is removed.
        """
        state = await self.state(user_id)
        wanted: dict[str, Rollup | None] = {
            day: (rollup if rollup and rollup["plays"] else None) for day, rollup in days.items()
        }
        if replace_all:
            for day in state.days:
                wanted.setdefault(day, None)
        by_month: dict[str, dict[str, Rollup | None]] = defaultdict(dict)
        for day, rollup in wanted.items():
            by_month[month_of(day)][day] = rollup
        existing = await self.month_days(user_id, sorted(by_month))
        changed_days = 0
        new_days = dict(state.days)
        for month, updates in sorted(by_month.items()):
            old_days: dict[str, Rollup] = dict(existing.get(month) or {})
            merged_days = dict(old_days)
            for day, rollup in updates.items():
                if rollup is None:
                    merged_days.pop(day, None)
                    new_days.pop(day, None)
                else:
                    merged_days[day] = rollup
                    new_days[day] = rollup["plays"]
            changed = [day for day in updates if old_days.get(day) != merged_days.get(day)]
            if not changed:
                continue
            changed_days += len(changed)
            _id = month_id(user_id, month)
            if not merged_days:
                await self._months.delete_one({"_id": _id})
                await self._days.delete_one({"_id": _id})
                continue
            summary = Merged()
            for day in sorted(merged_days):
                summary.add(merged_days[day])
            # Days first: a writer that dies between the two leaves a summary the next
            # write of the month recomputes from them.
            await self._days.replace_one(
                {"_id": _id},
                {
                    "_id": _id,
                    "user_id": user_id,
                    "month": month,
                    "packed": pack({"days": merged_days}),
                },
                upsert=True,
            )
            totals = {day: [r["plays"], r["ms"]] for day, r in merged_days.items()}
            await self._months.replace_one(
                {"_id": _id},
                {
                    "_id": _id,
                    "user_id": user_id,
                    "month": month,
                    "packed": pack({"summary": summary.as_rollup(), "day_totals": totals}),
                },
                upsert=True,
            )
        version = state.version
        if changed_days or new_days != state.days:
            version = uuid.uuid4().hex
            await self._state.replace_one(
                {"_id": user_id},
                {
                    "_id": user_id,
                    "version": version,
                    "days": new_days,
                    "rolled_plays": sum(new_days.values()),
                    "updated_at": utc_now(),
                },
                upsert=True,
            )
            await self._versions.replace_one(
                {"_id": user_id}, {"_id": user_id, "version": version}, upsert=True
            )
            await self._remember_version(user_id, version)
        plays = sum(rollup["plays"] for rollup in wanted.values() if rollup is not None)
        return WriteOutcome(changed_days=changed_days, plays=plays, version=version)


# The ranked lists kept whole beside a snapshot; the snapshot itself keeps their heads.
LIST_FIELDS = ("top_tracks", "top_artists", "top_albums")


class SnapshotRepository:
    """Stored period snapshots: a small document per (user, period) that the overview reads,
    and the full ranked lists beside it (`snapshot_lists`) for the top-list endpoints.

    Small on purpose, and packed: FerretDB turns every element of a document into BSON on
    each read (5 ms for a 13 KB snapshot of nested lists), so the figures travel as one blob
    beside the plain fields a freshness check reads.
    """

    def __init__(self, database: AsyncDatabase, *, head: int = 10) -> None:
        self._snapshots = database["snapshots"]
        self._lists = database["snapshot_lists"]
        self._head = head

    async def get(self, user_id: str, period: str) -> dict[str, Any] | None:
        """The stored snapshot (ranked lists cut to their heads), if any."""
        return _unpacked(await self._snapshots.find_one({"_id": snapshot_id(user_id, period)}))

    async def get_lists(self, user_id: str, period: str) -> dict[str, Any] | None:
        """The snapshot's whole ranked lists, if stored."""
        return _unpacked(await self._lists.find_one({"_id": snapshot_id(user_id, period)}))

    async def put(self, snapshot: dict[str, Any]) -> None:
        """Store (replace) a snapshot: its lists first, then the small document."""
        lists = {name: snapshot[name] for name in LIST_FIELDS}
        await self._lists.replace_one(
            {"_id": snapshot["_id"]}, {"_id": snapshot["_id"], "packed": pack(lists)}, upsert=True
        )
        small = {
            **snapshot,
            **{name: snapshot[name][: self._head] for name in LIST_FIELDS},
        }
        # What freshness checks read stays in plain fields; the figures go in one blob.
        plain = {key: small.pop(key) for key in SNAPSHOT_PLAIN_FIELDS if key in small}
        await self._snapshots.replace_one(
            {"_id": snapshot["_id"]}, {**plain, "packed": pack(small)}, upsert=True
        )


# Snapshot fields stored as plain fields; the rest of a snapshot is one packed blob.
SNAPSHOT_PLAIN_FIELDS = ("_id", "user_id", "period", "version", "as_of", "timezone", "computed_at")


def _unpacked(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored snapshot (or lists) document with its blob unpacked (plain ones as they are)."""
    if doc is None or "packed" not in doc:
        return doc
    packed = doc.pop("packed")
    return {**doc, **unpack(packed)}
