"""Load: requests/s and latency percentiles of the gateway's read routes under concurrency.

Starts the stack with the rate limit raised out of the way, signs in a user with synced
plays (and the demo user's 13 months of history stored, so the database is not empty),
then runs bench.loadgen as a second process for DURATION seconds at CONCURRENCY
connections, as fast as the gateway answers. Figures: total requests/s, error count, p50,
p95, p99 latency overall and per route.

`python -m bench.load [--duration 60] [--concurrency 16]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import uuid

import httpx

from bench.common import local_stack, write_result
from tests.integration.support import sign_in

# The rate limit is a per-client budget, not what this measures.
STACK_ENV = {"ECHOSTATS_RATE_LIMIT_REQUESTS": "100000000"}
SEED_PLAYS = 500


async def prepare(gateway_url: str, simulator_url: str) -> str:
    """A signed-in user with SEED_PLAYS synced plays (and the demo history stored); its token."""
    async with (
        httpx.AsyncClient(base_url=gateway_url, timeout=120) as client,
        httpx.AsyncClient(base_url=simulator_url, timeout=60) as simulator,
    ):
        demo = (await client.get("/api/v1/auth/dev-login")).json()["token"]
        spotify_id = f"sim_load_{uuid.uuid4().hex[:8]}"
        await simulator.post("/_sim/users", json={"id": spotify_id, "display_name": "Load"})
        await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": SEED_PLAYS})
        token = await sign_in(client, simulator_url, sim_user=spotify_id)
        for headers in ({"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {demo}"}):
            while True:
                jobs = (await client.get("/api/v1/sync-jobs?limit=100", headers=headers)).json()
                if all(job["status"] in ("completed", "failed") for job in jobs["items"]):
                    break
                await asyncio.sleep(1)
        return token


def run_loadgen(
    gateway_url: str, token: str, duration: float, concurrency: int, rate: float | None = None
) -> subprocess.Popen[str]:
    """Start the load generator as its own process; its stdout is the JSON result."""
    argv = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--base-url",
        gateway_url,
        "--token",
        token,
        "--duration",
        str(duration),
        "--concurrency",
        str(concurrency),
    ]
    if rate:
        argv += ["--rate", str(rate)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # noqa: S603


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    with local_stack(STACK_ENV) as stack:
        token = asyncio.run(prepare(stack.gateway_url, stack.simulator_url))
        process = run_loadgen(stack.gateway_url, token, args.duration, args.concurrency)
        output, _ = process.communicate(timeout=args.duration + 120)
    result = json.loads(output)
    write_result("load", {"seed_plays": SEED_PLAYS, "demo_history": True, **result})
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
