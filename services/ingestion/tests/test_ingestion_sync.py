"""The sync pipeline end to end inside ingestion: TriggerSync → worker → simulator → FerretDB.

Real servers throughout (conftest.py): the simulator's recently-played feed with cursor
paging and its ground truth (`GET /_sim/plays`), auth refreshing tokens, observability's
job ledger, Redis Streams queues. Each test signs in a Spotify user of its own.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import grpc
import pytest

from echostats.ingestion.v1 import ingestion_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from ingestion_service.identity import parse_spotify_time, play_id
from ingestion_service.queues import PLAYS_STORED_STREAM

RECENTLY_PLAYED = "/v1/me/player/recently-played"
CATALOG_STEPS = ["audio_features", "playlists", "top_items"]
# The last step: a real analytics service rolls up the fetched days and warms snapshots.
ANALYTICS_REFRESH = "analytics_refresh"
LATER_STEPS = [*CATALOG_STEPS, ANALYTICS_REFRESH]


@pytest.fixture(scope="module", autouse=True)
async def worker(harness: Any) -> Any:
    """One worker for the module, as in production: both lanes and the scheduler."""
    return await harness.start_worker()


def steps(job: obs_pb.Job) -> dict[str, obs_pb.JobStep]:
    """The job's steps by action."""
    return {step.action: step for step in job.steps}


def expected_ids(user_id: str, truth: list[dict[str, Any]]) -> set[str]:
    """The play ids the ground truth should be stored under."""
    return {
        play_id(user_id, play["track_id"], parse_spotify_time(play["played_at"])) for play in truth
    }


async def sync(harness: Any, user_id: str) -> obs_pb.Job:
    """Trigger a manual sync and wait for it to end."""
    return await harness.wait_for_job(await harness.trigger(user_id), user_id)


async def wait_for_requests(sim: Any, sim_user: str, count: int) -> None:
    """Wait until the simulator has served `count` recently-played requests for the user."""
    async with asyncio.timeout(30):
        while True:
            if len(await sim.requests(RECENTLY_PLAYED, user_id=sim_user)) >= count:
                return
            await asyncio.sleep(0.02)


async def test_first_sync_then_more_than_a_page_between_syncs(harness: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 10, spacing_seconds=60)

    first = await sync(harness, user_id)

    assert first.status == obs_pb.JOB_STATUS_COMPLETED
    assert first.items_processed == 10
    assert first.counters["new"] == 10 and first.counters["already_present"] == 0
    recent = steps(first)["recently_played"]
    assert recent.status == obs_pb.STEP_STATUS_COMPLETED
    assert recent.detail == "Fetched 10 recent tracks, 10 new"
    assert recent.items == 10
    assert [s.action for s in first.steps] == ["recently_played", *LATER_STEPS]
    # The catalog steps did their work (their own tests check the details).
    for action in CATALOG_STEPS:
        assert steps(first)[action].status == obs_pb.STEP_STATUS_COMPLETED
    # New to the catalog: at most the distinct tracks of the 10 plays (the simulator may
    # play a track twice, and another user of this module may have brought it already).
    distinct = len({play["track_id"] for play in await harness.sim.plays(sim_user)})
    noted = re.match(r"(\d+) new tracks? noted", steps(first)["audio_features"].detail)
    assert noted is not None and 1 <= int(noted.group(1)) <= distinct
    # Users added through /_sim/users start with no playlists.
    assert steps(first)["playlists"].detail == "Synced 0 playlists: 0 added, 0 changed, 0 removed"
    analytics = steps(first)[ANALYTICS_REFRESH]
    assert analytics.status == obs_pb.STEP_STATUS_COMPLETED
    assert analytics.items == 10
    assert analytics.detail.startswith("Rolled up 10 plays of the synced days")
    assert not first.HasField("error_message")

    # 137 plays between two syncs: three pages forward from the cursor, none lost.
    await harness.sim.add_plays(sim_user, 137)
    second = await sync(harness, user_id)

    truth = await harness.sim.plays(sim_user)
    stored = await harness.stored_plays(user_id)
    assert second.status == obs_pb.JOB_STATUS_COMPLETED
    assert second.items_processed == 137
    assert steps(second)["recently_played"].detail == "Fetched 137 recent tracks, 137 new"
    assert len(truth) == 147
    assert {doc["_id"] for doc in stored} == expected_ids(user_id, truth)
    # The second sync paged forward with `after` (50 + 50 + 37), never from scratch.
    requests = await harness.sim.requests(RECENTLY_PLAYED, user_id=sim_user)
    forward = [r for r in requests if "after=" in (r.get("query") or "")]
    assert len(forward) == 3
    assert all(r["status"] == 200 for r in requests)


