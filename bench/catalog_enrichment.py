"""Enrichment of 10,000 new tracks, for an extended-quota app and a development-mode app.

Per mode, a fresh stack: a simulated user signs in, catalog is told (NoteTracksSeen, as the
plays-stored consumer does) about 10,000 track ids it has never seen, and the background
drainer enriches them: tracks, their artists, albums and (where open) audio features. The
figures are the Spotify calls the simulator served for that user, by endpoint, and the wall
time from the note until every queue of the user is empty. The user's budget is lifted for
the run (ECHOSTATS_ENRICH_BUDGET_CALLS) so the figure is the pipeline, not the budget.

Run: `uv run --frozen python -m bench.catalog_enrichment [n_tracks] [extended|development ...]`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import uuid
from collections import Counter

import httpx
from redis.asyncio import Redis

from bench.common import local_stack, write_result
from echostats.catalog.v1 import catalog_service_pb2 as catalog_pb
from echostats.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from echostats_grpc.client import create_channel
from echostats_synthetic.catalog import generate_catalog
from tests.integration.support import sign_in

TRACKS = 10_000
# The simulator's default catalog (SIMULATOR_CATALOG_SEED / _TRACKS).
CATALOG_SEED, CATALOG_TRACKS = 20240101, 10_000
NOTE_CHUNK = 1000
QUEUE_KINDS = ("tracks", "artists", "albums", "features")
ENV = {
    "ECHOSTATS_RATE_LIMIT_REQUESTS": "100000",
    "ECHOSTATS_ENRICH_BUDGET_CALLS": "1000000",
}


def user_id_of(token: str) -> str:
    """The EchoStats user id in a session token (the JWT's `sub`)."""
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


async def measure(
    mode: str, gateway_url: str, simulator_url: str, redis_url: str, catalog_addr: str, n: int
) -> dict[str, object]:
    """Enrich `n` new tracks in `mode`; returns calls by endpoint and wall time."""
    track_ids = list(generate_catalog(CATALOG_SEED, CATALOG_TRACKS).tracks)[:n]
    channel = create_channel(catalog_addr, default_timeout=120)
    redis = Redis.from_url(redis_url, decode_responses=True)
    async with (
        httpx.AsyncClient(base_url=gateway_url, timeout=60) as client,
        httpx.AsyncClient(base_url=simulator_url, timeout=60) as simulator,
    ):
        (await simulator.put("/_sim/mode", json={"mode": mode})).raise_for_status()
        spotify_id = f"sim_bench_{uuid.uuid4().hex[:8]}"
        await simulator.post("/_sim/users", json={"id": spotify_id, "display_name": "Bench"})
        token = await sign_in(client, simulator_url, sim_user=spotify_id)
        user_id = user_id_of(token)
        catalog = catalog_grpc.CatalogServiceStub(channel)
        await asyncio.sleep(2)  # let the initial sync (no plays) finish
        (await simulator.delete("/_sim/requests")).raise_for_status()
        started = time.perf_counter()
        for start in range(0, n, NOTE_CHUNK):
            await catalog.NoteTracksSeen(
                catalog_pb.NoteTracksSeenRequest(
                    user_id=user_id,
                    tracks=[
                        catalog_pb.SeenTrack(spotify_id=i)
                        for i in track_ids[start : start + NOTE_CHUNK]
                    ],
                )
            )
        noted = time.perf_counter() - started
        keys = [f"catalog:enrich:{kind}:{user_id}" for kind in QUEUE_KINDS]
        closed_features = "catalog:spotify-closed:audio-features"
        while True:
            sizes = {k.split(":")[2]: await redis.scard(k) for k in keys}
            if await redis.exists(closed_features):
                sizes.pop("features")
            if not any(sizes.values()):
                break
            await asyncio.sleep(0.5)
        wall = time.perf_counter() - started
        await asyncio.sleep(3)  # call records reach the log in batches
        # Counted from the user's API log (the simulator keeps only its last 10,000 requests);
        # it includes the initial sync's few calls (top items' artists, features).
        by_endpoint = Counter[str]()
        headers = {"Authorization": f"Bearer {token}"}
        for family in ("/v1/tracks", "/v1/artists", "/v1/albums", "/v1/audio-features"):
            for pattern, label in ((family + "/", family + "/{id}"), (family, family)):
                page = await client.get(
                    "/api/v1/api-logs",
                    params={"endpoint_contains": pattern, "limit": 1},
                    headers=headers,
                )
                page.raise_for_status()
                by_endpoint[label] = int(page.json()["total"]) - sum(
                    v for k, v in by_endpoint.items() if k.startswith(family + "/")
                )
        by_endpoint = Counter({k: v for k, v in by_endpoint.items() if v})
        known = await catalog.DescribeKnownTracks(
            catalog_pb.BatchGetRequest(spotify_ids=track_ids[:500])
        )
    await channel.close()
    await redis.aclose()
    return {
        "tracks": n,
        "spotify_calls": sum(by_endpoint.values()),
        "calls_by_endpoint": dict(sorted(by_endpoint.items())),
        "wall_seconds": round(wall, 1),
        "note_seconds": round(noted, 1),
        "tracks_per_second": round(n / wall, 1),
        "sample_500_enriched": sum(t.enriched for t in known.tracks),
        "sample_500_with_audio_features": sum(t.has_audio_features for t in known.tracks),
    }


def main() -> None:
    """One fresh stack per mode (each run needs tracks the catalog has never seen)."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else TRACKS
    modes = sys.argv[2:] or ["extended", "development"]
    figures: dict[str, object] = {}
    for mode in modes:
        with local_stack(ENV) as stack:
            figures[mode] = asyncio.run(
                measure(
                    mode,
                    stack.gateway_url,
                    stack.simulator_url,
                    stack.redis_url,
                    stack.service_addrs["catalog"],
                    n,
                )
            )
        print(mode, figures[mode], flush=True)
    suffix = "" if len(modes) == 2 else "_" + "_".join(modes)
    write_result("catalog_enrichment" + suffix, figures)


if __name__ == "__main__":
    main()
