"""Development-mode capabilities, rate-limit pauses and recommendations, against the simulator.

The catalog's RPCs are called directly (NoteTracksSeen + EnrichForUser, RecommendTracks);
the simulator's request log shows which Spotify endpoints were called and how often.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from catalog_service.enrichment_queue import PAUSED_KEY
from echostats.catalog.v1 import catalog_service_pb2 as pb

CLOSED_PREFIX = "catalog:spotify-closed:"


@pytest.fixture
async def forget_closures(harness: Any) -> Any:
    """Catalog's remembered closures and pause, cleared before and after the test."""

    async def forget() -> None:
        keys = [k async for k in harness.redis.scan_iter(match=CLOSED_PREFIX + "*")]
        await harness.redis.delete(*keys, PAUSED_KEY)

    await forget()
    yield
    await forget()


async def note(harness: Any, user_id: str, ids: list[str]) -> pb.NoteTracksSeenResponse:
    return await harness.catalog.NoteTracksSeen(
        pb.NoteTracksSeenRequest(user_id=user_id, tracks=[pb.SeenTrack(spotify_id=i) for i in ids])
    )


async def test_development_app_detects_each_closure_once(
    harness: Any, clean_simulator: Any, forget_closures: Any
) -> None:
    sample = (await clean_simulator.catalog_sample(1000))["tracks"]
    first, second = sample[900:920], sample[920:940]
    await clean_simulator.set_mode("development")
    user_id, sim_user = await harness.sign_in()
    await clean_simulator.clear_requests()

    noted = await note(harness, user_id, first)
    report = await harness.catalog.EnrichForUser(pb.EnrichForUserRequest(user_id=user_id))

    assert noted.new_tracks == 20 and noted.queued_for_enrichment == 20
    assert report.status == "completed" and report.items == 20
    assert "audio features are not available to this app" in report.detail
    requests = await clean_simulator.requests("/v1/", user_id=sim_user)
    paths = [r["path"] for r in requests]
    # One refused batch call per closed family, then single lookups.
    assert paths.count("/v1/tracks") == 1
    assert paths.count("/v1/audio-features") == 1
    assert sorted(p.rsplit("/", 1)[1] for p in paths if p.startswith("/v1/tracks/")) == sorted(
        first
    )
    known = await harness.catalog.BatchGetTracks(pb.BatchGetRequest(spotify_ids=first))
    assert all(t.enriched and not t.HasField("popularity") for t in known.tracks)
    assert not any(t.HasField("audio_features") for t in known.tracks)

    # Remembered: the next user's enrichment goes straight to single lookups.
    other, other_sim = await harness.sign_in()
    await note(harness, other, second)
    await harness.catalog.EnrichForUser(pb.EnrichForUserRequest(user_id=other))
    other_paths = [r["path"] for r in await clean_simulator.requests("/v1/", user_id=other_sim)]
    assert "/v1/tracks" not in other_paths and "/v1/audio-features" not in other_paths
    assert len([p for p in other_paths if p.startswith("/v1/tracks/")]) == 20


async def test_quota_exceeded_pauses_enrichment_and_the_drainer_resumes_it(
    harness: Any, clean_simulator: Any, forget_closures: Any
) -> None:
    ids = (await clean_simulator.catalog_sample(1000))["tracks"][800:860]
    user_id, sim_user = await harness.sign_in()
    await clean_simulator.fault(
        path_prefix="/v1/tracks",
        status=429,
        count=1,
        retry_after=2,
        reason="QUOTA_EXCEEDED",
        user_id=sim_user,
    )
    await note(harness, user_id, ids)

    report = await harness.catalog.EnrichForUser(pb.EnrichForUserRequest(user_id=user_id))

    assert report.items == 0
    assert "paused by Spotify's rate limit for 2 s; 60 tracks continue" in report.detail
    assert await harness.redis.exists(PAUSED_KEY)
    async with asyncio.timeout(30):
        while True:
            known = await harness.catalog.DescribeKnownTracks(pb.BatchGetRequest(spotify_ids=ids))
            if all(t.enriched and t.has_audio_features for t in known.tracks):
                break
            await asyncio.sleep(0.2)
    paths = [r["path"] for r in await clean_simulator.requests("/v1/tracks", user_id=sim_user)]
    # The refused call, then two batches of at most 50: nothing fetched twice.
    assert paths == ["/v1/tracks"] * 3


async def test_recommendations_come_from_spotify_when_open_else_from_the_catalog(
    harness: Any, clean_simulator: Any, forget_closures: Any
) -> None:
    ids = (await clean_simulator.catalog_sample(1000))["tracks"][700:760]
    user_id, _ = await harness.sign_in()
    await note(harness, user_id, ids)
    await harness.catalog.EnrichForUser(pb.EnrichForUserRequest(user_id=user_id))
    seed = (await harness.catalog.BatchGetTracks(pb.BatchGetRequest(spotify_ids=ids[:1]))).tracks[0]
    artist_id = seed.artists[0].spotify_id
    request = pb.RecommendTracksRequest(
        user_id=user_id,
        seed_artist_ids=[artist_id],
        target_features=pb.AudioFeatures(energy=0.9, valence=0.2),
        exclude_track_ids=[seed.spotify_id],
        limit=5,
    )

    spotify = await harness.catalog.RecommendTracks(request)

    assert spotify.source == "spotify"
    assert spotify.tracks and seed.spotify_id not in {t.spotify_id for t in spotify.tracks}

    await clean_simulator.set_mode("development")
    local = await harness.catalog.RecommendTracks(request)

    assert local.source == "catalog"
    assert local.tracks and seed.spotify_id not in {t.spotify_id for t in local.tracks}
    assert all(artist_id in {a.spotify_id for a in t.artists} for t in local.tracks)
    distances = [
        abs(t.audio_features.energy - 0.9) + abs(t.audio_features.valence - 0.2)
        for t in local.tracks
        if t.HasField("audio_features")
    ]
    assert distances == sorted(distances)
    # Closed now and remembered: the next request does not ask Spotify again.
    await clean_simulator.clear_requests()
    again = await harness.catalog.RecommendTracks(request)
    assert again.source == "catalog"
    assert not await clean_simulator.requests("/v1/recommendations")


async def test_unknown_and_malformed_ids(harness: Any, clean_simulator: Any) -> None:
    user_id, _ = await harness.sign_in()
    for rpc, request in (
        (harness.catalog.GetTrack, pb.GetTrackRequest(spotify_id="0" * 22, user_id=user_id)),
        (harness.catalog.GetTrack, pb.GetTrackRequest(spotify_id="x")),
        (harness.catalog.GetArtist, pb.GetArtistRequest(spotify_id="0" * 22, user_id=user_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rpc(request)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    genres = await harness.catalog.GetArtistGenres(pb.BatchGetRequest(spotify_ids=["0" * 22]))
    assert list(genres.genres_by_artist["0" * 22].genres) == []
