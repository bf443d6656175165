"""The outbound API call log over gRPC on real FerretDB: batches, filters, paging, stats.

The module stores 1000 deterministic pseudo-random calls for one user (plus calls of a
second user and calls made for nobody) through RecordApiCalls, then checks every listing
and every statistic against a recomputation in Python from the records it sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from bson import ObjectId
from google.protobuf.timestamp_pb2 import Timestamp

from echostats.observability.v1 import observability_service_pb2 as pb
from echostats_platform.lease import Lease
from echostats_platform.redis import create_redis
from observability_service import repository
from observability_service.api_calls import ApiCallLog
from observability_service.models import ApiCall
from observability_service.repository import ApiCallRepository, api_call_to_doc

ENDPOINTS = (
    "/v1/me/player/recently-played",
    "/v1/audio-features",
    "/v1/me/top/tracks",
    "/v1/me/top/artists",
    "/v1/me/player",
    "/v1/me/player/queue",
    "/v1/playlists/37i9dQZF1DXcBWIGoYBM5M/tracks",
    "/v1/artists/4Z8W4fKeB5YxbusRsdQVPb",
    "/v1/tracks",
    "/v1/search",
    "/api/token",
    "/v1/Me/Following",
    "/v1/odd.path(1)+[x]",
)
METHODS = ("GET", "GET", "GET", "GET", "POST", "PUT", "DELETE")
STATUSES = (200,) * 12 + (201, 204, 304, 400, 401, 403, 404, 429, 429, 500, 502, 503, 0)
SERVICES = ("spotify",) * 5 + ("github",)
USER_CALLS = 1000
OTHER_USER_CALLS = 100
ANONYMOUS_CALLS = 50
BATCH = 500


@dataclass(frozen=True)
class Sent:
    """A call as the test sent it (and as it must come back)."""

    id: str
    service: str
    caller: str
    method: str
    endpoint: str
    status_code: int
    latency_ms: float
    error: str | None
    request_id: str
    user_id: str
    timestamp: datetime

    def to_pb(self) -> pb.ApiCall:
        """The record as a service's recorder sends it."""
        stamp = Timestamp()
        stamp.FromDatetime(self.timestamp)
        message = pb.ApiCall(
            id=self.id,
            service=self.service,
            caller=self.caller,
            method=self.method,
            endpoint=self.endpoint,
            status_code=self.status_code,
            latency_ms=self.latency_ms,
            request_id=self.request_id,
            user_id=self.user_id,
            timestamp=stamp,
        )
        if self.error is not None:
            message.error = self.error
        return message


def make_calls(rng: random.Random, user_id: str, count: int, start: datetime) -> list[Sent]:
    """`count` varied calls at millisecond precision (what the database keeps)."""
    calls = []
    for _ in range(count):
        status = rng.choice(STATUSES)
        calls.append(
            Sent(
                id=str(ObjectId()),
                service=rng.choice(SERVICES),
                caller=rng.choice(("ingestion", "catalog", "player-proxy")),
                method=rng.choice(METHODS),
                endpoint=rng.choice(ENDPOINTS),
                status_code=status,
                # Halves are exact in binary, so sums do not depend on the order of adding.
                latency_ms=rng.randint(4, 3000) / 2,
                error=None if 0 < status < 400 else f"HTTP {status}",
                request_id=f"req-{rng.randrange(10**9)}",
                user_id=user_id,
                # A few share a millisecond, so the _id tie-break of the ordering shows.
                timestamp=start + timedelta(milliseconds=rng.randrange(3_000_000)),
            )
        )
    return calls


def newest_first(calls: Iterable[Sent]) -> list[Sent]:
    """The documented order: newest first, ties by id (newest id first)."""
    return sorted(calls, key=lambda call: (call.timestamp, call.id), reverse=True)


def matches(call: Sent, filters: dict[str, Any]) -> bool:
    """The documented filters, recomputed."""
    if "service" in filters and call.service != filters["service"].lower():
        return False
    if "status_min" in filters and call.status_code < filters["status_min"]:
        return False
    if "status_max" in filters and call.status_code > filters["status_max"]:
        return False
    if "method" in filters and call.method != filters["method"].upper():
        return False
    needle = filters.get("endpoint_contains")
    return not needle or needle.lower() in call.endpoint.lower()