async def test_overlapping_syncs_store_no_duplicates(harness: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 30)
    await sync(harness, user_id)
    # Forget the cursor: the next sync walks back over everything already stored.
    await harness.database["sync_state"].delete_one({"_id": user_id})
    await harness.sim.add_plays(sim_user, 5)

    again = await sync(harness, user_id)
    listed = await harness.ingestion.ListPlays(pb.ListPlaysRequest(user_id=user_id, page_size=100))

    assert again.status == obs_pb.JOB_STATUS_COMPLETED
    assert again.counters["fetched"] == 35
    assert again.counters["new"] == 5 and again.counters["already_present"] == 30
    assert steps(again)["recently_played"].detail == "Fetched 35 recent tracks, 5 new"
    assert listed.total == 35 == len({play.id for play in listed.plays})
    ended = [play.played_at.ToDatetime() for play in listed.plays]
    assert ended == sorted(ended, reverse=True)


async def test_sync_of_50_new_plays_end_to_end(harness: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 1)
    await sync(harness, user_id)
    await harness.sim.add_plays(sim_user, 50)

    began = time.perf_counter()
    job = await sync(harness, user_id)
    elapsed = time.perf_counter() - began

    print(f"\nsync of 50 new plays, trigger -> completed: {elapsed * 1000:.0f} ms")
    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    assert job.items_processed == 50
    assert len(await harness.stored_plays(user_id)) == 51


async def test_new_plays_are_announced_on_the_plays_stored_stream(harness: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    added = await harness.sim.add_plays(sim_user, 12, spacing_seconds=120)
    last_id = (
        (await harness.redis.xinfo_stream(PLAYS_STORED_STREAM))["last-generated-id"]
        if (await harness.redis.exists(PLAYS_STORED_STREAM))
        else "0-0"
    )

    job_id = await harness.trigger(user_id)
    await harness.wait_for_job(job_id, user_id)
    await sync(harness, user_id)  # nothing new: no second event

    events = [
        fields
        for _, fields in await harness.redis.xrange(PLAYS_STORED_STREAM, min=f"({last_id}")
        if fields["user_id"] == user_id
    ]
    assert len(events) == 1
    event = events[0]
    assert event["count"] == "12" and event["job_id"] == job_id and event["source"] == "api"
    assert parse_spotify_time(event["first_played_at"]) == parse_spotify_time(added[0]["played_at"])
    assert parse_spotify_time(event["last_played_at"]) == parse_spotify_time(added[-1]["played_at"])


async def test_a_short_retry_after_is_waited_out(harness: Any, clean_simulator: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 20)
    await clean_simulator.fault(
        path_prefix=RECENTLY_PLAYED, status=429, count=1, retry_after=1, user_id=sim_user
    )

    job = await sync(harness, user_id)

    requests = await harness.sim.requests(RECENTLY_PLAYED, user_id=sim_user)
    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    assert job.items_processed == 20
    assert [r["status"] for r in requests] == [429, 200]


async def test_an_expired_token_mid_sync_is_refreshed_once(
    harness: Any, clean_simulator: Any
) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 5)
    await sync(harness, user_id)
    await harness.sim.add_plays(sim_user, 120)
    await clean_simulator.latency(RECENTLY_PLAYED, 300)
    served_before = len(await harness.sim.requests(RECENTLY_PLAYED, user_id=sim_user))
    refreshes_before = await harness.sim.token_requests()

    job_id = await harness.trigger(user_id)
    await wait_for_requests(harness.sim, sim_user, served_before + 1)
    assert await clean_simulator.expire_tokens(sim_user) >= 1
    job = await harness.wait_for_job(job_id, user_id)

    statuses = [
        r["status"] for r in (await harness.sim.requests(RECENTLY_PLAYED, user_id=sim_user))
    ][served_before:]
    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    assert job.items_processed == 120
    assert statuses.count(401) == 1 and statuses[-1] == 200
    assert await harness.sim.token_requests() == refreshes_before + 1
    truth = await harness.sim.plays(sim_user)
    assert {d["_id"] for d in await harness.stored_plays(user_id)} == expected_ids(user_id, truth)


async def test_persistent_5xx_fails_the_step_and_keeps_the_rest(
    harness: Any, clean_simulator: Any
) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 8)
    await clean_simulator.fault(
        path_prefix=RECENTLY_PLAYED, status=503, count=None, user_id=sim_user
    )

    failed = await sync(harness, user_id)

    assert failed.status == obs_pb.JOB_STATUS_FAILED
    assert failed.error_message == "recently_played: Spotify API error (503)"
    recent = steps(failed)["recently_played"]
    assert recent.status == obs_pb.STEP_STATUS_FAILED
    assert recent.error == "Spotify API error (503)"
    assert recent.detail == "Could not fetch recently played tracks"
    # Later steps still ran and were recorded.
    assert [s.action for s in failed.steps] == ["recently_played", *LATER_STEPS]
    assert all(steps(failed)[a].status == obs_pb.STEP_STATUS_COMPLETED for a in CATALOG_STEPS)
    assert steps(failed)[ANALYTICS_REFRESH].status == obs_pb.STEP_STATUS_COMPLETED
    assert steps(failed)[ANALYTICS_REFRESH].detail.startswith("No plays fetched")
    assert failed.items_processed == 0

    # The failure blocks nothing: once Spotify recovers the next sync gets everything.
    await clean_simulator.clear_faults()
    recovered = await sync(harness, user_id)
    assert recovered.status == obs_pb.JOB_STATUS_COMPLETED
    assert recovered.items_processed == 8


