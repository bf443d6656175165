"""The real server's stale-job reaper: a job whose worker went silent fails, freeing its group.

This module runs its servers with a 1-second staleness limit and a reaper round every
0.2 s, on a database of its own, so the short limits never touch other modules' jobs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from bson import ObjectId

from echostats.observability.v1 import observability_service_pb2 as pb
from echostats_grpc.client import error_reason

STALE_AFTER_SECONDS = 1
REAPER_INTERVAL_SECONDS = 0.2
TIMED_OUT = "Job timed out: no progress for 1 s (worker lost?)"
# How long a test waits for the reaper before calling it broken.
WAIT_SECONDS = 15.0


@pytest.fixture(scope="module")
def obs_settings(settings_factory: Any) -> Any:
    """This module's settings: jobs go stale after 1 s, the reaper looks every 0.2 s."""
    return settings_factory(
        job_stale_after_seconds=STALE_AFTER_SECONDS,
        job_reaper_interval_seconds=REAPER_INTERVAL_SECONDS,
    )


async def start(stub: Any, user_id: str, job_type: int) -> Any:
    """StartJob, which must start a job."""
    result = await stub.StartJob(pb.StartJobRequest(user_id=user_id, job_type=job_type))
    assert result.started
    return result.job


async def wait_until_ended(stub: Any, job: Any) -> Any:
    """Poll GetJob until the job is no longer pending or running."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        current = await stub.GetJob(pb.GetJobRequest(job_id=job.id, user_id=job.user_id))
        if current.status not in (pb.JOB_STATUS_PENDING, pb.JOB_STATUS_RUNNING):
            return current
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job.id} was not reaped within {WAIT_SECONDS} s")


async def test_silent_running_job_is_failed_and_its_group_freed(
    observability: Any, database: Any
) -> None:
    stub = observability.stub
    user = str(ObjectId())
    job = await start(stub, user, pb.JOB_TYPE_PERIODIC)
    await stub.MarkJobRunning(pb.MarkJobRunningRequest(job_id=job.id))
    await stub.RecordJobStep(
        pb.RecordJobStepRequest(
            job_id=job.id,
            step=pb.JobStep(action="recently_played", status=pb.STEP_STATUS_RUNNING),
        )
    )
    last_sign_of_life = time.monotonic()

    reaped = await wait_until_ended(stub, job)

    assert time.monotonic() - last_sign_of_life >= STALE_AFTER_SECONDS
    assert reaped.status == pb.JOB_STATUS_FAILED
    assert reaped.error_message == TIMED_OUT
    assert reaped.HasField("completed_at") and reaped.HasField("started_at")
    assert [step.action for step in reaped.steps] == ["recently_played"]
    assert await database["job_locks"].find_one({"_id": f"{user}:sync"}) is None
    assert (
        await stub.StartJob(pb.StartJobRequest(user_id=user, job_type=pb.JOB_TYPE_MANUAL))
    ).started

    # The lost worker comes back: it learns that its job is gone and changes nothing.
    for call in (
        stub.UpdateJobProgress(pb.UpdateJobProgressRequest(job_id=job.id, items_processed=5)),
        stub.FinishJob(pb.FinishJobRequest(job_id=job.id, status=pb.JOB_STATUS_COMPLETED)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(caught.value) == "JOB_ALREADY_ENDED"
    # Later rounds (conditional updates) leave the failed job exactly as it was.
    await asyncio.sleep(STALE_AFTER_SECONDS + 3 * REAPER_INTERVAL_SECONDS)
    assert await stub.GetJob(pb.GetJobRequest(job_id=job.id, user_id=user)) == reaped


async def test_pending_job_never_picked_up_is_reaped(observability: Any) -> None:
    stub = observability.stub
    job = await start(stub, str(ObjectId()), pb.JOB_TYPE_ROLLUP_BUILD)

    reaped = await wait_until_ended(stub, job)

    assert reaped.status == pb.JOB_STATUS_FAILED
    assert reaped.error_message == TIMED_OUT
    assert not reaped.HasField("started_at")


async def test_job_reporting_progress_is_spared(observability: Any) -> None:
    stub = observability.stub
    job = await start(stub, str(ObjectId()), pb.JOB_TYPE_IMPORT)
    await stub.MarkJobRunning(pb.MarkJobRunningRequest(job_id=job.id))

    # Three staleness limits long, with a sign of life every quarter of one.
    until = time.monotonic() + 3 * STALE_AFTER_SECONDS
    processed = 0
    while time.monotonic() < until:
        processed += 10
        alive = await stub.UpdateJobProgress(
            pb.UpdateJobProgressRequest(job_id=job.id, items_processed=processed)
        )
        assert alive.status == pb.JOB_STATUS_RUNNING
        await asyncio.sleep(STALE_AFTER_SECONDS / 4)
    current = await stub.GetJob(pb.GetJobRequest(job_id=job.id, user_id=job.user_id))
    assert current.status == pb.JOB_STATUS_RUNNING
    assert current.items_processed == processed

    # Once the worker goes quiet, the job is reaped like any other.
    reaped = await wait_until_ended(stub, job)
    assert reaped.status == pb.JOB_STATUS_FAILED
    assert reaped.items_processed == processed


async def test_replicas_reaping_side_by_side_fail_a_job_once(
    observability: Any, obs_settings: Any, serve_observability: Any
) -> None:
    async with serve_observability(obs_settings) as second:
        jobs = [await start(observability.stub, str(ObjectId()), pb.JOB_TYPE_MANUAL)]
        jobs.append(await start(second.stub, str(ObjectId()), pb.JOB_TYPE_IMPORT))
        reaped = [await wait_until_ended(observability.stub, job) for job in jobs]
        await asyncio.sleep(STALE_AFTER_SECONDS + 3 * REAPER_INTERVAL_SECONDS)
        for job, first_answer in zip(jobs, reaped, strict=True):
            assert first_answer.error_message == TIMED_OUT
            for stub in (observability.stub, second.stub):
                again = await stub.GetJob(pb.GetJobRequest(job_id=job.id, user_id=job.user_id))
                assert again == first_answer
