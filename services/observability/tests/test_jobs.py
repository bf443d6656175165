"""The job ledger over gRPC on real FerretDB: atomic starts, lifecycle, locks, listing, stats.

Every test works on fresh user ids, so they share the module's server and database. The
server is the real one (`open_server`), called over a grpc.aio channel; the database is
read directly only to look at what the RPCs cannot show (the lock documents) or to
recreate a crash that left a lock behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from bson import ObjectId

from echostats.observability.v1 import observability_service_pb2 as pb
from echostats_grpc.client import error_reason

SYNC_TYPES = (pb.JOB_TYPE_INITIAL, pb.JOB_TYPE_PERIODIC, pb.JOB_TYPE_MANUAL)


def new_user() -> str:
    """A fresh user id (the gateway passes ObjectId hex strings)."""
    return str(ObjectId())


async def start(stub: Any, user_id: str, job_type: int, items_total: int = 0) -> Any:
    """StartJob."""
    return await stub.StartJob(
        pb.StartJobRequest(user_id=user_id, job_type=job_type, items_total=items_total)
    )


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    """Await a call that must fail, and return its error."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def lock_id(user_id: str, group: str) -> str:
    """The `_id` of a user's lock document for a job group."""
    return f"{user_id}:{group}"


async def test_start_refuses_a_second_job_of_the_same_group(observability: Any) -> None:
    stub = observability.stub
    user = new_user()

    first = await start(stub, user, pb.JOB_TYPE_PERIODIC, items_total=7)
    assert first.started is True
    assert first.job.status == pb.JOB_STATUS_PENDING
    assert first.job.job_type == pb.JOB_TYPE_PERIODIC
    assert first.job.user_id == user
    assert first.job.items_total == 7
    assert ObjectId.is_valid(first.job.id) and len(first.job.id) == 24
    assert not first.job.HasField("started_at") and not first.job.HasField("completed_at")

    # Every sync type shares one group: initial, periodic and manual all meet the same job.
    for job_type in SYNC_TYPES:
        again = await start(stub, user, job_type)
        assert again.started is False
        assert again.job.id == first.job.id
        assert again.job.job_type == pb.JOB_TYPE_PERIODIC

    # Other groups are independent of the sync group and of each other.
    imported = await start(stub, user, pb.JOB_TYPE_IMPORT, items_total=1000)
    rollup = await start(stub, user, pb.JOB_TYPE_ROLLUP_BUILD)
    assert imported.started and rollup.started
    assert len({first.job.id, imported.job.id, rollup.job.id}) == 3
    assert (await start(stub, user, pb.JOB_TYPE_IMPORT)).job.id == imported.job.id
    assert (await start(stub, user, pb.JOB_TYPE_ROLLUP_BUILD)).started is False

    # Another user's sync is not in the way.
    other = await start(stub, new_user(), pb.JOB_TYPE_MANUAL)
    assert other.started is True


async def test_twenty_concurrent_starts_start_exactly_one_job(
    observability: Any, database: Any
) -> None:
    stub = observability.stub
    user = new_user()

    results = await asyncio.gather(*(start(stub, user, SYNC_TYPES[i % 3]) for i in range(20)))

    started = [result for result in results if result.started]
    assert len(started) == 1
    winner = started[0].job
    assert {result.job.id for result in results} == {winner.id}
    assert await database["jobs"].count_documents({"user_id": user}) == 1
    lock = await database["job_locks"].find_one({"_id": lock_id(user, "sync")})
    assert lock is not None and lock["job_id"] == winner.id


async def test_concurrent_starts_on_two_replicas_start_exactly_one_job(
    observability: Any, obs_settings: Any, serve_observability: Any, database: Any
) -> None:
    user = new_user()
    async with serve_observability(obs_settings) as second:
        stubs = (observability.stub, second.stub)
        results = await asyncio.gather(
            *(start(stubs[i % 2], user, pb.JOB_TYPE_IMPORT) for i in range(20))
        )
    assert sum(result.started for result in results) == 1
    assert len({result.job.id for result in results}) == 1
    assert await database["jobs"].count_documents({"user_id": user}) == 1


