"""The whole system under faults: outages mid-job, killed processes, a misbehaving Spotify.

Each test runs a real sync or import through the gateway, breaks something in the middle,
and checks the outcome against the truth: the simulator's play log (/_sim/plays) for syncs,
the export file for imports. Nothing may be lost or stored twice, every job must end
`completed` or `failed` with a reason, readiness must turn 503 and back, the gateway must
answer 503 with Retry-After meanwhile, and the stack must recover without a restart of
anything but the component the test broke.

Proven elsewhere and not repeated here: FerretDB, Redis and a service stopped while idle
(tests/integration/test_outages.py), the ingestion worker killed mid-import
(test_imports.py::test_worker_killed_mid_import_leaves_no_duplicates), a short 429 and an
expired access token mid-sync (test_sync_and_history.py).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta

import httpx
import pytest

from tests.integration.support import sign_in
from tests.integration.test_imports import (
    EPOCH,
    as_json,
    extended_row,
    history_total,
    import_and_wait,
    upload,
)
from tests.integration.test_outages import wait_for_status
from tests.integration.test_sync_and_history import (
    RECENTLY_PLAYED,
    all_history,
    bearer,
    ground_truth,
    play_keys,
    wait_for_idle,
)

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]

SYNC_PLAYS = 250  # five pages of recently-played
IMPORT_ROWS = 10_000  # two batches of the worker's 5,000
JOB_TIMEOUT = 240.0


async def new_user(client: httpx.AsyncClient, simulator: httpx.AsyncClient, simulator_url: str):
    """A fresh simulated user, signed in, idle after the initial sync: (spotify id, token)."""
    spotify_id = f"sim_fault_{uuid.uuid4().hex[:8]}"
    created = await simulator.post("/_sim/users", json={"id": spotify_id, "display_name": "F"})
    assert created.status_code == 201, created.text
    token = await sign_in(client, simulator_url, sim_user=spotify_id)
    await wait_for_idle(client, token)
    return spotify_id, token


async def jobs_of(client: httpx.AsyncClient, token: str) -> dict[str, dict]:
    """The user's jobs by id; waits out a 503 (an outage) or a 429 like a client would."""
    while True:
        response = await client.get(
            "/api/v1/sync-jobs", params={"limit": 100}, headers=bearer(token)
        )
        if response.status_code in (429, 503):
            await asyncio.sleep(min(5, int(response.headers.get("retry-after", "1"))))
            continue
        assert response.status_code == 200, response.text
        return {job["id"]: job for job in response.json()["items"]}


