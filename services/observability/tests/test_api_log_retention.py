"""API-log retention and the indexes the real server creates in the background.

The server here sweeps every 0.2 s with the default 30-day retention, on a database of
its own, so old records seeded by this module disappear while the test watches.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from google.protobuf.timestamp_pb2 import Timestamp

from echostats.observability.v1 import observability_service_pb2 as pb
from echostats_platform.mongo import is_ferretdb

RETENTION_DAYS = 30
WAIT_SECONDS = 15.0


@pytest.fixture(scope="module")
def obs_settings(settings_factory: Any) -> Any:
    """This module's settings: 30 days of API log, swept every 0.2 s."""
    return settings_factory(
        api_log_retention_days=RETENTION_DAYS, api_log_retention_interval_seconds=0.2
    )


def call_at(when: datetime, user_id: str) -> pb.ApiCall:
    """A call record made at `when`."""
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return pb.ApiCall(
        id=str(ObjectId()),
        service="spotify",
        method="GET",
        endpoint="/v1/me/player/recently-played",
        status_code=200,
        latency_ms=12.5,
        user_id=user_id,
        timestamp=stamp,
    )


async def wait_for(condition: Any) -> None:
    """Poll an async condition until it holds."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_records_older_than_the_retention_are_deleted(
    observability: Any, database: Any
) -> None:
    stub = observability.stub
    user = str(ObjectId())
    now = datetime.now(UTC)
    ages = [40] * 5 + [31] * 5 + [29] * 5 + [0] * 5
    old_anonymous = [call_at(now - timedelta(days=60), "") for _ in range(5)]
    calls = [call_at(now - timedelta(days=age), user) for age in ages]
    stored = await stub.RecordApiCalls(pb.RecordApiCallsRequest(calls=calls + old_anonymous))
    assert stored.stored == 25
    kept = {call.id for call, age in zip(calls, ages, strict=True) if age < RETENTION_DAYS}

    async def only_recent_left() -> bool:
        return await database["api_calls"].count_documents({}) == len(kept)

    await wait_for(only_recent_left)
    listed = await stub.ListApiCalls(pb.ListApiCallsRequest(user_id=user, page_size=100))
    assert listed.total == len(kept) == 10
    assert {call.id for call in listed.calls} == kept
    stats = await stub.GetApiCallStats(pb.GetApiCallStatsRequest(user_id=user))
    assert stats.total_calls == 10


async def test_indexes_are_created_and_ttl_only_where_supported(
    observability: Any, database: Any
) -> None:
    async def indexes_made() -> bool:
        calls = await database["api_calls"].index_information()
        jobs = await database["jobs"].index_information()
        return "user_timestamp" in calls and {"user_created", "status_updated"} <= set(jobs)

    await wait_for(indexes_made)
    calls = await database["api_calls"].index_information()
    ttl = {
        name: spec["expireAfterSeconds"]
        for name, spec in calls.items()
        if "expireAfterSeconds" in spec
    }
    if await is_ferretdb(database):
        # FerretDB refuses TTL indexes; the periodic sweep above does the work.
        assert ttl == {}
    else:
        assert ttl == {"timestamp_ttl": (RETENTION_DAYS + 1) * 86400}
