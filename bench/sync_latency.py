"""Sync of 50 new plays end to end: POST /sync-jobs/trigger → job completed, through the gateway.

Each round adds 50 plays to a simulated account, triggers a manual sync and polls the job
ledger until the job has completed; the figure is the wall time from the trigger request to
the poll that saw `completed`, and the ledger's own created_at → completed_at.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime

import httpx

from bench.common import local_stack, summary, write_result
from tests.integration.support import sign_in

ROUNDS = 15
NEW_PLAYS = 50


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def measure(gateway_url: str, simulator_url: str) -> dict[str, object]:
    """Run ROUNDS syncs of NEW_PLAYS plays for one user; returns the figures."""
    async with (
        httpx.AsyncClient(base_url=gateway_url, timeout=60) as client,
        httpx.AsyncClient(base_url=simulator_url, timeout=60) as simulator,
    ):
        spotify_id = f"sim_bench_{uuid.uuid4().hex[:8]}"
        await simulator.post("/_sim/users", json={"id": spotify_id, "display_name": "Bench"})
        token = await sign_in(client, simulator_url, sim_user=spotify_id)
        headers = {"Authorization": f"Bearer {token}"}
        await _wait_idle(client, headers)
        wall: list[float] = []
        ledger: list[float] = []
        for _ in range(ROUNDS):
            await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": NEW_PLAYS})
            started = time.perf_counter()
            trigger = (await client.post("/api/v1/sync-jobs/trigger", headers=headers)).json()
            job = await _wait_job(client, headers, trigger["job_id"])
            wall.append((time.perf_counter() - started) * 1000)
            assert job["status"] == "completed" and job["items_processed"] == NEW_PLAYS, job
            ledger.append(
                (_parse(job["completed_at"]) - _parse(job["created_at"])).total_seconds() * 1000
            )
        return {
            "new_plays_per_sync": NEW_PLAYS,
            "trigger_to_completed_ms (client, 20 ms polling)": summary(wall),
            "created_to_completed_ms (ledger)": summary(ledger),
        }


async def _wait_idle(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    while True:
        jobs = (await client.get("/api/v1/sync-jobs?limit=100", headers=headers)).json()["items"]
        if all(job["status"] in ("completed", "failed") for job in jobs):
            return
        await asyncio.sleep(0.05)


async def _wait_job(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict:
    while True:
        jobs = (await client.get("/api/v1/sync-jobs?limit=5", headers=headers)).json()["items"]
        job = next((job for job in jobs if job["id"] == job_id), None)
        if job and job["status"] in ("completed", "failed"):
            return job
        await asyncio.sleep(0.02)


def main() -> None:
    """Start a stack and measure."""
    # The benchmark itself sends far more than 100 requests a minute.
    with local_stack({"ECHOSTATS_RATE_LIMIT_REQUESTS": "100000"}) as stack:
        figures = asyncio.run(measure(stack.gateway_url, stack.simulator_url))
    write_result("sync_latency", figures)


if __name__ == "__main__":
    main()