async def test_job_lifecycle_with_progress_steps_counters_and_finish(
    observability: Any, database: Any
) -> None:
    stub = observability.stub
    user = new_user()
    job = (await start(stub, user, pb.JOB_TYPE_IMPORT, items_total=100)).job

    running = await stub.MarkJobRunning(pb.MarkJobRunningRequest(job_id=job.id))
    assert running.status == pb.JOB_STATUS_RUNNING
    assert running.HasField("started_at")
    started_at = running.started_at.ToDatetime(tzinfo=UTC)
    assert abs(started_at - datetime.now(UTC)) < timedelta(seconds=30)
    await asyncio.sleep(0.01)
    # A restarted worker marks it again: nothing changes, started_at stays the first one.
    again = await stub.MarkJobRunning(pb.MarkJobRunningRequest(job_id=job.id))
    assert again.status == pb.JOB_STATUS_RUNNING
    assert again.started_at == running.started_at

    progress = await stub.UpdateJobProgress(
        pb.UpdateJobProgressRequest(
            job_id=job.id,
            items_processed=10,
            items_total=0,
            counters={"imported": 8, "skipped_podcast": 2},
        )
    )
    assert progress.items_processed == 10
    assert progress.items_total == 100  # 0 leaves it unchanged
    assert dict(progress.counters) == {"imported": 8, "skipped_podcast": 2}
    progress = await stub.UpdateJobProgress(
        pb.UpdateJobProgressRequest(
            job_id=job.id, items_processed=50, items_total=120, counters={"imported": 45}
        )
    )
    assert progress.items_processed == 50
    assert progress.items_total == 120
    # Merged: a counter not mentioned keeps its value, a mentioned one is replaced.
    assert dict(progress.counters) == {"imported": 45, "skipped_podcast": 2}

    async def step(action: str, status: int, detail: str, items: int = 0, **extra: Any) -> Any:
        return await stub.RecordJobStep(
            pb.RecordJobStepRequest(
                job_id=job.id,
                step=pb.JobStep(action=action, status=status, detail=detail, items=items, **extra),
            )
        )

    await step("parse", pb.STEP_STATUS_RUNNING, "Reading file")
    await step("store", pb.STEP_STATUS_RUNNING, "Storing plays")
    await step("parse", pb.STEP_STATUS_COMPLETED, "Parsed 120 records", 120)
    await step("enrich", pb.STEP_STATUS_SKIPPED, "Deferred to background")
    recorded = await step("store", pb.STEP_STATUS_FAILED, "Stored 50 plays", 50, error="disk full")
    # Replaced by action, in the order of first appearance.
    assert [(s.action, s.status, s.detail, s.items) for s in recorded.steps] == [
        ("parse", pb.STEP_STATUS_COMPLETED, "Parsed 120 records", 120),
        ("store", pb.STEP_STATUS_FAILED, "Stored 50 plays", 50),
        ("enrich", pb.STEP_STATUS_SKIPPED, "Deferred to background", 0),
    ]
    assert recorded.steps[1].error == "disk full"
    assert not recorded.steps[0].HasField("error")

    finished = await stub.FinishJob(
        pb.FinishJobRequest(
            job_id=job.id,
            status=pb.JOB_STATUS_COMPLETED,
            items_processed=120,
            counters={"already_present": 3},
        )
    )
    assert finished.status == pb.JOB_STATUS_COMPLETED
    assert finished.items_processed == 120
    assert finished.HasField("completed_at")
    assert finished.completed_at.ToDatetime(tzinfo=UTC) >= started_at
    assert not finished.HasField("error_message")
    assert dict(finished.counters) == {"imported": 45, "skipped_podcast": 2, "already_present": 3}
    assert len(finished.steps) == 3

    # The lock is gone, so the group is free again.
    assert await database["job_locks"].find_one({"_id": lock_id(user, "import")}) is None
    fetched = await stub.GetJob(pb.GetJobRequest(job_id=job.id, user_id=user))
    assert fetched == finished
    follow_up = await start(stub, user, pb.JOB_TYPE_IMPORT)
    assert follow_up.started is True and follow_up.job.id != job.id

    # Finishing again the same way is a no-op; anything else on an ended job is refused.
    assert (
        await stub.FinishJob(pb.FinishJobRequest(job_id=job.id, status=pb.JOB_STATUS_COMPLETED))
    ) == finished
    refused = [
        stub.FinishJob(pb.FinishJobRequest(job_id=job.id, status=pb.JOB_STATUS_FAILED)),
        stub.MarkJobRunning(pb.MarkJobRunningRequest(job_id=job.id)),
        stub.UpdateJobProgress(pb.UpdateJobProgressRequest(job_id=job.id, items_processed=1)),
        stub.RecordJobStep(
            pb.RecordJobStepRequest(
                job_id=job.id, step=pb.JobStep(action="late", status=pb.STEP_STATUS_COMPLETED)
            )
        ),
    ]
    for call in refused:
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(error) == "JOB_ALREADY_ENDED"
    # ... and none of them touched the new job holding the lock.
    lock = await database["job_locks"].find_one({"_id": lock_id(user, "import")})
    assert lock is not None and lock["job_id"] == follow_up.job.id


