"""Import throughput: a deterministic 100k-play export zip, upload → import job completed.

The export (extended streaming history, ~15k-row files) is generated to a temp dir with
echostats_synthetic.exports, uploaded through the gateway as a streamed multipart body, and
the job ledger is polled until the import job has ended. Figures: upload time (the POST,
which includes ingestion counting the rows), upload → completed wall time, plays/s, and the
ledger's steps (ingestion's own split of parse, dedup and write) where it records them.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import local_stack, write_result
from echostats_synthetic.exports import synthetic_plays, write_export_zip
from tests.integration.support import sign_in

PLAYS = 100_000
SEED = 7
# A high rate limit: the benchmark polls the ledger and must never be throttled.
STACK_ENV = {"ECHOSTATS_RATE_LIMIT_REQUESTS": "1000000"}


def build_export(directory: Path, plays: int) -> tuple[Path, int, float]:
    """Write the export zip; (path, history rows, seconds it took)."""
    started = time.perf_counter()
    summary = write_export_zip(
        directory / "my_spotify_data.zip", plays=synthetic_plays(plays, seed=SEED), seed=SEED
    )
    return summary.path, summary.rows, time.perf_counter() - started


async def sign_in_new_user(client: httpx.AsyncClient, simulator_url: str) -> dict[str, str]:
    """A fresh simulated user, signed in, idle after its (empty) initial sync; auth headers."""
    spotify_id = f"sim_bench_{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=simulator_url, timeout=60) as simulator:
        await simulator.post("/_sim/users", json={"id": spotify_id, "display_name": "Bench"})
    token = await sign_in(client, simulator_url, sim_user=spotify_id)
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        jobs = (await client.get("/api/v1/sync-jobs?limit=100", headers=headers)).json()["items"]
        if all(job["status"] in ("completed", "failed") for job in jobs):
            return headers
        await asyncio.sleep(0.2)


async def upload_and_wait(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    path: Path,
    *,
    on_poll: Any = None,
    poll_seconds: float = 0.05,
) -> dict[str, Any]:
    """Upload the export, poll until its job ends; timings, the response and the job."""
    started = time.perf_counter()
    with path.open("rb") as file:
        # httpx reads file objects in chunks, so the client streams the upload too.
        response = await client.post(
            "/api/v1/history/import",
            files={"file": (path.name, file, "application/zip")},
            headers=headers,
            timeout=600,
        )
    uploaded = time.perf_counter()
    assert response.status_code == 200, response.text
    accepted = response.json()
    while True:
        if on_poll is not None:
            on_poll()
        jobs = (
            await client.get(
                "/api/v1/sync-jobs", params={"job_type": "import", "limit": 100}, headers=headers
            )
        ).json()["items"]
        job = next(j for j in jobs if j["id"] == accepted["job_id"])
        if job["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(poll_seconds)
    finished = time.perf_counter()
    return {
        "accepted": accepted,
        "job": job,
        "upload_s": uploaded - started,
        "total_s": finished - started,
    }


async def measure(gateway_url: str, simulator_url: str, path: Path) -> dict[str, Any]:
    """Import the export once for a fresh user; the figures."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
        headers = await sign_in_new_user(client, simulator_url)
        run = await upload_and_wait(client, headers, path)
        history = (await client.get("/api/v1/history", params={"limit": 1}, headers=headers)).json()
    job = run["job"]
    assert job["status"] == "completed", job
    return {
        "items_total": run["accepted"]["items_total"],
        "plays_stored": history["total"],
        "upload_s (POST incl. ingestion's count)": round(run["upload_s"], 2),
        "upload_to_completed_s": round(run["total_s"], 2),
        "job_after_upload_s": round(run["total_s"] - run["upload_s"], 2),
        "rows_per_s (items_total / upload→completed)": round(
            run["accepted"]["items_total"] / run["total_s"]
        ),
        "ledger_steps": [
            {k: step[k] for k in ("action", "status", "detail", "items")} for step in job["steps"]
        ],
        "ledger_created_to_completed": [job["created_at"], job["completed_at"]],
    }


def main() -> None:
    """Generate the export, start a stack, import it, write bench/results/import_throughput.json."""
    with tempfile.TemporaryDirectory(prefix="echostats-export-") as directory:
        path, rows, generate_s = build_export(Path(directory), PLAYS)
        with local_stack(STACK_ENV) as stack:
            figures = asyncio.run(measure(stack.gateway_url, stack.simulator_url, path))
        figures = {
            "plays": PLAYS,
            "history_rows": rows,
            "zip_mib": round(path.stat().st_size / 2**20, 1),
            "generate_s": round(generate_s, 2),
            **figures,
        }
    write_result("import_throughput", figures)


if __name__ == "__main__":
    main()
