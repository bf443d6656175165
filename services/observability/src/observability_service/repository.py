"""The observability service's MongoDB collections and their indexes.

- `jobs`: one document per job, with its steps array and counters sub-document.
- `job_locks`: at most one document per (user, job group), `_id` "<user_id>:<group>",
  naming the pending or running job of that group. Inserting it is what makes "start a
  job" atomic without transactions: the unique `_id` lets exactly one insert win.
- `api_calls`: one document per outbound HTTP exchange, with fields derived at write time
  (`status_class`, `endpoint_key`, `endpoint_lower`) because FerretDB's aggregation has
  no string or conditional operators.
- `api_call_days`: the stats of one user's calls of one UTC day, `_id` "<user_id>:<day>":
  `calls`, `latency_ms` (sum), `codes` {status code: calls}, `endpoints` {"<METHOD>
  <path>", escaped: calls}. Counted with `$inc` as new records are stored, so the stats
  read a few small documents instead of aggregating the whole log (which FerretDB does by
  scanning every user's calls: the stats grew slower with every call the system made).
  `slots` {"HHM": calls} counts the calls of each 10-minute slot of the day.
- `api_call_slots`: the listing's index, `_id` "<user_id>:<day>T<HHM>#<part>": `calls`, the
  (timestamp, id) of the slot's records, in parts of about 1,000. The unfiltered listing
  reads only the slots its page falls in, then the page's records by `_id`.

Everything here runs on FerretDB v1.24 (SQLite) and on MongoDB 7/8: single-document
writes, `_id` lookups, aggregations of `$match`/`$group`/`$sum`/`$sort`/`$limit` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from echostats_platform.mongo import upsert_by_id
from observability_service.models import (
    ACTIVE_STATUSES,
    ApiCall,
    ApiCallFilter,
    Job,
    JobGroup,
    JobStatus,
    JobStep,
    JobType,
    Page,
    StepStatus,
)

_DUPLICATE_KEY = 11000
# createIndexes refuses an existing index whose options (here expireAfterSeconds) differ.
_INDEX_OPTIONS_CONFLICT = 85
_ACTIVE = [status.value for status in ACTIVE_STATUSES]
# Stripes of the in-process locks of day-stats updates.
_DAY_LOCKS = 64
# Entries per part of a slot index (a part may hold one batch more).
_SLOT_PART = 1000


async def _sum_by(
    collection: AsyncCollection, match: dict[str, Any], key: str | None, value: Any
) -> dict[Any, Any]:
    """`{$match}` then `{$group: {_id: key, total: {$sum: value}}}`, as {group key: total}.

    One accumulator per `$group`, always: FerretDB v1.24 feeds the group's documents to
    its first accumulator only, so a second one in the same stage silently sums to 0.
    """
    pipeline: list[dict[str, Any]] = [
        {"$match": match},
        {"$group": {"_id": key, "total": {"$sum": value}}},
    ]
    return {row["_id"]: row["total"] async for row in await collection.aggregate(pipeline)}


async def _total(
    collection: AsyncCollection, query: dict[str, Any], skip: int, limit: int, found: int
) -> int:
    """The number of matches of a paged query, counted only when the page cannot tell.

    A short, non-empty page (or a short first page) is the last one, so the total is
    known; counting costs a second full scan on FerretDB.
    """
    if found < limit and (found > 0 or skip == 0):
        return skip + found
    return await collection.count_documents(query)


def object_id(value: str) -> ObjectId | None:
    """The ObjectId a 24-hex-digit string names, or None for anything else."""
    if len(value) != 24:
        return None
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


def truncate_to_ms(value: datetime) -> datetime:
    """`value` without its sub-millisecond part (what BSON dates can hold)."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _step_from_doc(doc: Mapping[str, Any]) -> JobStep:
    return JobStep(
        action=doc["action"],
        status=StepStatus(doc["status"]),
        detail=doc.get("detail") or "",
        items=int(doc.get("items") or 0),
        error=doc.get("error"),
    )


def step_to_doc(step: JobStep) -> dict[str, Any]:
    """The stored form of a step."""
    return {
        "action": step.action,
        "status": step.status.value,
        "detail": step.detail,
        "items": step.items,
        "error": step.error,
    }


