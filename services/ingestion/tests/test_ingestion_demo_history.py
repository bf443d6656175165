"""The demo user's synthetic history: full size on FerretDB, idempotent, restart-safe."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from echostats.ingestion.v1 import ingestion_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from ingestion_service.queues import PLAYS_STORED_STREAM


async def seed(harness: Any, user_id: str) -> pb.SeedDemoHistoryResponse:
    """Call SeedDemoHistory."""
    return await harness.ingestion.SeedDemoHistory(pb.SeedDemoHistoryRequest(user_id=user_id))


async def test_the_full_demo_history_is_stored_once(harness: Any) -> None:
    await harness.start_worker()
    try:
        user_id, _ = await harness.sign_in()

        began = time.perf_counter()
        started = await seed(harness, user_id)
        again_while_running = await seed(harness, user_id)
        job = await harness.wait_for_job(started.job_id, user_id, timeout=240)
        elapsed = time.perf_counter() - began
        after = await seed(harness, user_id)
    finally:
        await harness.stop_workers()

    stored = await harness.stored_plays(user_id)
    span = stored[-1]["played_at"] - stored[0]["played_at"]
    artists = {artist for doc in stored for artist in doc["track"]["artist_ids"]}
    tracks = [doc["track"]["spotify_id"] for doc in stored]
    print(
        f"\ndemo history: {len(stored)} plays, {len(artists)} artists, "
        f"{span.days} days, stored in {elapsed:.1f}s"
    )
    assert started.started and started.job_id
    assert not again_while_running.started and again_while_running.job_id == started.job_id
    assert not after.started and after.job_id == started.job_id
    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    assert job.job_type == obs_pb.JOB_TYPE_IMPORT
    assert job.items_total == job.items_processed == len(stored)
    assert job.counters["imported"] == len(stored) and job.counters["already_present"] == 0
    assert job.steps[0].action == "demo_history"
    assert job.steps[0].status == obs_pb.STEP_STATUS_COMPLETED
    # At least 12 months, several hundred artists, repeat listening.
    assert span >= timedelta(days=365)
    assert len(stored) > 10_000
    assert len(artists) >= 300
    assert len(set(tracks)) < len(tracks) / 3
    assert {doc["source"] for doc in stored} == {"demo"}
    events = [
        f for _, f in await harness.redis.xrange(PLAYS_STORED_STREAM) if f["user_id"] == user_id
    ]
    assert len(events) == 1 and events[0]["count"] == str(len(stored))
    assert events[0]["source"] == "demo"


async def test_a_killed_worker_leaves_no_gap_and_no_duplicate(harness: Any) -> None:
    # Small batches, so the crash lands between two of them.
    options = {"demo_history_batch_size": 1000, "demo_history_months": 6}
    first = await harness.start_worker(**options)
    user_id, _ = await harness.sign_in()
    started = await seed(harness, user_id)

    async with asyncio.timeout(60):
        while True:
            job = await harness.job(started.job_id, user_id)
            if 0 < job.items_processed < job.items_total:
                break
            assert job.status != obs_pb.JOB_STATUS_COMPLETED, "finished before the crash"
            await asyncio.sleep(0.01)
    await first.crash()
    stored_at_crash = len(await harness.stored_plays(user_id))

    await harness.start_worker(**options)
    try:
        job = await harness.wait_for_job(started.job_id, user_id, timeout=120)
    finally:
        await harness.stop_workers()

    stored = await harness.stored_plays(user_id)
    assert 0 < stored_at_crash < len(stored)
    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    # The redelivery regenerated exactly the same plays: what the first worker stored is
    # "already present", the rest is new, and nothing is stored twice.
    assert job.counters["already_present"] >= stored_at_crash
    assert job.counters["imported"] + job.counters["already_present"] == len(stored)
    assert job.items_total == len(stored)
    assert len({doc["_id"] for doc in stored}) == len(stored)
    assert not (await seed(harness, user_id)).started
