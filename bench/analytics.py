"""Analytics: overview latency at 100k and 1M plays, refresh after a sync, full rebuild of 100k.

1. **100k plays** of one user (~20 months ending today, ~165 a day) are imported through the
   gateway as a synthetic extended-history export; the plays-stored event rolls them up
   (timed: import completed → rollup-status complete).
2. **Overview**: GET /api/v1/analytics/overview (all_time, then week) through the gateway,
   32 concurrent clients, after one warm-up read (which computes the snapshot). p50/p99.
3. **Refresh after a sync**: 50 new plays stored in ingestion (as a sync stores them), then
   the sync pipeline's analytics step (AnalyticsService.RefreshAfterSync over gRPC: roll up
   the touched day, recompute all five snapshots), and POST /analytics/refresh through the
   gateway on changed data.
4. **Full rebuild**: POST /analytics/rollup-build of the 100k plays → job completed (ledger
   created → completed, and client wall time).
5. **1M plays**: loading a million plays through ingestion on FerretDB would take hours, so
   the second user's rollups are written directly (the same `RollupRepository` the service
   uses, from ~1M synthetic plays over 2.6 years: six synthetic listeners merged): the
   overview read path is identical (a stored snapshot read by `_id`), which is what "flat
   in history size" is about. The first (computing) read is reported separately.
"""

from __future__ import annotations

import asyncio
import heapq
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from redis.asyncio import Redis

from analytics_service.repository import RollupRepository
from analytics_service.rollup_builder import DayBuilder
from analytics_service.rollups import PlayFacts
from bench.common import local_stack, summary, write_result
from bench.import_throughput import sign_in_new_user, upload_and_wait
from echostats.analytics.v1 import analytics_service_pb2 as pb
from echostats.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from echostats_grpc.client import create_channel
from echostats_grpc.timestamps import to_timestamp
from echostats_platform.mongo import create_mongo_client
from echostats_platform.settings import CommonSettings
from echostats_synthetic import generate_catalog, generate_history
from echostats_synthetic.exports import write_export_zip
from ingestion_service.models import Play, PlaySource, PlayTrack
from ingestion_service.repository import PlayRepository

PLAYS = 100_000
BIG_PLAYS = 1_000_000
CONCURRENCY = 32
REQUESTS_PER_CLIENT = 40
SEED = 7
STACK_ENV = {
    "ECHOSTATS_RATE_LIMIT_REQUESTS": "10000000",
    # Month documents of a big history are megabytes; FerretDB reads them slowly by `_id`.
    "ECHOSTATS_MONGODB_TIMEOUT_MS": "30000",
}
REFRESH_ROUNDS = 3
WRK_SECONDS = 15
# `--only-100k` leaves out the 1M case (with or without `--quick`).
CASES = 1 if "--only-100k" in sys.argv else 2


