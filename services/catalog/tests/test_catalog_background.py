"""The background path: a sync whose enrichment step may spend nothing leaves all the work to
catalog's drainer, and the plays-stored events reach catalog's own consumer group."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from catalog_service.plays_consumer import PLAYS_STORED_STREAM
from echostats.catalog.v1 import catalog_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2 as obs_pb


@pytest.fixture(scope="module")
def catalog_overrides() -> dict[str, Any]:
    """The sync step notes tracks but makes no Spotify call itself."""
    return {"enrich_step_max_calls": 0}


async def test_tracks_noted_by_a_sync_are_enriched_in_the_background(harness: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 40, spacing_seconds=60)
    ids = sorted({p["track_id"] for p in await harness.sim.plays(sim_user)})

    job = await harness.sync(user_id)

    step = {s.action: s for s in job.steps}["audio_features"]
    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    assert step.items == 0
    assert step.detail.startswith(f"{len(ids)} new tracks noted")
    assert f"{len(ids)} tracks continue in the background" in step.detail
    await wait_until_complete(harness, ids)
    # The plays-stored event of this sync was read and acknowledged by catalog's group.
    async with asyncio.timeout(30):
        while True:
            groups = {g["name"]: g for g in await harness.redis.xinfo_groups(PLAYS_STORED_STREAM)}
            group = groups.get("catalog")
            if group and group["pending"] == 0 and group["last-delivered-id"] != "0-0":
                break
            await asyncio.sleep(0.2)


async def test_a_listener_of_enriched_tracks_queues_what_they_still_lack(harness: Any) -> None:
    # The first listener's tracks get enriched; then their audio features and one artist
    # are lost, as when that listener's remaining queue is on hold (a revoked sign-in).
    first, first_sim = await harness.sign_in()
    await harness.sim.add_plays(first_sim, 12, spacing_seconds=60)
    ids = sorted({p["track_id"] for p in await harness.sim.plays(first_sim)})
    await harness.sync(first)
    await wait_until_complete(harness, ids)
    artist_id = (await harness.database["tracks"].find_one({"_id": ids[0]}))["artists"][0][
        "spotify_id"
    ]
    await harness.database["audio_features"].delete_many({"_id": {"$in": ids}})
    await harness.database["artists"].delete_one({"_id": artist_id})

    second, _ = await harness.sign_in()
    noted = await harness.catalog.NoteTracksSeen(
        pb.NoteTracksSeenRequest(user_id=second, tracks=[pb.SeenTrack(spotify_id=i) for i in ids])
    )

    assert noted.new_tracks == 0
    # Every track's features and at least the lost artist.
    assert noted.queued_for_enrichment >= len(ids) + 1
    await wait_until_complete(harness, ids)
    artists = await harness.catalog.BatchGetArtists(pb.BatchGetRequest(spotify_ids=[artist_id]))
    assert [a.enriched for a in artists.artists] == [True]


async def wait_until_complete(harness: Any, ids: list[str]) -> None:
    """Wait until every track is enriched and has its audio features."""
    async with asyncio.timeout(60):
        while True:
            known = await harness.catalog.DescribeKnownTracks(pb.BatchGetRequest(spotify_ids=ids))
            if len(known.tracks) == len(ids) and all(
                t.enriched and t.has_audio_features for t in known.tracks
            ):
                return
            await asyncio.sleep(0.2)