def _job_from_doc(doc: Mapping[str, Any]) -> Job:
    return Job(
        id=str(doc["_id"]),
        user_id=doc["user_id"],
        job_type=JobType(doc["job_type"]),
        status=JobStatus(doc["status"]),
        items_processed=int(doc.get("items_processed") or 0),
        items_total=int(doc.get("items_total") or 0),
        error_message=doc.get("error_message"),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at") or doc["created_at"],
        started_at=doc.get("started_at"),
        completed_at=doc.get("completed_at"),
        steps=tuple(_step_from_doc(step) for step in doc.get("steps") or ()),
        counters={str(k): int(v) for k, v in (doc.get("counters") or {}).items()},
    )


@dataclass(frozen=True)
class JobLock:
    """The lock document of one (user, group): which job holds it, and a snapshot of it.

    The snapshot lets a losing StartJob answer with the winner's job even in the instant
    between the winner inserting the lock and inserting the job document.
    """

    key: str
    job_id: str
    user_id: str
    job_type: JobType
    items_total: int
    created_at: datetime

    def provisional_job(self) -> Job:
        """The job as it is being created (pending, nothing done yet)."""
        return Job(
            id=self.job_id,
            user_id=self.user_id,
            job_type=self.job_type,
            status=JobStatus.PENDING,
            items_processed=0,
            items_total=self.items_total,
            error_message=None,
            created_at=self.created_at,
            updated_at=self.created_at,
        )


def lock_key(user_id: str, group: JobGroup) -> str:
    """The `_id` of the lock of one user's job group."""
    return f"{user_id}:{group.value}"


def _counter_sets(counters: Mapping[str, int]) -> dict[str, int]:
    # Dotted paths merge into the counters sub-document: named counters the caller does
    # not mention keep their values.
    return {f"counters.{name}": int(value) for name, value in counters.items()}


