"""Peak memory of the ingestion worker while it imports a deterministic 1M-play export.

The worker's VmHWM (peak resident set, from /proc/<pid>/status) is read before the upload,
sampled at every ledger poll while the import runs, and read again when the job has ended;
the figure is the peak, beside the baseline the idle worker already had.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx

from bench.common import local_stack, write_result
from bench.import_throughput import STACK_ENV, build_export, sign_in_new_user, upload_and_wait

PLAYS = 1_000_000
WORKER = "ingestion-worker"


def status_kib(pid: int, field: str) -> int:
    """A `VmHWM`/`VmRSS`-style field of /proc/<pid>/status, in KiB (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


async def measure(stack, path: Path) -> dict[str, object]:
    """Import the export once; the worker's memory figures and the timings."""
    pid = stack.pid(WORKER)
    assert pid is not None, "the ingestion worker runs in its own process"
    baseline = status_kib(pid, "VmHWM")
    peak_rss = 0

    def sample() -> None:
        nonlocal peak_rss
        peak_rss = max(peak_rss, status_kib(pid, "VmRSS"))

    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        headers = await sign_in_new_user(client, stack.simulator_url)
        run = await upload_and_wait(client, headers, path, on_poll=sample, poll_seconds=0.1)
    # The same process must have done the whole import, or its high-water mark means nothing.
    assert stack.pid(WORKER) == pid, "the worker restarted during the import"
    job = run["job"]
    return {
        "job_status": job["status"],
        "items_total": run["accepted"]["items_total"],
        "worker_vmhwm_before_mib": round(baseline / 1024, 1),
        "worker_vmhwm_peak_mib": round(status_kib(pid, "VmHWM") / 1024, 1),
        "worker_vmrss_max_sampled_mib": round(peak_rss / 1024, 1),
        "upload_to_completed_s": round(run["total_s"], 2),
    }


def main() -> None:
    """Generate the export, start a stack, import it, write bench/results/import_memory.json."""
    with tempfile.TemporaryDirectory(prefix="echostats-export-") as directory:
        path, rows, generate_s = build_export(Path(directory), PLAYS)
        with local_stack(STACK_ENV) as stack:
            figures = asyncio.run(measure(stack, path))
        figures = {
            "plays": PLAYS,
            "history_rows": rows,
            "zip_mib": round(path.stat().st_size / 2**20, 1),
            "generate_s": round(generate_s, 2),
            "goal_mib": 300,
            **figures,
        }
    write_result("import_memory", figures)


if __name__ == "__main__":
    main()