async def test_failed_job_keeps_its_error_and_frees_the_group(observability: Any) -> None:
    stub = observability.stub
    user = new_user()
    job = (await start(stub, user, pb.JOB_TYPE_MANUAL)).job

    # A pending job may fail directly (e.g. the worker could not get a token).
    failed = await stub.FinishJob(
        pb.FinishJobRequest(
            job_id=job.id, status=pb.JOB_STATUS_FAILED, error_message="Spotify token revoked"
        )
    )
    assert failed.status == pb.JOB_STATUS_FAILED
    assert failed.error_message == "Spotify token revoked"
    assert not failed.HasField("started_at")
    assert failed.items_processed == 0
    repeated = await stub.FinishJob(
        pb.FinishJobRequest(job_id=job.id, status=pb.JOB_STATUS_FAILED, error_message="again")
    )
    assert repeated.error_message == "Spotify token revoked"
    assert (await start(stub, user, pb.JOB_TYPE_INITIAL)).started is True


async def test_stale_lock_of_an_ended_job_is_replaced(observability: Any, database: Any) -> None:
    stub = observability.stub
    user = new_user()
    job = (await start(stub, user, pb.JOB_TYPE_PERIODIC)).job
    await stub.FinishJob(pb.FinishJobRequest(job_id=job.id, status=pb.JOB_STATUS_COMPLETED))
    # A crash between ending the job and deleting its lock leaves this behind.
    await database["job_locks"].insert_one(
        {
            "_id": lock_id(user, "sync"),
            "job_id": job.id,
            "user_id": user,
            "job_type": "periodic",
            "items_total": 0,
            "created_at": datetime.now(UTC) - timedelta(minutes=5),
        }
    )

    replaced = await start(stub, user, pb.JOB_TYPE_MANUAL)

    assert replaced.started is True
    assert replaced.job.id != job.id
    lock = await database["job_locks"].find_one({"_id": lock_id(user, "sync")})
    assert lock["job_id"] == replaced.job.id
    assert (await start(stub, user, pb.JOB_TYPE_PERIODIC)).job.id == replaced.job.id


async def test_lock_without_its_job_is_respected_briefly_then_replaced(
    observability: Any, database: Any
) -> None:
    stub = observability.stub
    user = new_user()
    ghost_id = str(ObjectId())
    created = datetime.now(UTC).replace(microsecond=0)
    locks = database["job_locks"]
    # A start between inserting its lock and inserting its job looks like this.
    await locks.insert_one(
        {
            "_id": lock_id(user, "import"),
            "job_id": ghost_id,
            "user_id": user,
            "job_type": "import",
            "items_total": 42,
            "created_at": created,
        }
    )

    blocked = await start(stub, user, pb.JOB_TYPE_IMPORT)
    assert blocked.started is False
    assert blocked.job.id == ghost_id
    assert blocked.job.status == pb.JOB_STATUS_PENDING
    assert blocked.job.items_total == 42
    assert blocked.job.created_at.ToDatetime(tzinfo=UTC) == created

    # The same lock a few minutes on: that start died; the lock is taken over.
    await locks.update_one(
        {"_id": lock_id(user, "import")},
        {"$set": {"created_at": created - timedelta(minutes=5)}},
    )
    taken = await start(stub, user, pb.JOB_TYPE_IMPORT)
    assert taken.started is True
    assert (await locks.find_one({"_id": lock_id(user, "import")}))["job_id"] == taken.job.id