class JobRepository:
    """The job ledger (`jobs`) and the per-group start locks (`job_locks`)."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._jobs = database["jobs"]
        self._locks = database["job_locks"]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries rely on (idempotent)."""
        await self._jobs.create_index(
            [("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"
        )
        # The reaper's query: active jobs by last change.
        await self._jobs.create_index(
            [("status", ASCENDING), ("updated_at", ASCENDING)], name="status_updated"
        )

    # -- locks -------------------------------------------------------------------------

    async def insert_lock(self, lock: JobLock) -> bool:
        """Take the lock; False when another job already holds it (duplicate `_id`)."""
        try:
            await self._locks.insert_one(
                {
                    "_id": lock.key,
                    "job_id": lock.job_id,
                    "user_id": lock.user_id,
                    "job_type": lock.job_type.value,
                    "items_total": lock.items_total,
                    "created_at": lock.created_at,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get_lock(self, key: str) -> JobLock | None:
        """The lock of one (user, group), or None when the group is free."""
        doc = await self._locks.find_one({"_id": key})
        if doc is None:
            return None
        return JobLock(
            key=doc["_id"],
            job_id=doc["job_id"],
            user_id=doc["user_id"],
            job_type=JobType(doc["job_type"]),
            items_total=int(doc.get("items_total") or 0),
            created_at=doc["created_at"],
        )

    async def release_lock(self, key: str, job_id: str) -> bool:
        """Delete the lock only if `job_id` still holds it (compare-and-swap)."""
        result = await self._locks.delete_one({"_id": key, "job_id": job_id})
        return result.deleted_count == 1

    # -- jobs --------------------------------------------------------------------------

    async def insert_job(self, job: Job, group: JobGroup) -> None:
        """Store a new job."""
        await self._jobs.insert_one(
            {
                "_id": ObjectId(job.id),
                "user_id": job.user_id,
                "job_type": job.job_type.value,
                "group": group.value,
                "status": job.status.value,
                "items_processed": job.items_processed,
                "items_total": job.items_total,
                "error_message": job.error_message,
                "created_at": job.created_at,
                "updated_at": job.updated_at,
                "started_at": job.started_at,
                "completed_at": job.completed_at,
                "steps": [step_to_doc(step) for step in job.steps],
                "steps_revision": 0,
                "counters": dict(job.counters),
            }
        )

    async def get(self, job_id: str) -> Job | None:
        """One job by id, or None (also for malformed ids)."""
        doc = await self._get_doc(job_id)
        return _job_from_doc(doc) if doc else None

    async def _get_doc(self, job_id: str) -> dict[str, Any] | None:
        oid = object_id(job_id)
        if oid is None:
            return None
        return await self._jobs.find_one({"_id": oid})

    async def _update_active(
        self, job_id: str, update: dict[str, Any], *, status: Iterable[str] = _ACTIVE
    ) -> Job | None:
        oid = object_id(job_id)
        if oid is None:
            return None
        doc = await self._jobs.find_one_and_update(
            {"_id": oid, "status": {"$in": list(status)}},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return _job_from_doc(doc) if doc else None

    async def mark_running(self, job_id: str, now: datetime) -> Job | None:
        """Pending → running with started_at; a running job is only touched. None otherwise."""
        job = await self._update_active(
            job_id,
            {"$set": {"status": JobStatus.RUNNING.value, "started_at": now, "updated_at": now}},
            status=[JobStatus.PENDING.value],
        )
        if job is not None:
            return job
        # Already running (a restarted worker calls again): keep started_at, count it as
        # a sign of life for the reaper.
        return await self._update_active(
            job_id, {"$set": {"updated_at": now}}, status=[JobStatus.RUNNING.value]
        )

    async def update_progress(
        self,
        job_id: str,
        *,
        items_processed: int,
        items_total: int | None,
        counters: Mapping[str, int],
        now: datetime,
    ) -> Job | None:
        """Set the progress of an active job; None when it is missing or already ended."""
        fields: dict[str, Any] = {"items_processed": items_processed, "updated_at": now}
        if items_total is not None:
            fields["items_total"] = items_total
        fields.update(_counter_sets(counters))
        return await self._update_active(job_id, {"$set": fields})

    async def get_steps(self, job_id: str) -> tuple[Job, int] | None:
        """A job and the revision of its steps array (for `replace_steps`)."""
        doc = await self._get_doc(job_id)
        if doc is None:
            return None
        return _job_from_doc(doc), int(doc.get("steps_revision") or 0)

    async def replace_steps(
        self, job_id: str, *, revision: int, steps: Sequence[JobStep], now: datetime
    ) -> Job | None:
        """Write the whole steps array if nobody changed it since `revision` was read.

        FerretDB has no positional or arrayFilters updates, so a step is replaced by
        rewriting the array; the revision guard makes a lost update visible (None) instead
        of silent, and the caller reads again.
        """
        oid = object_id(job_id)
        if oid is None:
            return None
        doc = await self._jobs.find_one_and_update(
            {"_id": oid, "status": {"$in": _ACTIVE}, "steps_revision": revision},
            {
                "$set": {"steps": [step_to_doc(step) for step in steps], "updated_at": now},
                "$inc": {"steps_revision": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return _job_from_doc(doc) if doc else None

    async def finish(
        self,
        job_id: str,
        *,
        status: JobStatus,
        error_message: str | None,
        items_processed: int | None,
        counters: Mapping[str, int],
        now: datetime,
    ) -> Job | None:
        """End an active job; None when it is missing or already ended."""
        fields: dict[str, Any] = {
            "status": status.value,
            "completed_at": now,
            "updated_at": now,
            "error_message": error_message,
        }
        if items_processed is not None:
            fields["items_processed"] = items_processed
        fields.update(_counter_sets(counters))
        return await self._update_active(job_id, {"$set": fields})

    async def fail_if_stale(
        self, job_id: str, *, stale_before: datetime, message: str, now: datetime
    ) -> Job | None:
        """Fail an active job not changed since `stale_before`; None if it moved meanwhile."""
        oid = object_id(job_id)
        if oid is None:
            return None
        doc = await self._jobs.find_one_and_update(
            {"_id": oid, "status": {"$in": _ACTIVE}, "updated_at": {"$lt": stale_before}},
            {
                "$set": {
                    "status": JobStatus.FAILED.value,
                    "error_message": message,
                    "completed_at": now,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return _job_from_doc(doc) if doc else None

    async def find_stale(self, stale_before: datetime, *, limit: int) -> list[Job]:
        """Active jobs whose record has not changed since `stale_before`."""
        cursor = self._jobs.find(
            {"status": {"$in": _ACTIVE}, "updated_at": {"$lt": stale_before}}
        ).limit(limit)
        return [_job_from_doc(doc) async for doc in cursor]

    async def list_for_user(
        self,
        user_id: str,
        *,
        status: JobStatus | None,
        job_type: JobType | None,
        skip: int,
        limit: int,
    ) -> Page[Job]:
        """One page of a user's jobs, newest first, and the number of matches."""
        query: dict[str, Any] = {"user_id": user_id}
        if status is not None:
            query["status"] = status.value
        if job_type is not None:
            query["job_type"] = job_type.value
        cursor = (
            self._jobs.find(query)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
        )
        items = tuple([_job_from_doc(doc) async for doc in cursor])
        return Page(items=items, total=await _total(self._jobs, query, skip, limit, len(items)))

    async def count_by_status(self, user_id: str) -> dict[JobStatus, int]:
        """How many jobs of one user are in each status."""
        counts: dict[JobStatus, int] = {}
        for value, count in (await _sum_by(self._jobs, {"user_id": user_id}, "$status", 1)).items():
            with contextlib.suppress(ValueError):
                counts[JobStatus(value)] = int(count)
        return counts

    async def sum_items_processed(self, user_id: str, status: JobStatus) -> int:
        """The sum of items_processed over one user's jobs in one status."""
        totals = await _sum_by(
            self._jobs, {"user_id": user_id, "status": status.value}, None, "$items_processed"
        )
        return int(totals.get(None, 0))

    async def last_completed_at(self, user_id: str, group: JobGroup) -> datetime | None:
        """When the user's latest completed job of a group completed."""
        cursor = (
            self._jobs.find(
                {"user_id": user_id, "group": group.value, "status": JobStatus.COMPLETED.value}
            )
            .sort([("completed_at", DESCENDING)])
            .limit(1)
        )
        async for doc in cursor:
            return doc.get("completed_at")
        return None


def status_class(status_code: int) -> str:
    """The class of an HTTP status ("2xx", "4xx", ...); "network" for 0 (no answer came)."""
    if status_code == 0:
        return "network"
    return f"{status_code // 100}xx"


def endpoint_key(method: str, endpoint: str) -> str:
    """The "<METHOD> <path>" form the stats group by."""
    return f"{method} {endpoint}"


def _parts(calls: int) -> int:
    """How many parts a slot of `calls` entries may have (some may not exist)."""
    return max(0, calls - 1) // _SLOT_PART + 1


def slot_of(moment: datetime) -> str:
    """The 10-minute slot of a UTC time within its day, "HHM" ("133" is 13:30-13:39)."""
    return f"{moment.hour:02d}{moment.minute // 10}"


@dataclass
class _DayUpdate:
    """What one batch adds to one user's day: counters, summed latency, slot entries."""

    counts: Counter[str] = field(default_factory=Counter)
    latency_ms: float = 0.0
    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def escape_field(text: str) -> str:
    """`text` usable as a field name ("." and "$" mean paths and operators): %-escaped."""
    return text.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def unescape_field(name: str) -> str:
    """The text `escape_field` was given."""
    return unquote(name)


def escape_regex(text: str) -> str:
    """`text` as a literal pattern for both PCRE (MongoDB) and RE2 (FerretDB)."""
    return "".join(f"\\{ch}" if ch in _REGEX_SPECIALS else ch for ch in text)


# The metacharacters of both dialects outside character classes; the rest are literal.
_REGEX_SPECIALS = frozenset("\\.^$|?*+()[]{}")


def _api_call_from_doc(doc: Mapping[str, Any]) -> ApiCall:
    return ApiCall(
        id=str(doc["_id"]),
        service=doc.get("service") or "",
        caller=doc.get("caller") or "",
        method=doc.get("method") or "",
        endpoint=doc.get("endpoint") or "",
        status_code=int(doc.get("status_code") or 0),
        latency_ms=float(doc.get("latency_ms") or 0.0),
        error=doc.get("error"),
        request_id=doc.get("request_id") or "",
        user_id=doc.get("user_id") or "",
        timestamp=doc["timestamp"],
    )


def api_call_to_doc(call: ApiCall) -> dict[str, Any]:
    """The stored form of a call, with the fields FerretDB cannot derive at query time."""
    return {
        "_id": ObjectId(call.id),
        "service": call.service,
        "caller": call.caller,
        "method": call.method,
        "endpoint": call.endpoint,
        "endpoint_lower": call.endpoint.lower(),
        "endpoint_key": endpoint_key(call.method, call.endpoint),
        "status_code": call.status_code,
        "status_class": status_class(call.status_code),
        "latency_ms": call.latency_ms,
        "error": call.error,
        "request_id": call.request_id or None,
        # Calls made for no user (e.g. an app token) are stored with null and never listed.
        "user_id": call.user_id or None,
        "timestamp": call.timestamp,
        # In the day stats and slot indexes (see `ApiCallRepository.count_uncounted`).
        "counted": True,
    }


class ApiCallRepository:
    """The log of outbound API calls (`api_calls`)."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._calls = database["api_calls"]
        self._days = database["api_call_days"]
        self._slots = database["api_call_slots"]
        # Counter updates of one day document run one at a time in this process: FerretDB
        # applies `$inc` as read-modify-write, so two at once could lose one (MongoDB's are
        # atomic; production runs it, the single-box FerretDB stack runs one replica).
        self._day_locks = [asyncio.Lock() for _ in range(_DAY_LOCKS)]

    async def ensure_indexes(self, *, ttl_seconds: int | None) -> None:
        """Create the indexes; with `ttl_seconds`, also MongoDB's TTL index on `timestamp`."""
        await self._calls.create_index(
            [("user_id", ASCENDING), ("timestamp", DESCENDING)], name="user_timestamp"
        )
        await self._days.create_index([("user_id", ASCENDING), ("day", ASCENDING)], name="user_day")
        await self._slots.create_index("day", name="day")
        if ttl_seconds is None:
            return
        try:
            await self._calls.create_index(
                "timestamp", name="timestamp_ttl", expireAfterSeconds=ttl_seconds
            )
        except OperationFailure as exc:
            if exc.code != _INDEX_OPTIONS_CONFLICT:
                raise
            # The retention setting changed since the index was made: retune it in place.
            await self._calls.database.command(
                {
                    "collMod": self._calls.name,
                    "index": {"name": "timestamp_ttl", "expireAfterSeconds": ttl_seconds},
                }
            )

    async def insert_many(self, calls: Sequence[ApiCall]) -> int:
        """Store calls and count them in their day's stats; ones already stored are skipped.

        Returns how many were new. Only new records are counted, so a batch sent twice
        counts once. The two writes are not one transaction: a failure between them leaves
        that batch in the log (and its filtered listings) but out of the stats and the
        unfiltered listing, like a batch the recorder could not deliver (the log is best
        effort as a whole); a batch is never counted twice.
        """
        if not calls:
            return 0
        docs = [api_call_to_doc(call) for call in calls]
        new = list(calls)
        try:
            await self._calls.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != _DUPLICATE_KEY for error in errors):
                raise
            refused = {int(error["index"]) for error in errors}
            new = [call for index, call in enumerate(calls) if index not in refused]
        await self._count(new)
        return len(new)

    async def _count(self, calls: Sequence[ApiCall]) -> None:
        """Add the calls to their user's day stats and slot indexes (no user: not listed)."""
        days: dict[tuple[str, str], _DayUpdate] = {}
        for call in calls:
            if not call.user_id:
                continue
            day = call.timestamp.date().isoformat()
            update = days.setdefault((call.user_id, day), _DayUpdate())
            slot = slot_of(call.timestamp)
            update.counts["calls"] += 1
            update.counts[f"codes.{call.status_code}"] += 1
            update.counts[
                f"endpoints.{escape_field(endpoint_key(call.method, call.endpoint))}"
            ] += 1
            update.counts[f"slots.{slot}"] += 1
            update.latency_ms += call.latency_ms
            update.entries.setdefault(slot, []).append(
                {"t": call.timestamp, "i": ObjectId(call.id)}
            )
        await asyncio.gather(
            *(self._add_to_day(user_id, day, update) for (user_id, day), update in days.items())
        )

    async def _add_to_day(self, user_id: str, day: str, update: _DayUpdate) -> None:
        day_id = f"{user_id}:{day}"
        owner = {"user_id": user_id, "day": day}
        async with self._day_locks[zlib.crc32(day_id.encode()) % _DAY_LOCKS]:
            stored = await self._days.find_one({"_id": day_id}, {"slots": 1}) or {}
            counts = stored.get("slots") or {}
            # Slots first: a reader that sees a count finds its entries. A slot's entries
            # go in parts of about _SLOT_PART (the part where the slot's count stands), so
            # no write rewrites an ever longer document.
            for slot, entries in update.entries.items():
                part = int(counts.get(slot) or 0) // _SLOT_PART
                await upsert_by_id(
                    self._slots,
                    f"{day_id}T{slot}#{part}",
                    {"$push": {"calls": {"$each": entries}}, "$setOnInsert": owner},
                )
            increments = {**update.counts, "latency_ms": update.latency_ms}
            await upsert_by_id(self._days, day_id, {"$inc": increments, "$setOnInsert": owner})

    async def count_uncounted(
        self, *, still_ours: Callable[[], Awaitable[bool]], chunk: int = 500
    ) -> int:
        """Count records stored before the day stats existed; returns how many it counted.

        The caller holds a lease (one replica at a time: FerretDB's conditional updates are
        read-modify-write, so claiming records one by one would not keep two replicas
        apart); `still_ours` renews it after every chunk and says whether to go on. Each
        record is marked `counted` before it is counted: a crash in between leaves at most
        a chunk out of the stats (the records stay in the log), nothing is counted twice.
        """
        counted = 0
        claimed: list[ApiCall] = []
        async for doc in self._calls.find({"counted": {"$exists": False}}):
            await self._calls.update_one({"_id": doc["_id"]}, {"$set": {"counted": True}})
            claimed.append(_api_call_from_doc(doc))
            if len(claimed) >= chunk:
                await self._count(claimed)
                counted, claimed = counted + len(claimed), []
                if not await still_ours():
                    return counted
        await self._count(claimed)
        return counted + len(claimed)

    async def page_from_slots(
        self, user_id: str, since: date, *, skip: int, limit: int
    ) -> Page[ApiCall]:
        """One page of all the user's calls, newest first, through the slot indexes.

        The day stats say how many calls each 10-minute slot holds, so whole slots before
        the page are skipped by count; the slots the page falls in are read and sorted, and
        the page's records read by `_id`. Costs the same however long the log is.
        """
        days = await self.days_for_user(user_id, since)
        total = sum(int(day.get("calls") or 0) for day in days)
        slots = sorted(
            (
                (day["day"], slot, int(calls))
                for day in days
                for slot, calls in (day.get("slots") or {}).items()
            ),
            reverse=True,
        )
        wanted: list[str] = []
        first = position = 0
        for day, slot, calls in slots:
            if position >= skip + limit:
                break
            if position + calls > skip:
                if not wanted:
                    first = position
                wanted.extend(f"{user_id}:{day}T{slot}#{part}" for part in range(_parts(calls)))
            position += calls
        docs = await asyncio.gather(*(self._slots.find_one({"_id": i}) for i in wanted))
        entries = sorted(
            ((entry["t"], entry["i"]) for doc in docs if doc for entry in doc.get("calls") or ()),
            reverse=True,
        )[skip - first : skip - first + limit]
        found = await asyncio.gather(*(self._calls.find_one({"_id": i}) for _, i in entries))
        items = tuple(_api_call_from_doc(doc) for doc in found if doc is not None)
        return Page(items=items, total=total)

    async def days_for_user(self, user_id: str, since: date) -> list[dict[str, Any]]:
        """The user's day stats from `since` on (the days within the retention)."""
        cursor = self._days.find({"user_id": user_id, "day": {"$gte": since.isoformat()}})
        return [doc async for doc in cursor]

    def _query(self, user_id: str, filters: ApiCallFilter) -> dict[str, Any]:
        query: dict[str, Any] = {"user_id": user_id}
        if filters.service is not None:
            query["service"] = filters.service
        status: dict[str, int] = {}
        if filters.status_min is not None:
            status["$gte"] = filters.status_min
        if filters.status_max is not None:
            status["$lte"] = filters.status_max
        if status:
            query["status_code"] = status
        if filters.method is not None:
            query["method"] = filters.method
        if filters.endpoint_contains:
            query["endpoint_lower"] = {"$regex": escape_regex(filters.endpoint_contains.lower())}
        return query

    async def list_for_user(
        self, user_id: str, filters: ApiCallFilter, *, skip: int, limit: int
    ) -> Page[ApiCall]:
        """One page of a user's filtered calls, newest first, and the number of matches.

        A query over the whole log (a scan on FerretDB); the unfiltered listing uses
        `page_from_slots`.
        """
        query = self._query(user_id, filters)
        cursor = (
            self._calls.find(query)
            .sort([("timestamp", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
        )
        items = tuple([_api_call_from_doc(doc) async for doc in cursor])
        return Page(items=items, total=await _total(self._calls, query, skip, limit, len(items)))

    async def delete_before(self, day: date) -> int:
        """Delete the calls and day stats of days before `day` (UTC); returns how many calls."""
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        result = await self._calls.delete_many({"timestamp": {"$lt": start}})
        await self._days.delete_many({"day": {"$lt": day.isoformat()}})
        await self._slots.delete_many({"day": {"$lt": day.isoformat()}})
        return result.deleted_count
