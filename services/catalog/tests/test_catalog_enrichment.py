"""Enrichment through the real sync pipeline: batch calls when open, single lookups when not.

Each test signs in a user of its own, gives it plays in the simulator and runs a sync
(ingestion worker → catalog's EnrichForUser step), then checks what catalog stored and which
Spotify calls were made (the observability call log and the simulator's request log).
"""

from __future__ import annotations

import math
import time
from typing import Any

from echostats.catalog.v1 import catalog_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2 as obs_pb


def steps(job: obs_pb.Job) -> dict[str, obs_pb.JobStep]:
    """The job's steps by action."""
    return {step.action: step for step in job.steps}


async def played_track_ids(harness: Any, sim_user: str) -> list[str]:
    """Distinct track ids of the simulator user's plays."""
    return sorted({p["track_id"] for p in await harness.sim.plays(sim_user)})


async def test_extended_app_enriches_with_batch_calls(harness: Any, clean_simulator: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 120, spacing_seconds=60)
    await clean_simulator.clear_requests()
    started = time.monotonic()

    job = await harness.sync(user_id)

    print("sync took", time.monotonic() - started, {s.action: s.detail for s in job.steps})
    assert job.status == obs_pb.JOB_STATUS_COMPLETED, job
    ids = await played_track_ids(harness, sim_user)
    enrich = steps(job)["audio_features"]
    assert enrich.status == obs_pb.STEP_STATUS_COMPLETED
    assert enrich.items == len(ids)
    batch = await clean_simulator.requests("/v1/tracks", user_id=sim_user)
    assert all(r["path"] == "/v1/tracks" for r in batch)
    assert len(batch) <= math.ceil(len(ids) / 50)
    # Batches of up to 100 (the top-items tracks add a second, background batch).
    features = await clean_simulator.requests("/v1/audio-features", user_id=sim_user)
    assert 1 <= len(features) <= 2
    assert all(r["path"] == "/v1/audio-features" for r in features)
    known = await harness.catalog.DescribeKnownTracks(pb.BatchGetRequest(spotify_ids=ids))
    assert len(known.tracks) == len(ids)
    assert all(t.enriched and t.has_audio_features for t in known.tracks)
    tracks = await harness.catalog.BatchGetTracks(pb.BatchGetRequest(spotify_ids=ids[:5]))
    track = tracks.tracks[0]
    assert track.HasField("popularity") and track.album.HasField("image_url")
    assert len(track.id) == 24
    artist_ids = sorted({a.spotify_id for t in tracks.tracks for a in t.artists})
    artists = await harness.catalog.BatchGetArtists(pb.BatchGetRequest(spotify_ids=artist_ids))
    assert len(artists.artists) == len(artist_ids)
    assert all(a.enriched and a.HasField("followers") for a in artists.artists)
    assert any(a.genres for a in artists.artists)
