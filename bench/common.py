"""What every benchmark shares: a local stack on free ports, the machine's description, and
writing results next to the command that produced them."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from echostats_devstack import LocalStack

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, object]:
    """Cores, memory and Python of the machine a figure was measured on."""
    memory_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


@contextlib.contextmanager
def local_stack(env: Mapping[str, str] | None = None) -> Iterator[LocalStack]:
    """The whole stack (FerretDB, Redis, simulator, services, workers, gateway) on free ports."""
    with tempfile.TemporaryDirectory(prefix="echostats-bench-") as run_dir:
        stack = LocalStack(Path(run_dir), environment="test", env=dict(env or {}))
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    """p50/p95/max/mean of a list of measurements."""
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.5), 2),
        "p95": round(percentile(values, 0.95), 2),
        "max": round(max(values), 2),
        "mean": round(statistics.fmean(values), 2),
    }


def write_result(name: str, figures: Mapping[str, object]) -> Path:
    """Print the figures and store them as bench/results/<name>.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "command": " ".join([Path(sys.executable).name, "-m", f"bench.{name}"]),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "figures": dict(figures),
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return path
