"""Worker lifecycle: killed mid-job, dead-lettered jobs, long rate limits, the real process.

Each test runs the workers it needs and stops them at the end, so a job is only ever
handled by the workers the test controls.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from echostats.observability.v1 import observability_service_pb2 as obs_pb
from echostats_devstack.ports import pick_free_port
from ingestion_service.identity import parse_spotify_time, play_id
from ingestion_service.queues import SYNC_GROUP, SYNC_STREAM
from ingestion_service.settings import IngestionSettings

RECENTLY_PLAYED = "/v1/me/player/recently-played"


@pytest.fixture(autouse=True)
async def stop_workers(harness: Any, clean_simulator: Any) -> AsyncIterator[None]:
    """Stop this test's workers afterwards (faults and latency are cleared too)."""
    try:
        yield
    finally:
        await harness.stop_workers()


async def served(sim: Any, sim_user: str) -> int:
    """How many recently-played requests the simulator has served for the user."""
    return len(await sim.requests(RECENTLY_PLAYED, user_id=sim_user))


async def wait_until_served(sim: Any, sim_user: str, count: int, timeout: float = 30) -> None:
    """Wait until the simulator has served `count` recently-played requests for the user."""
    async with asyncio.timeout(timeout):
        while True:
            if await served(sim, sim_user) >= count:
                return
            await asyncio.sleep(0.02)


async def assert_stored_exactly_the_feed(harness: Any, user_id: str, sim_user: str) -> None:
    """Every play of the simulator's feed is stored, once."""
    truth = await harness.sim.plays(sim_user)
    stored = await harness.stored_plays(user_id)
    expected = {play_id(user_id, p["track_id"], parse_spotify_time(p["played_at"])) for p in truth}
    assert len(stored) == len({doc["_id"] for doc in stored})
    assert {doc["_id"] for doc in stored} == expected


async def test_a_worker_killed_mid_sync_is_replaced_and_nothing_is_duplicated(
    harness: Any, clean_simulator: Any
) -> None:
    first = await harness.start_worker()
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 3)
    await harness.wait_for_job(await harness.trigger(user_id), user_id)
    await harness.sim.add_plays(sim_user, 130)
    await clean_simulator.latency(RECENTLY_PLAYED, 400)
    before = await served(harness.sim, sim_user)

    job_id = await harness.trigger(user_id)
    # Killed after its first page is stored and while the second one is in flight.
    await wait_until_served(harness.sim, sim_user, before + 1)
    await first.crash()
    running = await harness.job(job_id, user_id)
    await harness.start_worker()
    job = await harness.wait_for_job(job_id, user_id)

    assert running.status == obs_pb.JOB_STATUS_RUNNING
    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    # The replacement continued from the cursor the first worker left behind: at most the
    # page in flight when it died is fetched again (and found already stored).
    assert job.counters["already_present"] <= 50
    assert len(await harness.stored_plays(user_id)) == 133
    await assert_stored_exactly_the_feed(harness, user_id, sim_user)


async def delivery_of(harness: Any, job_id: str) -> tuple[str, int] | None:
    """(consumer, times delivered) of the job's pending sync message, or None."""
    messages = await harness.redis.xrange(SYNC_STREAM)
    ids = [mid for mid, fields in messages if fields.get("job_id") == job_id]
    if not ids:
        return None
    rows = await harness.redis.xpending_range(SYNC_STREAM, SYNC_GROUP, ids[0], ids[0], 1)
    return (rows[0]["consumer"], int(rows[0]["times_delivered"])) if rows else None


async def wait_until_delivered(harness: Any, job_id: str, consumer: str, times: int) -> None:
    """Wait until `consumer` holds the job's message, delivered `times` times."""
    async with asyncio.timeout(30):
        while True:
            if await delivery_of(harness, job_id) == (consumer, times):
                return
            await asyncio.sleep(0.02)