async def wait_until_running(client, token: str, job_id: str) -> None:
    """Until the job has started working (so the fault lands mid-job)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        job = (await jobs_of(client, token)).get(job_id)
        if job and (job["status"] == "running" or job["items_processed"] > 0):
            assert job["status"] not in ("completed", "failed"), job
            return
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.1)


async def wait_for_end(client, token: str, job_id: str) -> dict:
    """Until the job is completed or failed; a failed job must say why."""
    deadline = asyncio.get_running_loop().time() + JOB_TIMEOUT
    while True:
        job = (await jobs_of(client, token)).get(job_id)
        if job and job["status"] in ("completed", "failed"):
            if job["status"] == "failed":
                assert job["error_message"], job
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job never ended: {job}"
        await asyncio.sleep(0.5)


async def trigger(client, token: str) -> str:
    """Start a manual sync (after any running one); its job id."""
    for _ in range(5):
        response = await client.post("/api/v1/sync-jobs/trigger", headers=bearer(token))
        if response.status_code in (429, 503):
            await asyncio.sleep(int(response.headers.get("retry-after", "1")))
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] == "started":
            return body["job_id"]
        await wait_for_end(client, token, body["job_id"])
    raise AssertionError("no sync started")


async def sync_until_completed(client, token: str) -> dict:
    """Sync until one completes (after a fault the first may still fail).

    A step refused by a rate-limit pause that is still running says for how long
    ("retry after N s"): the next try waits that out, as a client would.
    """
    for _ in range(4):
        job = await wait_for_end(client, token, await trigger(client, token))
        if job["status"] == "completed":
            return job
        pause = re.search(r"retry after (\d+) s", job.get("error_message") or "")
        await asyncio.sleep(int(pause.group(1)) + 0.5 if pause else 0.5)
    raise AssertionError(f"no sync completed after the fault: {job}")


async def assert_history_matches_simulator(client, simulator, spotify_id: str, token: str):
    history = await all_history(client, token)
    keys = play_keys(history, track_key="history")
    assert len(keys) == len(set(keys)), "a play was stored twice"
    truth = play_keys(await ground_truth(simulator, spotify_id), track_key="sim")
    assert sorted(keys) == sorted(truth), (len(keys), len(truth))


async def assert_outage_is_visible(client, token: str, component: str) -> None:
    """Readiness says 503, and a user route answers 503 with Retry-After (not 500)."""
    ready = await wait_for_status(client, "/api/health/ready", 503)
    assert ready.status_code == 503, ready.text
    assert int(ready.headers["retry-after"]) >= 1
    # FerretDB down: sessions cannot be checked; Redis down: login cannot make its state.
    path = "/api/v1/history" if component == "ferretdb" else "/api/v1/auth/login"
    answer = await client.get(path, headers=bearer(token))
    assert answer.status_code == 503, (path, answer.status_code, answer.text)
    assert answer.json() == {"detail": "Service temporarily unavailable"}
    assert int(answer.headers["retry-after"]) >= 1


async def recover(client, stack, component: str) -> None:
    stack.start_component(component)
    ready = await wait_for_status(client, "/api/health/ready", 200, timeout=60)
    assert ready.json() == {"status": "ready"}, ready.text
    assert stack.dead_components() == []


@pytest.mark.parametrize("component", ["ferretdb", "redis"])
async def test_outage_mid_sync_loses_and_duplicates_nothing(
    client, simulator, simulator_url, stack, component
):
    spotify_id, token = await new_user(client, simulator, simulator_url)
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": SYNC_PLAYS})
    # Slow pages keep the sync running while the component goes away.
    await simulator.put("/_sim/latency", json={"path_prefix": RECENTLY_PLAYED, "ms": 700})
    job_id = await trigger(client, token)
    await wait_until_running(client, token, job_id)
    stack.stop_component(component)
    try:
        await assert_outage_is_visible(client, token, component)
    finally:
        await recover(client, stack, component)
    await simulator.delete("/_sim/latency")
    await wait_for_end(client, token, job_id)
    await sync_until_completed(client, token)
    await assert_history_matches_simulator(client, simulator, spotify_id, token)


@pytest.mark.parametrize("component", ["ferretdb", "redis"])
async def test_outage_mid_import_loses_and_duplicates_nothing(
    client, simulator, simulator_url, stack, component
):
    _, token = await new_user(client, simulator, simulator_url)
    rows = [extended_row(i % 500, at=EPOCH + timedelta(minutes=i)) for i in range(IMPORT_ROWS)]
    content = as_json(rows)
    response = await upload(client, token, "Streaming_History_Audio_2023_0.json", content)
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    await wait_until_running(client, token, job_id)
    stack.stop_component(component)
    try:
        await assert_outage_is_visible(client, token, component)
    finally:
        await recover(client, stack, component)
    job = await wait_for_end(client, token, job_id)
    if job["status"] == "completed":
        assert job["items_processed"] == IMPORT_ROWS, job
    # Whatever the first run did, importing again converges on exactly the file's plays.
    again = await import_and_wait(client, token, "Streaming_History_Audio_2023_0.json", content)
    assert again["status"] == "completed"
    assert await history_total(client, token) == IMPORT_ROWS


async def test_worker_killed_mid_sync_loses_and_duplicates_nothing(
    client, simulator, simulator_url, stack
):
    spotify_id, token = await new_user(client, simulator, simulator_url)
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": SYNC_PLAYS})
    await simulator.put("/_sim/latency", json={"path_prefix": RECENTLY_PLAYED, "ms": 700})
    job_id = await trigger(client, token)
    await wait_until_running(client, token, job_id)
    stack.kill_component("ingestion-worker")
    stack.start_component("ingestion-worker")
    await simulator.delete("/_sim/latency")
    # Another worker (the restarted one) reclaims the job after the claim idle time.
    await wait_for_end(client, token, job_id)
    await sync_until_completed(client, token)
    await assert_history_matches_simulator(client, simulator, spotify_id, token)


async def test_service_killed_mid_sync_recovers(client, simulator, simulator_url, stack):
    spotify_id, token = await new_user(client, simulator, simulator_url)
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": SYNC_PLAYS})
    await simulator.put("/_sim/latency", json={"path_prefix": RECENTLY_PLAYED, "ms": 700})
    job_id = await trigger(client, token)
    await wait_until_running(client, token, job_id)
    # The job ledger's owner dies under the running job (SIGKILL, no graceful stop).
    stack.kill_component("observability")
    ready = await wait_for_status(client, "/api/health/ready", 503)
    assert ready.json()["reason"] == "services unavailable: observability"
    stats = await client.get("/api/v1/sync-jobs/stats", headers=bearer(token))
    assert stats.status_code == 503 and int(stats.headers["retry-after"]) >= 1
    await recover(client, stack, "observability")
    await simulator.delete("/_sim/latency")
    await wait_for_end(client, token, job_id)
    await sync_until_completed(client, token)
    await assert_history_matches_simulator(client, simulator, spotify_id, token)


async def test_429_storm_with_long_retry_after_pauses_then_recovers(
    client, simulator, simulator_url
):
    # Longer than the worker may wait in a call (5 s in the test stack): background work
    # fails with the reason and pauses until Retry-After has passed, without calling Spotify.
    retry_after = 8
    spotify_id, token = await new_user(client, simulator, simulator_url)
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 120})
    await simulator.post(
        "/_sim/faults",
        json={"path_prefix": "/v1/", "status": 429, "count": None, "retry_after": retry_after},
    )
    stormed_at = asyncio.get_running_loop().time()
    try:
        job = await wait_for_end(client, token, await trigger(client, token))
    finally:
        await simulator.delete("/_sim/faults")
    assert job["status"] == "failed", job
    assert "rate limit" in job["error_message"].lower(), job
    await simulator.delete("/_sim/requests")
    paused = await wait_for_end(client, token, await trigger(client, token))
    if asyncio.get_running_loop().time() - stormed_at < retry_after - 1:
        # Still within Retry-After: refused without a call to Spotify.
        assert paused["status"] == "failed", paused
        calls = await simulator.get("/_sim/requests", params={"path_prefix": "/v1/"})
        assert calls.json()["count"] == 0, calls.json()
    await asyncio.sleep(max(0.0, stormed_at + retry_after - asyncio.get_running_loop().time()))
    await sync_until_completed(client, token)
    await assert_history_matches_simulator(client, simulator, spotify_id, token)


async def test_5xx_burst_is_retried_and_nothing_is_lost(client, simulator, simulator_url):
    spotify_id, token = await new_user(client, simulator, simulator_url)
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 160})
    # Fewer failures in a row than the client's retries: every page still arrives.
    for status in (500, 502, 503):
        await simulator.post(
            "/_sim/faults",
            json={"path_prefix": RECENTLY_PLAYED, "status": status, "count": 1},
        )
    job = await wait_for_end(client, token, await trigger(client, token))
    assert job["status"] == "completed", job
    assert job["items_processed"] == 160
    await assert_history_matches_simulator(client, simulator, spotify_id, token)


async def test_revoked_tokens_mid_sync_fail_with_a_reason_and_keep_what_was_stored(
    client, simulator, simulator_url
):
    spotify_id, token = await new_user(client, simulator, simulator_url)
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 40})
    await sync_until_completed(client, token)
    assert await history_total(client, token) == 40
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 10})
    await simulator.post("/_sim/tokens/expire", json={"user_id": spotify_id})
    await simulator.post("/_sim/tokens/revoke", json={"user_id": spotify_id})
    job_id = await trigger(client, token)
    # Spotify's invalid_grant ends the user's sessions, so the job is followed after
    # signing in again (which also brings a sync of its own).
    deadline = asyncio.get_running_loop().time() + JOB_TIMEOUT
    while True:
        response = await client.get(
            "/api/v1/sync-jobs", params={"limit": 100}, headers=bearer(token)
        )
        if response.status_code == 401:
            token = await sign_in(client, simulator_url, sim_user=spotify_id)
            continue
        assert response.status_code == 200, response.text
        job = next(job for job in response.json()["items"] if job["id"] == job_id)
        if job["status"] in ("completed", "failed"):
            break
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.5)
    assert job["status"] == "failed", job
    assert "sign in again" in job["error_message"], job
    # Nothing stored before is lost; with a new sign-in the rest arrives, once.
    if (await client.get("/api/v1/auth/status", headers=bearer(token))).json()[
        "authenticated"
    ] is not True:
        token = await sign_in(client, simulator_url, sim_user=spotify_id)
    await wait_for_idle(client, token)
    await sync_until_completed(client, token)
    await assert_history_matches_simulator(client, simulator, spotify_id, token)