async def test_get_job_is_scoped_to_its_user(observability: Any) -> None:
    stub = observability.stub
    owner, stranger = new_user(), new_user()
    job = (await start(stub, owner, pb.JOB_TYPE_ROLLUP_BUILD)).job

    assert (await stub.GetJob(pb.GetJobRequest(job_id=job.id, user_id=owner))).id == job.id
    for job_id, user_id in (
        (job.id, stranger),
        (str(ObjectId()), owner),
        ("not-an-object-id", owner),
    ):
        error = await rpc_error(stub.GetJob(pb.GetJobRequest(job_id=job_id, user_id=user_id)))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error_reason(error) == "JOB_NOT_FOUND"
    for call in (
        stub.GetJob(pb.GetJobRequest(job_id=job.id)),
        stub.MarkJobRunning(pb.MarkJobRunningRequest(job_id="")),
    ):
        assert (await rpc_error(call)).code() == grpc.StatusCode.INVALID_ARGUMENT
    for call in (
        stub.MarkJobRunning(pb.MarkJobRunningRequest(job_id=str(ObjectId()))),
        stub.FinishJob(pb.FinishJobRequest(job_id=str(ObjectId()), status=pb.JOB_STATUS_COMPLETED)),
        stub.UpdateJobProgress(pb.UpdateJobProgressRequest(job_id="zz", items_processed=1)),
    ):
        assert (await rpc_error(call)).code() == grpc.StatusCode.NOT_FOUND


async def test_invalid_requests_are_refused(observability: Any) -> None:
    stub = observability.stub
    user = new_user()
    job = (await start(stub, user, pb.JOB_TYPE_IMPORT)).job
    invalid = [
        start(stub, user, pb.JOB_TYPE_UNSPECIFIED),
        start(stub, user, 99),
        start(stub, "", pb.JOB_TYPE_IMPORT),
        start(stub, user, pb.JOB_TYPE_PERIODIC, items_total=-1),
        stub.FinishJob(pb.FinishJobRequest(job_id=job.id, status=pb.JOB_STATUS_RUNNING)),
        stub.FinishJob(pb.FinishJobRequest(job_id=job.id)),
        stub.UpdateJobProgress(pb.UpdateJobProgressRequest(job_id=job.id, items_processed=-5)),
        stub.UpdateJobProgress(
            pb.UpdateJobProgressRequest(job_id=job.id, counters={"bad.name": 1})
        ),
        stub.UpdateJobProgress(pb.UpdateJobProgressRequest(job_id=job.id, counters={"$x": 1})),
        stub.RecordJobStep(pb.RecordJobStepRequest(job_id=job.id, step=pb.JobStep(action="parse"))),
        stub.RecordJobStep(
            pb.RecordJobStepRequest(
                job_id=job.id, step=pb.JobStep(action="", status=pb.STEP_STATUS_RUNNING)
            )
        ),
        stub.ListJobs(pb.ListJobsRequest(user_id=user, page_size=101)),
        stub.ListJobs(pb.ListJobsRequest(user_id=user, page=-1)),
        stub.ListJobs(pb.ListJobsRequest(user_id=user, status=42)),
        stub.ListJobs(pb.ListJobsRequest(user_id=user, job_type=42)),
        stub.ListJobs(pb.ListJobsRequest()),
        stub.GetJobStats(pb.GetJobStatsRequest()),
    ]
    for call in invalid:
        assert (await rpc_error(call)).code() == grpc.StatusCode.INVALID_ARGUMENT
    # None of that changed the job.
    unchanged = await stub.GetJob(pb.GetJobRequest(job_id=job.id, user_id=user))
    assert unchanged.status == pb.JOB_STATUS_PENDING
    assert unchanged.items_processed == 0 and not unchanged.steps and not unchanged.counters


# -- listing and stats over a seeded history ------------------------------------------------