async def overview_latency(
    gateway_url: str, headers: dict[str, str], period: str
) -> dict[str, Any]:
    """p50/p99 of the overview at CONCURRENCY clients, after one warm-up (computing) read."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        # The first read computes the snapshot; on FerretDB a big one can outlast the
        # gateway's 30 s budget (504), while the computation goes on and is stored.
        while True:
            first = await client.get(
                "/api/v1/analytics/overview",
                params={"period": period},
                headers=headers,
                timeout=300,
            )
            if first.status_code != 504:
                break
        first_ms = (time.perf_counter() - started) * 1000
        assert first.status_code == 200, first.text

        result: dict[str, Any] = {
            "plays_in_period": first.json()["total_tracks_played"],
            "first_read_ms (computes the snapshot)": round(first_ms, 1),
        }
        url = f"{gateway_url}/api/v1/analytics/overview?period={period}"
        if shutil.which("wrk"):
            # wrk (C) barely uses the CPU the stack needs; a Python client here used a third
            # of the two cores and its own scheduling showed up as a second of p99.
            result[f"wrk_{CONCURRENCY}_connections"] = run_wrk(url, headers, CONCURRENCY)
            result["wrk_1_connection"] = run_wrk(url, headers, 1)
            return result

        latencies: list[float] = []

        async def one_client() -> None:
            for _ in range(REQUESTS_PER_CLIENT):
                begun = time.perf_counter()
                response = await client.get(
                    "/api/v1/analytics/overview", params={"period": period}, headers=headers
                )
                latencies.append((time.perf_counter() - begun) * 1000)
                assert response.status_code == 200, response.text

        wall = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(CONCURRENCY)))
        wall = time.perf_counter() - wall
    figures = summary(latencies)
    figures["p99"] = round(sorted(latencies)[int(len(latencies) * 0.99) - 1], 2)
    return result | {
        "python_client_latency_ms (install wrk for a lighter client)": figures,
        "requests_per_s": round(len(latencies) / wall),
    }


def run_wrk(url: str, headers: dict[str, str], connections: int) -> dict[str, Any]:
    """Latency percentiles and requests/s of `wrk` (one thread) against `url` for WRK_SECONDS."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{WRK_SECONDS}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    output = subprocess.run(  # noqa: S603 - fixed command line
        [*argv, url], capture_output=True, text=True, check=True, timeout=WRK_SECONDS + 30
    ).stdout
    figures: dict[str, Any] = {"connections": connections, "seconds": WRK_SECONDS}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "75%", "90%", "99%"):
            figures[f"p{parts[0][:-1]}_ms"] = _wrk_ms(parts[1])
        elif line.startswith("Requests/sec:"):
            figures["requests_per_s"] = round(float(parts[1]))
        elif "Non-2xx" in line or "Socket errors" in line:
            figures["errors"] = line.strip()
    return figures


def _wrk_ms(value: str) -> float:
    """A wrk duration (`812.00us`, `5.33ms`, `1.20s`) in milliseconds."""
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(suffix):
            return round(float(value[: -len(suffix)]) * factor, 2)
    raise ValueError(f"unexpected wrk duration {value!r}")


