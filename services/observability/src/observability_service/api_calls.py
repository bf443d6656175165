"""The log of outbound API calls: store batches, page a user's calls, aggregate, expire.

Every service ships its Spotify call records here in batches (see echostats_spotify's
BufferedRecorder). Records are normalised once, at write time: method upper-case, service
lower-case, endpoint without query string, plus the derived fields the queries need.

Decisions the REST surface shows:
- Calls made for no user (empty user_id) are stored but never listed to anyone, and
  every read is scoped to the authenticated user.
- `success_rate` is the share of 2xx and 3xx answers in percent, one decimal; with no
  calls at all it is 100.0 (nothing has failed), so a new account does not show an alarm.
- `error_count` counts status >= 400 and network failures (status 0); `rate_limit_count`
  counts 429s (which are errors too).
- `avg_latency_ms` is the mean over all calls, one decimal, 0.0 with no calls.
- A record whose id is a valid ObjectId keeps it, so a batch sent twice is stored once
  (the second copy counts as not stored); records without one get a fresh id.
- A record with an impossible status (not 0 and not 100-599) or without method or
  endpoint is skipped and not counted as stored.
- Records are kept `api_log_retention_days`, counted in whole UTC days: the periodic
  delete removes the calls and the day stats of days before the first day kept, so the
  stats and the listing agree. MongoDB's TTL index (a day longer) is only a backstop.
- The stats are summed from per-user, per-day counters written with the records (see
  `repository.py`), so they cost the same however long the log is.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from bson import ObjectId

from echostats_platform.errors import InvalidArgument
from echostats_platform.lease import Lease
from echostats_platform.timeutil import utc_now
from observability_service.models import (
    ApiCall,
    ApiCallFilter,
    ApiCallStats,
    EndpointCount,
    Page,
)
from observability_service.repository import (
    ApiCallRepository,
    object_id,
    status_class,
    truncate_to_ms,
    unescape_field,
)
from observability_service.validation import PageRequest, require_user_id

log = logging.getLogger(__name__)

MAX_BATCH = 10_000
CALLS_PAGE_SIZE_DEFAULT = 50
CALLS_PAGE_SIZE_MAX = 200
TOP_ENDPOINTS = 10
_SUCCESS_CLASSES = frozenset({"2xx", "3xx"})
_RATE_LIMITED = 429
_MAX_ENDPOINT = 512
_MAX_ERROR = 1000
_MAX_SHORT = 128


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _path_only(endpoint: str) -> str:
    # The recorder sends paths already; a full URL or a query string would leak ids and
    # tokens into the log and split one endpoint into many, so both are cut here too.
    endpoint = endpoint.strip()
    if "://" in endpoint:
        endpoint = urlsplit(endpoint).path
    for mark in ("?", "#"):
        endpoint = endpoint.split(mark, 1)[0]
    return _clip(endpoint, _MAX_ENDPOINT)


def normalize_call(call: ApiCall, now: datetime) -> ApiCall | None:
    """The call as stored, or None when it cannot be a real HTTP exchange."""
    method = call.method.strip().upper()
    endpoint = _path_only(call.endpoint)
    if not method or not endpoint:
        return None
    if call.status_code != 0 and not 100 <= call.status_code <= 599:
        return None
    latency = call.latency_ms
    # NaN and infinities cannot be stored on FerretDB and mean "not measured".
    if not math.isfinite(latency) or latency < 0:
        latency = 0.0
    return ApiCall(
        id=call.id if object_id(call.id) is not None else str(ObjectId()),
        service=_clip(call.service.strip().lower(), _MAX_SHORT) or "unknown",
        caller=_clip(call.caller.strip(), _MAX_SHORT),
        method=_clip(method, 16),
        endpoint=endpoint,
        status_code=call.status_code,
        latency_ms=latency,
        error=_clip(call.error, _MAX_ERROR) if call.error else None,
        request_id=_clip(call.request_id, _MAX_SHORT),
        user_id=_clip(call.user_id.strip(), _MAX_SHORT),
        timestamp=truncate_to_ms(call.timestamp or now),
    )


def _normalize_filter(filters: ApiCallFilter) -> ApiCallFilter:
    return ApiCallFilter(
        service=(filters.service or "").strip().lower() or None,
        status_min=filters.status_min,
        status_max=filters.status_max,
        method=(filters.method or "").strip().upper() or None,
        endpoint_contains=filters.endpoint_contains or None,
    )


class ApiCallLog:
    """Use cases of the outbound API call log."""

    def __init__(
        self,
        *,
        calls: ApiCallRepository,
        retention_days: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._calls = calls
        self._retention = timedelta(days=retention_days)
        self._clock = clock

    async def record(self, calls: Sequence[ApiCall]) -> int:
        """Store a batch of call records; returns how many were newly stored."""
        if len(calls) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} calls per batch")
        now = self._clock()
        normalized = [n for n in (normalize_call(call, now) for call in calls) if n is not None]
        if len(normalized) < len(calls):
            log.warning(
                "invalid api call records skipped",
                extra={"skipped": len(calls) - len(normalized)},
            )
        return await self._calls.insert_many(normalized)

    def _first_day_kept(self) -> date:
        """The oldest UTC day whose calls are kept."""
        return (self._clock() - self._retention).date()

    async def list_calls(
        self, *, user_id: str, page: PageRequest, filters: ApiCallFilter
    ) -> Page[ApiCall]:
        """One page of the user's calls, newest first."""
        require_user_id(user_id)
        filters = _normalize_filter(filters)
        if filters == ApiCallFilter():
            return await self._calls.page_from_slots(
                user_id, self._first_day_kept(), skip=page.skip, limit=page.size
            )
        return await self._calls.list_for_user(user_id, filters, skip=page.skip, limit=page.size)

    async def stats(self, *, user_id: str) -> ApiCallStats:
        """Totals, error and rate-limit counts, success rate, latency and top endpoints."""
        require_user_id(user_id)
        by_code: Counter[int] = Counter()
        endpoints: Counter[str] = Counter()
        latency_sum = 0.0
        for day in await self._calls.days_for_user(user_id, self._first_day_kept()):
            for code, calls in (day.get("codes") or {}).items():
                by_code[int(code)] += int(calls)
            for name, calls in (day.get("endpoints") or {}).items():
                endpoints[unescape_field(name)] += int(calls)
            latency_sum += float(day.get("latency_ms") or 0.0)
        total = sum(by_code.values())
        distribution: dict[str, int] = {}
        for code, calls in by_code.items():
            key = status_class(code)
            distribution[key] = distribution.get(key, 0) + calls
        successes = sum(count for key, count in distribution.items() if key in _SUCCESS_CLASSES)
        errors = sum(calls for code, calls in by_code.items() if code == 0 or code >= 400)
        top = sorted(
            ((name, calls) for name, calls in endpoints.items() if calls > 0),
            key=lambda item: (-item[1], item[0]),
        )[:TOP_ENDPOINTS]
        return ApiCallStats(
            total_calls=total,
            error_count=errors,
            rate_limit_count=by_code.get(_RATE_LIMITED, 0),
            success_rate=round(100.0 * successes / total, 1) if total else 100.0,
            avg_latency_ms=round(latency_sum / total, 1) if total else 0.0,
            status_distribution=distribution,
            top_endpoints=tuple(EndpointCount(endpoint=e, count=c) for e, c in top),
        )

    async def count_records_from_before_the_stats(self, lease: Lease) -> int:
        """Count, once, the records stored before the day stats existed (start-up work).

        Under `lease` (Redis; every replica runs this at start, one does the work): each
        chunk renews it, and a replica that lost it stops. Returns how many it counted.
        """
        if not await lease.acquire():
            return 0
        try:
            return await self._calls.count_uncounted(still_ours=lease.acquire)
        finally:
            await lease.release()

    async def purge_expired(self) -> int:
        """Delete the records of days before the retention; returns how many."""
        deleted = await self._calls.delete_before(self._first_day_kept())
        if deleted:
            log.info("expired api call records deleted", extra={"deleted": deleted})
        return deleted