def expected_stats(calls: list[Sent]) -> dict[str, Any]:
    """The documented statistics, recomputed."""
    total = len(calls)

    def klass(code: int) -> str:
        return "network" if code == 0 else f"{code // 100}xx"

    distribution = Counter(klass(call.status_code) for call in calls)
    endpoints = Counter(f"{call.method} {call.endpoint}" for call in calls)
    top = sorted(endpoints.items(), key=lambda item: (-item[1], item[0]))[:10]
    success = distribution["2xx"] + distribution["3xx"]
    return {
        "total_calls": total,
        "error_count": sum(call.status_code == 0 or call.status_code >= 400 for call in calls),
        "rate_limit_count": sum(call.status_code == 429 for call in calls),
        "success_rate": round(100 * success / total, 1) if total else 100.0,
        "avg_latency_ms": round(sum(call.latency_ms for call in calls) / total, 1)
        if total
        else 0.0,
        "status_distribution": dict(distribution),
        "top_endpoints": top,
    }


def as_tuple(message: pb.ApiCall) -> tuple[Any, ...]:
    """A listed call in the shape of `Sent`."""
    return (
        message.id,
        message.service,
        message.caller,
        message.method,
        message.endpoint,
        message.status_code,
        message.latency_ms,
        message.error if message.HasField("error") else None,
        message.request_id,
        message.user_id,
        message.timestamp.ToDatetime(tzinfo=UTC),
    )


def sent_tuple(call: Sent) -> tuple[Any, ...]:
    """A sent call in the shape of `as_tuple`."""
    return (
        call.id,
        call.service,
        call.caller,
        call.method,
        call.endpoint,
        call.status_code,
        call.latency_ms,
        call.error,
        call.request_id,
        call.user_id,
        call.timestamp,
    )


def batches(calls: list[Sent], size: int) -> Iterator[list[Sent]]:
    """`calls` in consecutive batches of `size`."""
    for index in range(0, len(calls), size):
        yield calls[index : index + size]


@dataclass
class Logged:
    """What the module stored: the calls of two users, and how long storing took."""

    user: str
    calls: list[Sent]
    other_user: str
    other_calls: list[Sent]
    seconds_per_batch: list[float]


@pytest.fixture(scope="module")
async def logged(observability: Any) -> Logged:
    """1000 calls of one user, 100 of another and 50 made for nobody, in batches of 500."""
    rng = random.Random(20250115)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    user, other = str(ObjectId()), str(ObjectId())
    calls = make_calls(rng, user, USER_CALLS, start)
    other_calls = make_calls(rng, other, OTHER_USER_CALLS, start)
    anonymous = make_calls(rng, "", ANONYMOUS_CALLS, start)
    mixed = calls + other_calls + anonymous
    rng.shuffle(mixed)
    durations = []
    for batch in batches(mixed, BATCH):
        began = time.perf_counter()
        response = await observability.stub.RecordApiCalls(
            pb.RecordApiCallsRequest(calls=[call.to_pb() for call in batch])
        )
        durations.append(time.perf_counter() - began)
        assert response.stored == len(batch)
    return Logged(user, calls, other, other_calls, durations)


async def test_record_batches_are_stored_and_timed(logged: Logged) -> None:
    # Two full batches of 500 and one of 150; the timing is reported by -s / --durations.
    assert len(logged.seconds_per_batch) == 3
    print(f"RecordApiCalls of {BATCH} records: {logged.seconds_per_batch[0] * 1000:.0f} ms")
    assert all(seconds < 20 for seconds in logged.seconds_per_batch)


async def test_sending_a_batch_again_stores_nothing_new(observability: Any, logged: Logged) -> None:
    again = await observability.stub.RecordApiCalls(
        pb.RecordApiCallsRequest(calls=[call.to_pb() for call in logged.other_calls[:20]])
    )
    assert again.stored == 0
    listed = await observability.stub.ListApiCalls(
        pb.ListApiCallsRequest(user_id=logged.other_user, page_size=1)
    )
    assert listed.total == OTHER_USER_CALLS
    # The stats count each record once too.
    stats = await observability.stub.GetApiCallStats(
        pb.GetApiCallStatsRequest(user_id=logged.other_user)
    )
    assert stats.total_calls == OTHER_USER_CALLS