async def user_id_of(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """The signed-in user's id."""
    status = (await client.get("/api/v1/auth/status", headers=headers)).json()
    return str(status["user"]["id"])


async def wait_rolled_up(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Poll rollup-status until complete."""
    while True:
        response = await client.get("/api/v1/analytics/rollup-status", headers=headers)
        # Under load ingestion's count can outlast the budget (504): just ask again.
        if response.status_code == 200:
            status = response.json()
            if status["complete"] and status["total_days"]:
                return status
        await asyncio.sleep(0.5)


async def wait_job(
    client: httpx.AsyncClient, headers: dict[str, str], job_id: str
) -> dict[str, Any]:
    """Poll the ledger until the job ended."""
    while True:
        response = await client.get(
            "/api/v1/sync-jobs", params={"job_type": "rollup_build"}, headers=headers
        )
        jobs = response.json()["items"] if response.status_code == 200 else []
        job = next((j for j in jobs if j["id"] == job_id), None)
        if job and job["status"] in ("completed", "failed"):
            return job
        await asyncio.sleep(0.05)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def refresh_after_sync(
    stack: Any, client: httpx.AsyncClient, headers: dict[str, str], user_id: str
) -> dict[str, Any]:
    """Store 50 new plays the way a sync does, then time the analytics step and a refresh."""
    mongo = create_mongo_client(
        CommonSettings(mongodb_uri=stack.mongodb_uri), app_name="bench-analytics"
    )
    channel = create_channel(stack.service_addrs["analytics"], default_timeout=120)
    stub = pb_grpc.AnalyticsServiceStub(channel)
    plays = PlayRepository(mongo["echostats_ingestion"])
    step: list[float] = []
    refresh: list[float] = []
    try:
        for round_number in range(REFRESH_ROUNDS):
            now = datetime.now(UTC).replace(microsecond=0)
            batch = [
                Play(
                    user_id=user_id,
                    track=PlayTrack(
                        spotify_id=f"benchtrack{round_number:03d}{n:04d}",
                        name=f"Bench {n}",
                        artist_name="Bench Artist",
                        album_name="Bench Album",
                        duration_ms=180_000,
                    ),
                    played_at=now - timedelta(seconds=60 * n + 1),
                    ms_played=180_000,
                    source=PlaySource.API,
                )
                for n in range(50)
            ]
            await plays.insert_plays(batch)
            request = pb.RefreshAfterSyncRequest(user_id=user_id, job_id="bench")
            request.first_played_at.CopyFrom(to_timestamp(min(p.played_at for p in batch)))
            request.last_played_at.CopyFrom(to_timestamp(max(p.played_at for p in batch)))
            started = time.perf_counter()
            report = await stub.RefreshAfterSync(request)
            step.append((time.perf_counter() - started) * 1000)
            assert report.status == "completed", report
            started = time.perf_counter()
            response = await client.post("/api/v1/analytics/refresh", headers=headers, timeout=120)
            refresh.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    finally:
        await channel.close()
        await mongo.close()
    return {
        "analytics_step_after_50_new_plays_ms (RefreshAfterSync: roll up + 5 snapshots)": summary(
            step
        ),
        "post_refresh_all_periods_ms (gateway, data unchanged since the step)": summary(refresh),
    }


def big_history() -> Any:
    """~1M synthetic plays ending now (six synthetic listeners merged, ~1,057 a day)."""
    end = datetime.now(UTC) - timedelta(minutes=1)
    start = end - timedelta(days=945)
    catalog = generate_catalog()
    return heapq.merge(
        *(
            generate_history(catalog, seed=seed, start=start, end=end, plays_per_day=600)
            for seed in range(SEED, SEED + 6)
        ),
        key=lambda play: play.played_at,
    )


def newest_history() -> list[Any]:
    """The newest PLAYS plays of one synthetic listener (~20 months ending now)."""
    # The generator saturates at ~165 plays a day (skips, gaps, the 30 s rule, listening
    # hours), so two years are generated and the newest PLAYS kept.
    end = datetime.now(UTC) - timedelta(minutes=5)
    history = generate_history(
        generate_catalog(),
        seed=SEED,
        start=end - timedelta(days=730),
        end=end,
        plays_per_day=PLAYS / 365 / 0.40,
        # Only plays an import keeps (>= 30 s), so all PLAYS are stored.
        min_ms_played=30_000,
        with_ms=False,
    )
    newest = list(history)[-PLAYS:]
    assert len(newest) == PLAYS, len(newest)
    return newest


async def seed_rollups(stack: Any, user_id: str, history: Any) -> dict[str, Any]:
    """Write the rollups of these synthetic plays (oldest first) directly, a month at a time."""
    zone = ZoneInfo("UTC")
    mongo = create_mongo_client(
        CommonSettings(mongodb_uri=stack.mongodb_uri, mongodb_timeout_ms=60_000),
        app_name="bench-analytics-seed",
    )
    # With the service's Redis, like the service: the overview reads the data version there.
    redis = Redis.from_url(stack.redis_url)
    repository = RollupRepository(mongo["echostats_analytics"], redis=redis)
    started = time.perf_counter()
    count = 0
    month_days: dict[str, DayBuilder] = {}
    current_month = ""
    try:
        for play in history:
            if count >= BIG_PLAYS:
                break
            local = play.played_at.astimezone(zone)
            day = local.date().isoformat()
            if day[:7] != current_month and month_days:
                await repository.write_days(user_id, {d: b.rollup() for d, b in month_days.items()})
                month_days = {}
            current_month = day[:7]
            track = play.track
            builder = month_days.get(day)
            if builder is None:
                builder = month_days[day] = DayBuilder()
            builder.add(
                PlayFacts(
                    local_time=local,
                    ms=play.ms_played,
                    track_id=track.id,
                    track_name=track.name,
                    artist_id=track.artists[0].id if track.artists else "",
                    artist_name=track.artists[0].name if track.artists else "",
                    album_id=track.album.id,
                    album_name=track.album.name,
                    album_image=track.album.image_url,
                )
            )
            count += 1
        if month_days:
            await repository.write_days(user_id, {d: b.rollup() for d, b in month_days.items()})
    finally:
        await mongo.close()
        await redis.aclose()
    return {"plays": count, "seed_s": round(time.perf_counter() - started, 1)}


async def measure(stack: Any, export: Path) -> dict[str, Any]:
    """Every figure on one stack."""
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=120) as client:
        headers = await sign_in_new_user(client, stack.simulator_url)
        user_id = await user_id_of(client, headers)
        run = await upload_and_wait(client, headers, export, poll_seconds=0.2)
        assert run["job"]["status"] == "completed", run["job"]
        imported = time.perf_counter()
        status = await wait_rolled_up(client, headers)
        figures["import_100k"] = {
            "import_s": round(run["total_s"], 1),
            "import_completed_to_rollups_complete_s (plays-stored event)": round(
                time.perf_counter() - imported, 2
            ),
            "rollup_status": status,
        }
        figures["overview_100k_all_time"] = await overview_latency(
            stack.gateway_url, headers, "all_time"
        )
        figures["overview_100k_week"] = await overview_latency(stack.gateway_url, headers, "week")
        write_result("analytics", figures)

        started = time.perf_counter()
        build = (await client.post("/api/v1/analytics/rollup-build", headers=headers)).json()
        job = await wait_job(client, headers, build["job_id"])
        wall = time.perf_counter() - started
        assert job["status"] == "completed", job
        figures["rebuild_100k"] = {
            "plays": job["items_processed"],
            "client_wall_s (POST → job completed seen, 50 ms polling)": round(wall, 2),
            "ledger_created_to_completed_s": round(
                (_parse(job["completed_at"]) - _parse(job["created_at"])).total_seconds(), 2
            ),
            "detail": job["steps"][0]["detail"],
        }
        write_result("analytics", figures)
        figures["refresh_after_sync_100k"] = await refresh_after_sync(
            stack, client, headers, user_id
        )

        # Written after each stage, so a run cut short still leaves its figures.
        write_result("analytics", figures)
        if CASES == 1:
            return figures
        big_headers = await sign_in_new_user(client, stack.simulator_url)
        big_user = await user_id_of(client, big_headers)
        figures["seed_1m_rollups"] = await seed_rollups(stack, big_user, big_history())
        figures["overview_1m_all_time"] = await overview_latency(
            stack.gateway_url, big_headers, "all_time"
        )
        figures["overview_1m_week"] = await overview_latency(stack.gateway_url, big_headers, "week")
    return figures


async def measure_quick(stack: Any) -> dict[str, Any]:
    """Overview at 100k and 1M and refresh after a sync, on rollups written directly."""
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=120) as client:
        for name, history in (("100k", newest_history()), ("1m", big_history()))[:CASES]:
            headers = await sign_in_new_user(client, stack.simulator_url)
            user_id = await user_id_of(client, headers)
            figures[f"seed_{name}_rollups"] = await seed_rollups(stack, user_id, history)
            figures[f"overview_{name}_all_time"] = await overview_latency(
                stack.gateway_url, headers, "all_time"
            )
            figures[f"overview_{name}_week"] = await overview_latency(
                stack.gateway_url, headers, "week"
            )
            write_result("analytics_quick", figures)
            if name == "100k":
                figures["refresh_after_sync_100k"] = await refresh_after_sync(
                    stack, client, headers, user_id
                )
            # Written after each case, so a run cut short still leaves its figures.
            write_result("analytics_quick", figures)
    return figures


def main() -> None:
    """Generate the 100k export, start a stack, measure, write bench/results/analytics.json.

    `--quick`: rollups written directly for both users (no import, no rebuild).
    """
    if "--quick" in sys.argv:
        with local_stack(STACK_ENV) as stack:
            figures = asyncio.run(measure_quick(stack))
        write_result(
            "analytics_quick",
            {"concurrency": CONCURRENCY, "requests_per_case": CONCURRENCY * REQUESTS_PER_CLIENT}
            | figures,
        )
        return
    with tempfile.TemporaryDirectory(prefix="echostats-analytics-") as directory:
        newest = newest_history()
        summary_ = write_export_zip(
            Path(directory) / "my_spotify_data.zip", plays=iter(newest), seed=SEED
        )
        with local_stack(STACK_ENV) as stack:
            figures = asyncio.run(measure(stack, summary_.path))
    write_result(
        "analytics",
        {"concurrency": CONCURRENCY, "requests_per_case": CONCURRENCY * REQUESTS_PER_CLIENT}
        | figures,
    )


if __name__ == "__main__":
    main()
