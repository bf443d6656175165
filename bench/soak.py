"""Soak: a steady request rate for a long time; errors and the memory of every process.

Starts the stack like bench.load, runs bench.loadgen as a second process at RATE
requests/s for MINUTES, and samples the resident memory (VmRSS) of every component's
process every SAMPLE seconds. Figures: requests, errors, latency percentiles, and per
process the first and last RSS and the slope of a least-squares line through the samples
after the first minute of warm-up (MiB per hour): flat memory is a slope near zero.

`python -m bench.soak [--minutes 30] [--rate 20]` (`make soak SOAK_MINUTES=30`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from bench.common import local_stack, write_result
from bench.load import STACK_ENV, prepare, run_loadgen

SAMPLE_SECONDS = 10.0
WARM_UP_SECONDS = 60.0


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process in MiB (None when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) samples, in MiB per hour."""
    if len(samples) < 2:
        return 0.0
    xs = [x for x, _ in samples]
    ys = [y for _, y in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return cov / var * 3600


def rss_at_sixths(samples: list[tuple[float, float]], duration: float) -> list[float]:
    """The last sample at or before the end of each sixth of the run."""
    marks = [duration * part / 6 for part in range(1, 7)]
    return [next((y for x, y in reversed(samples) if x <= mark), samples[0][1]) for mark in marks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s in total")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    duration = args.minutes * 60
    samples: dict[str, list[tuple[float, float]]] = {}
    with local_stack(STACK_ENV) as stack:
        token = asyncio.run(prepare(stack.gateway_url, stack.simulator_url))
        pids = {name: pid for name in stack.components if (pid := stack.pid(name)) is not None}
        process = run_loadgen(stack.gateway_url, token, duration, args.concurrency, args.rate)
        started = time.monotonic()
        while process.poll() is None:
            elapsed = time.monotonic() - started
            for name, pid in pids.items():
                value = rss_mib(pid)
                if value is not None:
                    samples.setdefault(name, []).append((elapsed, value))
            time.sleep(SAMPLE_SECONDS)
        output = process.stdout.read() if process.stdout else ""
        died = stack.dead_components()
    result = json.loads(output)
    memory = {}
    for name, values in sorted(samples.items()):
        steady = [(x, y) for x, y in values if x >= WARM_UP_SECONDS] or values
        memory[name] = {
            "rss_first_mib": round(values[0][1], 1),
            "rss_last_mib": round(values[-1][1], 1),
            "rss_max_mib": round(max(y for _, y in values), 1),
            "slope_mib_per_hour": round(slope_per_hour(steady), 1),
            # Slope of the second half alone: growth that levels off is not a leak.
            "second_half_slope_mib_per_hour": round(
                slope_per_hour([(x, y) for x, y in values if x >= duration / 2] or values), 1
            ),
            # RSS at the end of each sixth of the run.
            "rss_by_sixth_mib": [round(y, 1) for y in rss_at_sixths(values, duration)],
        }
    write_result(
        "soak",
        {
            "minutes": args.minutes,
            "rate": args.rate,
            "requests": result["requests"],
            "requests_per_s": result["requests_per_s"],
            "errors": result["errors"],
            "statuses": result["statuses"],
            "latency_ms": result["latency_ms"],
            "components_died": died,
            "memory": memory,
            # Per route: requests, errors and latency (which routes fail or slow down).
            "routes": result.get("routes", {}),
            # The run in six equal parts: requests, errors, p50/p99 (flat latency too).
            "windows": result.get("windows", []),
        },
    )
    return 0 if result["errors"] == 0 and not died else 1


if __name__ == "__main__":
    sys.exit(main())