@dataclass
class SeededJob:
    """A job the fixture made through the RPCs, as the last RPC returned it."""

    job: Any
    group: str


# (job type, final status or None to leave it as is, mark running first?, items)
_PLAN: list[tuple[int, int | None, bool, int]] = [
    (pb.JOB_TYPE_INITIAL, pb.JOB_STATUS_COMPLETED, True, 500),
    (pb.JOB_TYPE_ROLLUP_BUILD, pb.JOB_STATUS_COMPLETED, True, 30),
    (pb.JOB_TYPE_IMPORT, pb.JOB_STATUS_FAILED, True, 12),
    (pb.JOB_TYPE_PERIODIC, pb.JOB_STATUS_COMPLETED, True, 50),
    (pb.JOB_TYPE_PERIODIC, pb.JOB_STATUS_FAILED, False, 0),
    (pb.JOB_TYPE_MANUAL, pb.JOB_STATUS_COMPLETED, True, 17),
    (pb.JOB_TYPE_IMPORT, pb.JOB_STATUS_COMPLETED, True, 2500),
    (pb.JOB_TYPE_PERIODIC, pb.JOB_STATUS_COMPLETED, True, 3),
    (pb.JOB_TYPE_ROLLUP_BUILD, pb.JOB_STATUS_FAILED, True, 0),
    (pb.JOB_TYPE_PERIODIC, pb.JOB_STATUS_COMPLETED, True, 44),
    (pb.JOB_TYPE_MANUAL, pb.JOB_STATUS_FAILED, True, 9),
    (pb.JOB_TYPE_PERIODIC, pb.JOB_STATUS_COMPLETED, True, 21),
    (pb.JOB_TYPE_ROLLUP_BUILD, pb.JOB_STATUS_COMPLETED, False, 365),
    (pb.JOB_TYPE_IMPORT, pb.JOB_STATUS_COMPLETED, True, 800),
    (pb.JOB_TYPE_PERIODIC, pb.JOB_STATUS_COMPLETED, True, 6),
    (pb.JOB_TYPE_INITIAL, pb.JOB_STATUS_FAILED, True, 1),
    (pb.JOB_TYPE_PERIODIC, pb.JOB_STATUS_COMPLETED, True, 50),
    (pb.JOB_TYPE_PERIODIC, pb.JOB_STATUS_COMPLETED, True, 2),
    (pb.JOB_TYPE_MANUAL, pb.JOB_STATUS_COMPLETED, True, 13),
    (pb.JOB_TYPE_ROLLUP_BUILD, pb.JOB_STATUS_COMPLETED, True, 7),
    # Left active: one running sync, one pending import, one running rollup build.
    (pb.JOB_TYPE_PERIODIC, None, True, 25),
    (pb.JOB_TYPE_IMPORT, None, False, 0),
    (pb.JOB_TYPE_ROLLUP_BUILD, None, True, 4),
]
_GROUPS = {
    pb.JOB_TYPE_INITIAL: "sync",
    pb.JOB_TYPE_PERIODIC: "sync",
    pb.JOB_TYPE_MANUAL: "sync",
    pb.JOB_TYPE_IMPORT: "import",
    pb.JOB_TYPE_ROLLUP_BUILD: "rollup_build",
}


@pytest.fixture(scope="module")
async def seeded(observability: Any) -> AsyncIterator[tuple[str, list[SeededJob]]]:
    """A user with 23 jobs of every type and status, made through the RPCs, oldest first."""
    stub = observability.stub
    user = new_user()
    jobs: list[SeededJob] = []
    for job_type, final, mark_running, items in _PLAN:
        result = await start(stub, user, job_type)
        assert result.started, "the plan never starts two jobs of one group at once"
        job = result.job
        if mark_running:
            job = await stub.MarkJobRunning(pb.MarkJobRunningRequest(job_id=job.id))
        if items:
            job = await stub.UpdateJobProgress(
                pb.UpdateJobProgressRequest(job_id=job.id, items_processed=items)
            )
        if final is not None:
            request = pb.FinishJobRequest(job_id=job.id, status=final)
            if final == pb.JOB_STATUS_FAILED:
                request.error_message = "boom"
            job = await stub.FinishJob(request)
        jobs.append(SeededJob(job=job, group=_GROUPS[job_type]))
    yield user, jobs