async def test_list_pages_newest_first_with_full_records(
    observability: Any, logged: Logged
) -> None:
    expected = [sent_tuple(call) for call in newest_first(logged.calls)]
    seen: list[tuple[Any, ...]] = []
    for page in itertools.count(1):
        response = await observability.stub.ListApiCalls(
            pb.ListApiCallsRequest(user_id=logged.user, page=page, page_size=200)
        )
        assert response.total == USER_CALLS
        if not response.calls:
            break
        assert len(response.calls) == min(200, USER_CALLS - len(seen))
        seen.extend(as_tuple(call) for call in response.calls)
    assert seen == expected

    default = await observability.stub.ListApiCalls(pb.ListApiCallsRequest(user_id=logged.user))
    assert [call.id for call in default.calls] == [row[0] for row in expected[:50]]


async def test_page_size_is_bounded_at_200(observability: Any, logged: Logged) -> None:
    stub = observability.stub
    for bad in (
        pb.ListApiCallsRequest(user_id=logged.user, page_size=201),
        pb.ListApiCallsRequest(user_id=logged.user, page_size=-1),
        pb.ListApiCallsRequest(user_id=logged.user, page=-2),
        pb.ListApiCallsRequest(page_size=10),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListApiCalls(bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    biggest = await stub.ListApiCalls(pb.ListApiCallsRequest(user_id=logged.user, page_size=200))
    assert len(biggest.calls) == 200


FILTER_VALUES: dict[str, list[Any]] = {
    "service": ["spotify", "GitHub"],
    "status_min": [400, 0],
    "status_max": [299, 429],
    "method": ["get", "DELETE"],
    "endpoint_contains": ["PLAYER", "odd.path(1)+[", "/v1/me/", "no-such-endpoint"],
}


def filter_combinations() -> Iterator[dict[str, Any]]:
    """Every subset of the five filters, each subset with two value choices."""
    names = list(FILTER_VALUES)
    for size in range(len(names) + 1):
        for subset in itertools.combinations(names, size):
            for variant in range(2):
                yield {
                    name: FILTER_VALUES[name][(variant + i) % len(FILTER_VALUES[name])]
                    for i, name in enumerate(subset)
                }


async def test_every_filter_combination_matches_a_recomputation(
    observability: Any, logged: Logged
) -> None:
    ordered = newest_first(logged.calls)
    checked = 0
    nonempty = 0
    for filters in filter_combinations():
        expected = [call.id for call in ordered if matches(call, filters)]
        response = await observability.stub.ListApiCalls(
            pb.ListApiCallsRequest(user_id=logged.user, page_size=200, **filters)
        )
        assert response.total == len(expected), filters
        assert [call.id for call in response.calls] == expected[:200], filters
        checked += 1
        nonempty += bool(expected)
    assert checked == 64
    # The data is varied enough that most combinations select something.
    assert nonempty > 40
    # A second page of a filtered listing continues where the first stopped.
    filters = {"service": "spotify", "method": "GET"}
    expected = [call.id for call in ordered if matches(call, filters)]
    assert len(expected) > 200
    page2 = await observability.stub.ListApiCalls(
        pb.ListApiCallsRequest(user_id=logged.user, page=2, page_size=200, **filters)
    )
    assert [call.id for call in page2.calls] == expected[200:400]


async def test_regex_specials_in_endpoint_filter_are_literal(
    observability: Any, logged: Logged
) -> None:
    for needle, expected_endpoints in (
        ("odd.path(1)+[x]", {"/v1/odd.path(1)+[x]"}),
        (".", {"/v1/odd.path(1)+[x]"}),
        ("me/.*", set()),
        ("/v1/me/following", {"/v1/Me/Following"}),
    ):
        response = await observability.stub.ListApiCalls(
            pb.ListApiCallsRequest(user_id=logged.user, endpoint_contains=needle, page_size=200)
        )
        assert {call.endpoint for call in response.calls} == expected_endpoints, needle
        assert response.total == sum(
            call.endpoint in expected_endpoints for call in logged.calls
        ), needle


async def test_stats_match_a_recomputation(observability: Any, logged: Logged) -> None:
    for user, calls in ((logged.user, logged.calls), (logged.other_user, logged.other_calls)):
        stats = await observability.stub.GetApiCallStats(pb.GetApiCallStatsRequest(user_id=user))
        expected = expected_stats(calls)
        assert stats.total_calls == expected["total_calls"]
        assert stats.error_count == expected["error_count"]
        assert stats.rate_limit_count == expected["rate_limit_count"]
        assert stats.success_rate == expected["success_rate"]
        assert stats.avg_latency_ms == expected["avg_latency_ms"]
        assert dict(stats.status_distribution) == expected["status_distribution"]
        assert [(top.endpoint, top.count) for top in stats.top_endpoints] == expected[
            "top_endpoints"
        ]
    # Sanity of the recomputation itself on the big user.
    big = expected_stats(logged.calls)
    assert big["total_calls"] == 1000 and len(big["top_endpoints"]) == 10
    assert set(big["status_distribution"]) == {"2xx", "3xx", "4xx", "5xx", "network"}
    assert 0 < big["rate_limit_count"] < big["error_count"]


async def test_users_see_only_their_own_calls(observability: Any, logged: Logged) -> None:
    stub = observability.stub
    other = await stub.ListApiCalls(
        pb.ListApiCallsRequest(user_id=logged.other_user, page_size=200)
    )
    assert other.total == OTHER_USER_CALLS
    assert {call.id for call in other.calls} == {call.id for call in logged.other_calls}
    assert {call.user_id for call in other.calls} == {logged.other_user}
    # Calls made for nobody are listed to nobody, and count in nobody's stats.
    stranger = str(ObjectId())
    assert (await stub.ListApiCalls(pb.ListApiCallsRequest(user_id=stranger))).total == 0
    empty = await stub.GetApiCallStats(pb.GetApiCallStatsRequest(user_id=stranger))
    assert empty.total_calls == 0 and empty.error_count == 0 and empty.rate_limit_count == 0
    assert empty.success_rate == 100.0
    assert empty.avg_latency_ms == 0.0
    assert not empty.status_distribution and not empty.top_endpoints
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetApiCallStats(pb.GetApiCallStatsRequest(user_id=""))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_records_are_normalised_and_impossible_ones_skipped(observability: Any) -> None:
    stub = observability.stub
    user = str(ObjectId())
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = await stub.RecordApiCalls(
        pb.RecordApiCallsRequest(
            calls=[
                pb.ApiCall(
                    service=" Spotify",
                    caller="catalog",
                    method="get",
                    endpoint="https://api.spotify.com/v1/tracks?ids=a,b&market=US",
                    status_code=200,
                    latency_ms=math.nan,
                    user_id=user,
                ),
                pb.ApiCall(method="GET", endpoint="/v1/me", status_code=999, user_id=user),
                pb.ApiCall(method="", endpoint="/v1/me", status_code=200, user_id=user),
                pb.ApiCall(method="GET", endpoint="", status_code=200, user_id=user),
                pb.ApiCall(id="not-an-id", method="POST", endpoint="/api/token", user_id=user),
            ]
        )
    )
    assert response.stored == 2
    listed = await stub.ListApiCalls(pb.ListApiCallsRequest(user_id=user))
    assert listed.total == 2
    by_method = {call.method: call for call in listed.calls}
    track = by_method["GET"]
    assert (track.service, track.endpoint, track.latency_ms) == ("spotify", "/v1/tracks", 0.0)
    assert track.timestamp.ToDatetime(tzinfo=UTC) >= before  # no time given: stored as now
    network = by_method["POST"]
    assert network.status_code == 0 and ObjectId.is_valid(network.id)
    assert network.service == "unknown"
    stats = await stub.GetApiCallStats(pb.GetApiCallStatsRequest(user_id=user))
    assert dict(stats.status_distribution) == {"2xx": 1, "network": 1}
    assert (stats.error_count, stats.success_rate) == (1, 50.0)


async def test_top_endpoint_ties_are_broken_by_name(observability: Any) -> None:
    stub = observability.stub
    user = str(ObjectId())
    now = datetime.now(UTC)
    plan = [("GET", "/b", 2), ("GET", "/a", 2), ("POST", "/a", 1), ("DELETE", "/z", 2)]
    calls = [
        Sent(str(ObjectId()), "spotify", "ingestion", m, e, 200, 10.0, None, "", user, now)
        for m, e, n in plan
        for _ in range(n)
    ]
    await stub.RecordApiCalls(pb.RecordApiCallsRequest(calls=[call.to_pb() for call in calls]))
    stats = await stub.GetApiCallStats(pb.GetApiCallStatsRequest(user_id=user))
    assert [(top.endpoint, top.count) for top in stats.top_endpoints] == [
        ("DELETE /z", 2),
        ("GET /a", 2),
        ("GET /b", 2),
        ("POST /a", 1),
    ]
    assert (stats.success_rate, stats.avg_latency_ms) == (100.0, 10.0)


async def test_endpoints_with_dots_dollars_and_percents_are_counted_as_sent(
    observability: Any,
) -> None:
    # Stats keep endpoints as field names, where "." and "$" mean something.
    stub = observability.stub
    user = str(ObjectId())
    now = datetime.now(UTC)
    plan = [("/v1/a.b", 3), ("/v1/$where", 2), ("/v1/100%25.x", 1)]
    calls = [
        Sent(str(ObjectId()), "spotify", "ingestion", "GET", e, 200, 1.0, None, "", user, now)
        for e, n in plan
        for _ in range(n)
    ]
    await stub.RecordApiCalls(pb.RecordApiCallsRequest(calls=[call.to_pb() for call in calls]))
    stats = await stub.GetApiCallStats(pb.GetApiCallStatsRequest(user_id=user))
    assert [(top.endpoint, top.count) for top in stats.top_endpoints] == [
        ("GET /v1/a.b", 3),
        ("GET /v1/$where", 2),
        ("GET /v1/100%25.x", 1),
    ]
    assert stats.total_calls == 6


async def test_records_stored_before_the_day_stats_are_counted_once(
    observability: Any, database: Any, obs_settings: Any
) -> None:
    # Records as an earlier version stored them: no `counted` flag, in no day stats.
    user = str(ObjectId())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=45)
    calls = make_calls(random.Random(7), user, 30, start)
    docs = []
    for call in calls:
        doc = api_call_to_doc(ApiCall(**dataclasses.asdict(call)))
        del doc["counted"]
        docs.append(doc)
    await database["api_calls"].insert_many(docs)
    before = await observability.stub.GetApiCallStats(pb.GetApiCallStatsRequest(user_id=user))
    assert before.total_calls == 0

    # Two replicas starting at once, each with its own lease owner.
    redis = create_redis(obs_settings)
    key = f"test:count-lease:{user}"

    async def replica_start() -> int:
        log = ApiCallLog(calls=ApiCallRepository(database), retention_days=30)
        return await log.count_records_from_before_the_stats(
            Lease(redis, key, owner=uuid.uuid4().hex, ttl_ms=60_000)
        )

    try:
        counted = await asyncio.gather(replica_start(), replica_start())
        again = await replica_start()
    finally:
        await redis.aclose()

    assert sum(counted) == len(calls)
    stats = await observability.stub.GetApiCallStats(pb.GetApiCallStatsRequest(user_id=user))
    assert stats.total_calls == len(calls)
    assert dict(stats.status_distribution) == expected_stats(calls)["status_distribution"]
    listed = await observability.stub.ListApiCalls(
        pb.ListApiCallsRequest(user_id=user, page_size=100)
    )
    assert listed.total == len(calls)
    assert [as_tuple(c) for c in listed.calls] == [sent_tuple(c) for c in newest_first(calls)]
    assert again == 0


async def test_a_busy_slot_is_indexed_in_parts_and_listed_in_order(
    observability: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parts of 100 entries here (1,000 in the service): 450 calls of one 10-minute slot,
    # sent in batches of 60, land in several parts and still page out newest first.
    monkeypatch.setattr(repository, "_SLOT_PART", 100)
    rng = random.Random(11)
    user = str(ObjectId())
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    slot_start = hour_ago.replace(minute=hour_ago.minute // 10 * 10, second=0, microsecond=0)
    calls = [
        dataclasses.replace(
            call, timestamp=slot_start + timedelta(milliseconds=rng.randrange(600_000))
        )
        for call in make_calls(rng, user, 450, slot_start)
    ]
    for batch in batches(calls, 60):
        await observability.stub.RecordApiCalls(
            pb.RecordApiCallsRequest(calls=[call.to_pb() for call in batch])
        )

    seen = []
    for page in (1, 2, 3, 4, 5):
        listed = await observability.stub.ListApiCalls(
            pb.ListApiCallsRequest(user_id=user, page=page, page_size=100)
        )
        assert listed.total == len(calls)
        seen.extend(as_tuple(call) for call in listed.calls)
    assert seen == [sent_tuple(call) for call in newest_first(calls)]