async def test_a_step_failing_midway_keeps_the_pages_already_stored(
    harness: Any, clean_simulator: Any
) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 1)
    await sync(harness, user_id)
    await harness.sim.add_plays(sim_user, 120)
    await clean_simulator.latency(RECENTLY_PLAYED, 300)
    served_before = len(await harness.sim.requests(RECENTLY_PLAYED, user_id=sim_user))

    job_id = await harness.trigger(user_id)
    await wait_for_requests(harness.sim, sim_user, served_before + 1)
    await clean_simulator.fault(
        path_prefix=RECENTLY_PLAYED, status=500, count=None, user_id=sim_user
    )
    failed = await harness.wait_for_job(job_id, user_id)

    recent = steps(failed)["recently_played"]
    assert failed.status == obs_pb.JOB_STATUS_FAILED
    assert failed.error_message == "recently_played: Spotify API error (500)"
    assert recent.detail == "Fetched 50 recent tracks, 50 new, before the error"
    assert recent.items == 50 == failed.items_processed
    assert len(await harness.stored_plays(user_id)) == 51

    # The cursor moved past the stored page only: the next sync fetches just the rest.
    await clean_simulator.clear_faults()
    await clean_simulator.latency(RECENTLY_PLAYED, 0)
    rest = await sync(harness, user_id)
    assert rest.status == obs_pb.JOB_STATUS_COMPLETED
    assert rest.counters["new"] == 70 and rest.counters["already_present"] == 0
    truth = await harness.sim.plays(sim_user)
    assert {d["_id"] for d in await harness.stored_plays(user_id)} == expected_ids(user_id, truth)


async def test_concurrent_triggers_start_one_sync(harness: Any, clean_simulator: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 3)
    await clean_simulator.latency(RECENTLY_PLAYED, 300)

    answers = await asyncio.gather(
        *(
            harness.ingestion.TriggerSync(
                pb.TriggerSyncRequest(user_id=user_id, job_type=obs_pb.JOB_TYPE_MANUAL)
            )
            for _ in range(5)
        )
    )

    started = [a for a in answers if a.started]
    assert len(started) == 1
    assert {a.job_id for a in answers} == {started[0].job_id}
    job = await harness.wait_for_job(started[0].job_id, user_id)
    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    # Once it has ended, the next trigger starts a new sync.
    assert (await harness.trigger(user_id)) != started[0].job_id


async def test_list_plays_is_user_scoped_and_validated(harness: Any) -> None:
    alice, alice_sim = await harness.sign_in()
    bob, _ = await harness.sign_in()
    await harness.sim.add_plays(alice_sim, 4)
    await sync(harness, alice)

    mine = await harness.ingestion.ListPlays(pb.ListPlaysRequest(user_id=alice, page_size=2))
    theirs = await harness.ingestion.ListPlays(pb.ListPlaysRequest(user_id=bob))

    assert mine.total == 4 and len(mine.plays) == 2
    play = mine.plays[0]
    assert play.user_id == alice and play.source == "api"
    assert play.track.spotify_id and play.track.name and play.track.artist_name
    assert play.track.duration_ms == play.ms_played > 0
    assert play.track.HasField("album_image_url") and play.track.HasField("album_id")
    assert theirs.total == 0
    for bad in (
        pb.ListPlaysRequest(user_id=alice, page_size=101),
        pb.ListPlaysRequest(user_id=alice, page=-1),
        pb.ListPlaysRequest(user_id=""),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await harness.ingestion.ListPlays(bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_trigger_sync_refuses_non_sync_job_types(harness: Any) -> None:
    user_id, _ = await harness.sign_in()
    for job_type in (obs_pb.JOB_TYPE_IMPORT, obs_pb.JOB_TYPE_ROLLUP_BUILD):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await harness.ingestion.TriggerSync(
                pb.TriggerSyncRequest(user_id=user_id, job_type=job_type)
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_every_spotify_call_of_a_sync_reaches_the_api_call_log(harness: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 60)

    await sync(harness, user_id)

    served = await harness.sim.requests(RECENTLY_PLAYED, user_id=sim_user)
    request = obs_pb.ListApiCallsRequest(
        user_id=user_id, page_size=100, endpoint_contains="recently-played"
    )
    async with asyncio.timeout(15):
        while True:
            calls = (await harness.observability.ListApiCalls(request)).calls
            if len(calls) >= len(served):
                break
            await asyncio.sleep(0.1)
    assert len(calls) == len(served) == 2
    assert {call.caller for call in calls} == {"ingestion"}
    assert {(call.method, call.endpoint, call.status_code) for call in calls} == {
        ("GET", RECENTLY_PLAYED, 200)
    }
    # One sync, one request id: the trigger's, carried through the queue to the worker.
    assert len({call.request_id for call in calls}) == 1 and calls[0].request_id