async def list_all(stub: Any, user: str, page_size: int, **filters: Any) -> tuple[list[Any], int]:
    """Walk every page of ListJobs; returns the jobs and the total each page reported."""
    jobs: list[Any] = []
    totals: set[int] = set()
    page = 1
    while True:
        response = await stub.ListJobs(
            pb.ListJobsRequest(user_id=user, page=page, page_size=page_size, **filters)
        )
        totals.add(response.total)
        if not response.jobs:
            break
        assert len(response.jobs) <= page_size
        jobs.extend(response.jobs)
        page += 1
    assert len(totals) == 1
    return jobs, totals.pop()


async def test_list_jobs_newest_first_with_paging_and_filters(
    observability: Any, seeded: tuple[str, list[SeededJob]]
) -> None:
    stub = observability.stub
    user, jobs = seeded
    newest_first = [seed.job for seed in reversed(jobs)]

    first = await stub.ListJobs(pb.ListJobsRequest(user_id=user))
    assert first.total == len(jobs)
    assert [job.id for job in first.jobs] == [job.id for job in newest_first[:20]]  # default 20
    assert list(first.jobs) == newest_first[:20]  # the full records, steps and all

    for page_size in (1, 5, 7, 100):
        listed, total = await list_all(stub, user, page_size)
        assert total == len(jobs)
        assert [job.id for job in listed] == [job.id for job in newest_first]
    beyond = await stub.ListJobs(pb.ListJobsRequest(user_id=user, page=99, page_size=10))
    assert beyond.total == len(jobs) and not beyond.jobs

    statuses = [0, pb.JOB_STATUS_PENDING, pb.JOB_STATUS_RUNNING]
    statuses += [pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED]
    for status in statuses:
        for job_type in [0, *_GROUPS]:
            expected = [
                job.id
                for job in newest_first
                if status in (0, job.status) and job_type in (0, job.job_type)
            ]
            listed, total = await list_all(stub, user, 4, status=status, job_type=job_type)
            assert total == len(expected), (status, job_type)
            assert [job.id for job in listed] == expected, (status, job_type)

    # Nobody else sees any of them.
    stranger = await stub.ListJobs(pb.ListJobsRequest(user_id=new_user()))
    assert stranger.total == 0 and not stranger.jobs


async def test_job_stats_add_up(observability: Any, seeded: tuple[str, list[SeededJob]]) -> None:
    stub = observability.stub
    user, jobs = seeded
    final = [seed.job for seed in jobs]
    completed = [job for job in final if job.status == pb.JOB_STATUS_COMPLETED]
    completed_syncs = [
        seed.job
        for seed in jobs
        if seed.group == "sync" and seed.job.status == pb.JOB_STATUS_COMPLETED
    ]

    stats = await stub.GetJobStats(pb.GetJobStatsRequest(user_id=user))

    assert stats.total_jobs == len(final) == 23
    assert stats.completed == len(completed) == 15
    assert stats.failed == sum(job.status == pb.JOB_STATUS_FAILED for job in final) == 5
    # RUNNING only: the pending import is in total_jobs but not in running.
    assert stats.running == sum(job.status == pb.JOB_STATUS_RUNNING for job in final) == 2
    assert stats.total_items_synced == sum(job.items_processed for job in completed) == 4408
    assert stats.last_sync_at == max(
        (job.completed_at for job in completed_syncs), key=lambda ts: ts.ToDatetime()
    )
    # The last job of the plan that completed was a rollup build, not a sync.
    last_completed = max(completed, key=lambda job: job.completed_at.ToDatetime())
    assert last_completed.job_type == pb.JOB_TYPE_ROLLUP_BUILD
    assert stats.last_sync_at != last_completed.completed_at

    empty = await stub.GetJobStats(pb.GetJobStatsRequest(user_id=new_user()))
    assert (empty.total_jobs, empty.completed, empty.failed, empty.running) == (0, 0, 0, 0)
    assert empty.total_items_synced == 0
    assert not empty.HasField("last_sync_at")
