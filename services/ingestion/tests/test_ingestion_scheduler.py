"""The periodic scheduler: one periodic sync per active user per interval, by one replica.

Two "replicas" are two runtimes (clients, job starter) with a scheduler and a lease each,
against the module's real auth (ListActiveUsers), ledger and Redis. No worker runs in this
module, so the jobs they start stay pending where the test can count them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from echostats.observability.v1 import observability_service_pb2 as obs_pb
from echostats_platform.lease import Lease, run_while_leader
from ingestion_service.queues import SYNC_STREAM
from ingestion_service.runtime import open_runtime
from ingestion_service.scheduler import LEASE_KEY, ROUND_KEY, PeriodicScheduler, RoundResult


@dataclass
class Replica:
    """One replica's scheduler and lease, with a record of its ticks."""

    name: str
    scheduler: PeriodicScheduler
    lease: Lease
    ticks: int = 0
    rounds: list[RoundResult] = field(default_factory=list)

    async def tick(self) -> None:
        """The work run under the lease: count it, keep the rounds that ran."""
        self.ticks += 1
        result = await self.scheduler.tick()
        if result is not None:
            self.rounds.append(result)


@contextlib.asynccontextmanager
async def replica(harness: Any, name: str, **overrides: Any) -> AsyncIterator[Replica]:
    """A replica's runtime and scheduler (as the worker builds them)."""
    settings = harness.settings.model_copy(update=overrides)
    async with open_runtime(settings) as runtime:
        yield Replica(
            name,
            PeriodicScheduler(
                redis=runtime.redis,
                auth=runtime.auth,
                starter=runtime.starter,
                interval_seconds=settings.sync_interval_seconds,
                page_size=2,  # several pages even with a handful of users
                owner=name,
            ),
            Lease(runtime.redis, LEASE_KEY, owner=name, ttl_ms=1000),
        )


async def periodic_jobs(harness: Any, user_id: str) -> list[obs_pb.Job]:
    """The user's periodic jobs in the ledger."""
    response = await harness.observability.ListJobs(
        obs_pb.ListJobsRequest(user_id=user_id, page_size=100, job_type=obs_pb.JOB_TYPE_PERIODIC)
    )
    return list(response.jobs)


@pytest.fixture(autouse=True)
async def fresh_round(harness: Any) -> None:
    """Every test starts with a round due and nobody holding the lease."""
    await harness.redis.delete(ROUND_KEY, LEASE_KEY)


async def test_only_the_lease_holder_schedules_one_sync_per_active_user(harness: Any) -> None:
    users = [(await harness.sign_in())[0] for _ in range(5)]
    stop = asyncio.Event()
    async with replica(harness, "replica-a") as a, replica(harness, "replica-b") as b:
        loops = [
            asyncio.create_task(run_while_leader(r.lease, r.tick, interval_seconds=0.1, stop=stop))
            for r in (a, b)
        ]
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*loops)

    leader, follower = (a, b) if a.ticks else (b, a)
    assert leader.ticks > 5 and follower.ticks == 0
    # Many ticks, one round: the next one is due only after the interval.
    assert len(leader.rounds) == 1 and not follower.rounds
    assert leader.rounds[0] == RoundResult(users=5, started=5, already_running=0, failed=0)
    for user_id in users:
        jobs = await periodic_jobs(harness, user_id)
        assert len(jobs) == 1 and jobs[0].status == obs_pb.JOB_STATUS_PENDING
    queued = [f for _, f in await harness.redis.xrange(SYNC_STREAM) if f["job_type"] == "periodic"]
    assert sorted(f["user_id"] for f in queued) == sorted(users)
    assert {f["job_id"] for f in queued} == {(await periodic_jobs(harness, u))[0].id for u in users}


async def test_a_new_leader_does_not_schedule_a_round_early(harness: Any) -> None:
    user_id, _ = await harness.sign_in()
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    async with replica(harness, "replica-a") as a, replica(harness, "replica-b") as b:
        loop_a = asyncio.create_task(
            run_while_leader(a.lease, a.tick, interval_seconds=0.1, stop=stop_a)
        )
        await asyncio.sleep(0.5)
        loop_b = asyncio.create_task(
            run_while_leader(b.lease, b.tick, interval_seconds=0.1, stop=stop_b)
        )
        await asyncio.sleep(0.3)
        # The leader stops (a deploy): it releases the lease and the other takes over.
        stop_a.set()
        await loop_a
        await asyncio.sleep(0.8)
        stop_b.set()
        await loop_b

    assert a.ticks and b.ticks
    assert len(a.rounds) == 1 and not b.rounds
    assert len(await periodic_jobs(harness, user_id)) == 1


async def test_a_round_leaves_users_with_a_sync_under_way_alone(harness: Any) -> None:
    busy, _ = await harness.sign_in()
    idle, _ = await harness.sign_in()
    # No worker runs here: the manual sync stays pending.
    manual = await harness.trigger(busy)

    async with replica(harness, "replica-a") as a:
        result = await a.scheduler.run_round()

    assert result.started >= 1 and result.already_running >= 1
    assert await periodic_jobs(harness, busy) == []
    assert len(await periodic_jobs(harness, idle)) == 1
    assert (await harness.job(manual, busy)).status == obs_pb.JOB_STATUS_PENDING


async def test_an_unreachable_auth_leaves_the_round_due(harness: Any) -> None:
    async with replica(harness, "replica-a", auth_addr="127.0.0.1:9") as a:
        assert await a.scheduler.tick() is None

    assert await harness.redis.exists(ROUND_KEY) == 0


async def test_the_worker_schedules_and_runs_periodic_syncs(harness: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 7)

    await harness.start_worker(sync_interval_seconds=1.0)
    try:
        async with asyncio.timeout(90):
            while True:
                done = [
                    job
                    for job in await periodic_jobs(harness, user_id)
                    if job.status == obs_pb.JOB_STATUS_COMPLETED
                ]
                if done:
                    break
                await asyncio.sleep(0.1)
    finally:
        await harness.stop_workers()

    assert done[0].items_processed == 7
    assert len(await harness.stored_plays(user_id)) == 7
