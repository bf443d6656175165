"""Load: requests/s and latency percentiles of the gateway's read routes under concurrency.

Starts the stack with the rate limit raised out of the way, signs in a user with synced
plays (and the demo user's 13 months of history stored, so the database is not empty),
optionally imports a synthetic export of PLAYS plays for that user (data-size scaling:
100k, 1M), then runs bench.loadgen as a second process for DURATION seconds at
CONCURRENCY connections, as fast as the gateway answers. Figures: total requests/s, error
count, p50, p95, p99 latency overall and per route. Results go to
bench/results/load.json, or load_<plays>.json with --plays.

`python -m bench.load [--duration 60] [--concurrency 16] [--plays 100000]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx

from bench.common import local_stack, write_result
from bench.import_throughput import build_export, upload_and_wait
from tests.integration.support import sign_in

# The rate limit is a per-client budget, not what this measures.
STACK_ENV = {"ECHOSTATS_RATE_LIMIT_REQUESTS": "100000000"}
SEED_PLAYS = 500


async def prepare(gateway_url: str, simulator_url: str, export: Path | None = None) -> str:
    """A signed-in user with SEED_PLAYS synced plays (and the demo history stored), plus the
    plays of `export` imported when given; its token."""
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
        if export is not None:
            run = await upload_and_wait(
                client, {"Authorization": f"Bearer {token}"}, export, poll_seconds=2
            )
            assert run["job"]["status"] == "completed", run["job"]
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
    parser.add_argument("--plays", type=int, default=0, help="import this many plays first")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as resources:
        export = None
        if args.plays:
            directory = Path(resources.enter_context(tempfile.TemporaryDirectory()))
            export, _, _ = build_export(directory, args.plays)
        stack = resources.enter_context(local_stack(STACK_ENV))
        token = asyncio.run(prepare(stack.gateway_url, stack.simulator_url, export))
        process = run_loadgen(stack.gateway_url, token, args.duration, args.concurrency)
        output, _ = process.communicate(timeout=args.duration + 120)
    result = json.loads(output)
    name = f"load_{args.plays}" if args.plays else "load"
    figures = {"seed_plays": SEED_PLAYS, "imported_plays": args.plays, "demo_history": True}
    write_result(name, {**figures, **result})
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
