"""The load generator: a separate process that drives the gateway's read routes over HTTP.

`python -m bench.loadgen --base-url URL --token T --duration S [--concurrency N] [--rate R]`
picks the routes from the gateway's OpenAPI document (every GET without path parameters,
minus the sign-in flow and the external update check), so routes added later are loaded
too, and sends them round robin from N concurrent workers, as fast as the gateway answers
or paced to R requests/s in total. It prints one JSON object: per route the requests,
errors (any status other than 200, or a transport error) and latency percentiles, and the
totals. bench.load and bench.soak start it as a second process, so its own CPU is not
counted against the gateway's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections import defaultdict

import httpx

from bench.common import percentile, summary

# Not load-tested: the OAuth flow (state in Redis per call), dev-login (creates sessions),
# and the update check (GitHub, cached).
EXCLUDED_PATHS = frozenset(
    {
        "/api/v1/auth/login",
        "/api/v1/auth/callback",
        "/api/v1/auth/dev-login",
        "/api/health/update",
    }
)
# Equal parts the run is cut into for the latency-over-time figures.
WINDOWS = 6
DEFAULT_QUERIES = {"/api/v1/history": {"limit": "50"}, "/api/v1/api-logs": {"limit": "50"}}


def read_routes(document: dict) -> list[str]:
    """Every GET path without path parameters, minus the excluded ones."""
    return sorted(
        path
        for path, item in document["paths"].items()
        if "get" in item and "{" not in path and path not in EXCLUDED_PATHS
    )


async def run(
    base_url: str, token: str, duration: float, concurrency: int, rate: float | None
) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30, limits=limits
    ) as client:
        routes = read_routes((await client.get("/api/openapi.json")).json())
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        statuses: dict[str, int] = defaultdict(int)
        # (seconds since the start, latency ms, ok) of every request, for the windows.
        timeline: list[tuple[float, float, bool]] = []
        order = itertools.cycle(routes)
        started = time.perf_counter()
        deadline = started + duration
        interval = concurrency / rate if rate else 0.0

        async def worker(offset: float) -> None:
            next_at = started + offset
            while True:
                now = time.perf_counter()
                if now >= deadline:
                    return
                if interval:
                    if next_at > now:
                        await asyncio.sleep(next_at - now)
                    next_at += interval
                path = next(order)
                sent = time.perf_counter()
                try:
                    response = await client.get(path, params=DEFAULT_QUERIES.get(path))
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latency = (time.perf_counter() - sent) * 1000
                latencies[path].append(latency)
                timeline.append((sent - started, latency, status == "200"))
                statuses[status] += 1
                if status != "200":
                    errors[path] += 1

        await asyncio.gather(
            *(worker(index * interval / concurrency) for index in range(concurrency))
        )
        elapsed = time.perf_counter() - started
    every = [value for values in latencies.values() for value in values]
    return {
        "duration_s": round(elapsed, 1),
        "concurrency": concurrency,
        "target_rate": rate,
        "requests": len(every),
        "requests_per_s": round(len(every) / elapsed, 1),
        "errors": sum(errors.values()),
        "statuses": dict(statuses),
        "latency_ms": summary(every) | {"p99": round(_p99(every), 2)} if every else {},
        "routes": {
            path: {"errors": errors[path], "latency_ms": summary(values)}
            for path, values in sorted(latencies.items())
        },
        "windows": windows(timeline, elapsed),
    }


def windows(timeline: list[tuple[float, float, bool]], elapsed: float) -> list[dict]:
    """The run cut in WINDOWS equal parts: requests, errors, p50/p99 (does latency drift?)."""
    width = max(elapsed / WINDOWS, 1.0)
    parts: list[list[tuple[float, bool]]] = [[] for _ in range(WINDOWS)]
    for at, latency, ok in timeline:
        parts[min(int(at // width), WINDOWS - 1)].append((latency, ok))
    return [
        {
            "from_s": round(index * width),
            "requests": len(part),
            "errors": sum(1 for _, ok in part if not ok),
            "p50_ms": round(percentile([v for v, _ in part], 0.5), 1) if part else None,
            "p99_ms": round(percentile([v for v, _ in part], 0.99), 1) if part else None,
        }
        for index, part in enumerate(parts)
    ]


def _p99(values: list[float]) -> float:
    return percentile(values, 0.99)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=None, help="requests/s in total")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.base_url, args.token, args.duration, args.concurrency, args.rate))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