async def test_a_job_that_keeps_losing_its_worker_is_failed(
    harness: Any, clean_simulator: Any
) -> None:
    options = {"queue_max_deliveries": 2}
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 5)
    # Slow enough that every worker dies while the job is still on its first page.
    await clean_simulator.latency(RECENTLY_PLAYED, 5000)
    worker = await harness.start_worker(**options)
    job_id = await harness.trigger(user_id)

    for delivery in (1, 2):
        await wait_until_delivered(harness, job_id, worker.worker.consumer, delivery)
        await harness.wait_for_status(job_id, user_id, obs_pb.JOB_STATUS_RUNNING)
        await worker.crash()
        worker = await harness.start_worker(**options)

    # The third delivery is over the limit: dead-lettered and failed, not run again.
    job = await harness.wait_for_job(job_id, user_id)
    assert job.status == obs_pb.JOB_STATUS_FAILED
    assert job.error_message == "Worker lost the job 2 times"
    dead = await harness.redis.xrange(SYNC_STREAM + ":dead")
    assert any(fields["job_id"] == job_id for _, fields in dead)
    assert await delivery_of(harness, job_id) is None  # acknowledged


async def test_a_long_rate_limit_fails_the_step_clearly(harness: Any, clean_simulator: Any) -> None:
    await harness.start_worker()
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 4)
    await clean_simulator.fault(
        path_prefix=RECENTLY_PLAYED, status=429, count=1, retry_after=600, user_id=sim_user
    )

    job = await harness.wait_for_job(await harness.trigger(user_id), user_id)

    assert job.status == obs_pb.JOB_STATUS_FAILED
    assert job.error_message == "recently_played: Spotify rate limit; retry after 600 s"
    # The client did not sleep through it or retry it: one request, one 429.
    requests = await harness.sim.requests(RECENTLY_PLAYED, user_id=sim_user)
    assert [r["status"] for r in requests] == [429]


def _environment(settings: IngestionSettings, **overrides: Any) -> dict[str, str]:
    """The ECHOSTATS_* environment that reproduces `settings` in a child process."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ECHOSTATS_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None and not isinstance(value, list | dict):
            env[f"ECHOSTATS_{name.upper()}"] = str(value)
    for name, value in overrides.items():
        env[f"ECHOSTATS_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spawn(settings: IngestionSettings, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start `python -m ingestion_service.worker` with its output in `log_path`."""
    port = pick_free_port()
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "ingestion_service.worker"],
            env=_environment(settings, metrics_port=port, metrics_host="127.0.0.1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, port


def _read(path: Path) -> str:
    """A log file's text (sync on purpose: only read when a test is already failing)."""
    return path.read_bytes().decode(errors="replace")


async def _start_process(settings: IngestionSettings, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the worker process; return once its metrics port answers (its readiness)."""
    process, port = _spawn(settings, log_path)
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            assert process.poll() is None, _read(log_path)
            try:
                if (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)


async def test_the_worker_process_survives_sigkill_and_stops_on_sigterm(
    harness: Any, clean_simulator: Any, tmp_path: Path
) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 2)
    first = await _start_process(harness.settings, tmp_path / "worker-1.log")
    await harness.wait_for_job(await harness.trigger(user_id), user_id)
    await harness.sim.add_plays(sim_user, 120)
    await clean_simulator.latency(RECENTLY_PLAYED, 400)
    before = await served(harness.sim, sim_user)

    job_id = await harness.trigger(user_id)
    await wait_until_served(harness.sim, sim_user, before + 1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    second = await _start_process(harness.settings, tmp_path / "worker-2.log")
    try:
        job = await harness.wait_for_job(job_id, user_id)
    finally:
        second.send_signal(signal.SIGTERM)
        code = second.wait(timeout=15)

    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    await assert_stored_exactly_the_feed(harness, user_id, sim_user)
    assert code == 0
    log = _read(tmp_path / "worker-2.log")
    assert '"service": "ingestion-worker"' in log
    assert "ingestion worker stopping" in log
