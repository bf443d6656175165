"""Live sync end to end: gateway → ingestion worker → simulator, the job ledger, the history."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.integration.support import sign_in

pytestmark = pytest.mark.integration

RECENTLY_PLAYED = "/v1/me/player/recently-played"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_spotify_user(simulator: httpx.AsyncClient) -> str:
    """A fresh simulated Spotify account (its own play log and tokens)."""
    user_id = f"sim_{uuid.uuid4().hex[:10]}"
    response = await simulator.post(
        "/_sim/users", json={"id": user_id, "display_name": f"User {user_id}", "product": "premium"}
    )
    assert response.status_code in (200, 201), response.text
    return user_id


async def wait_for_job(
    client: httpx.AsyncClient, token: str, job_id: str, timeout: float = 60.0
) -> dict:
    """Poll the ledger until the job has ended; returns it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get("/api/v1/sync-jobs?limit=100", headers=bearer(token))
        assert response.status_code == 200, response.text
        jobs = {job["id"]: job for job in response.json()["items"]}
        job = jobs.get(job_id)
        if job and job["status"] in ("completed", "failed"):
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} did not finish: {job}")
        await asyncio.sleep(0.3)


async def wait_for_idle(client: httpx.AsyncClient, token: str, timeout: float = 60.0) -> None:
    """Wait until the user has no pending or running job (e.g. the initial sync)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        listing = (await client.get("/api/v1/sync-jobs?limit=100", headers=bearer(token))).json()
        if all(job["status"] in ("completed", "failed") for job in listing["items"]):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"jobs still running: {listing}")
        await asyncio.sleep(0.3)


async def trigger_and_wait(client: httpx.AsyncClient, token: str) -> dict:
    """Trigger a manual sync and wait for it (after any sync the scheduler started)."""
    for _ in range(3):
        response = await client.post("/api/v1/sync-jobs/trigger", headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] == "started":
            assert body["message"] == "Sync job started"
            return await wait_for_job(client, token, body["job_id"])
        await wait_for_job(client, token, body["job_id"])
    raise AssertionError(f"a manual sync never started: {body}")


async def all_history(client: httpx.AsyncClient, token: str) -> list[dict]:
    items: list[dict] = []
    page = 1
    while True:
        response = await client.get(
            "/api/v1/history", params={"page": page, "limit": 100}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        if page >= body["pages"]:
            return items
        page += 1


async def ground_truth(simulator: httpx.AsyncClient, user_id: str) -> list[dict]:
    response = await simulator.get("/_sim/plays", params={"user_id": user_id})
    assert response.status_code == 200
    return response.json()["plays"]


def play_keys(plays: list[dict], *, track_key: str) -> list[tuple[str, str]]:
    """(track id, played_at to the second) for comparing stored plays with the simulator's."""
    keys = []
    for play in plays:
        track = play["track"]["spotify_id"] if track_key == "history" else play["track_id"]
        keys.append((track, play["played_at"][:19]))
    return keys


@pytest.fixture
async def synced_user(client, simulator, simulator_url):
    """A signed-in user whose initial sync has finished: (spotify id, session token)."""
    spotify_id = await new_spotify_user(simulator)
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 20})
    token = await sign_in(client, simulator_url, sim_user=spotify_id)
    await wait_for_idle(client, token)
    return spotify_id, token


async def test_initial_sync_runs_after_sign_in(client, simulator, synced_user):
    spotify_id, token = synced_user
    jobs = (await client.get("/api/v1/sync-jobs", headers=bearer(token))).json()
    initial = [job for job in jobs["items"] if job["job_type"] == "initial"]
    assert len(initial) == 1
    assert initial[0]["status"] == "completed", (initial[0]["error_message"], initial[0]["steps"])
    actions = [step["action"] for step in initial[0]["steps"]]
    assert actions == [
        "recently_played",
        "audio_features",
        "playlists",
        "top_items",
        "analytics_refresh",
    ]
    truth = await ground_truth(simulator, spotify_id)
    history = await all_history(client, token)
    assert sorted(play_keys(history, track_key="history")) == sorted(
        play_keys(truth, track_key="sim")
    )


async def test_more_than_50_new_plays_are_all_stored_and_resyncs_add_nothing(
    client, simulator, synced_user
):
    spotify_id, token = synced_user
    added = await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 137})
    assert added.status_code in (200, 201)
    job = await trigger_and_wait(client, token)
    assert job["status"] == "completed", job
    assert job["items_processed"] == 137
    recent = job["steps"][0]
    assert recent["action"] == "recently_played" and recent["status"] == "completed"
    assert recent["items"] == 137

    truth = await ground_truth(simulator, spotify_id)
    history = await all_history(client, token)
    keys = play_keys(history, track_key="history")
    assert len(keys) == len(set(keys)), "duplicates stored"
    assert sorted(keys) == sorted(play_keys(truth, track_key="sim"))

    again = await trigger_and_wait(client, token)
    assert again["status"] == "completed"
    assert again["items_processed"] == 0
    assert len(await all_history(client, token)) == len(truth)


async def test_429_with_retry_after_mid_sync_is_honoured(client, simulator, synced_user):
    spotify_id, token = synced_user
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 60})
    await simulator.post(
        "/_sim/faults",
        json={
            "path_prefix": RECENTLY_PLAYED,
            "status": 429,
            "count": 1,
            "retry_after": 1,
            "user_id": spotify_id,
        },
    )
    job = await trigger_and_wait(client, token)
    assert job["status"] == "completed", job
    assert job["items_processed"] == 60
    logs = await client.get(
        "/api/v1/api-logs",
        params={"status_min": 429, "status_max": 429, "endpoint_contains": "recently-played"},
        headers=bearer(token),
    )
    for _ in range(30):
        if logs.json()["total"] >= 1:
            break
        await asyncio.sleep(0.3)
        logs = await client.get(
            "/api/v1/api-logs",
            params={"status_min": 429, "status_max": 429},
            headers=bearer(token),
        )
    assert logs.json()["total"] == 1
    assert logs.json()["items"][0]["status_code"] == 429


async def test_expired_token_mid_sync_is_refreshed_once(client, simulator, synced_user):
    spotify_id, token = synced_user
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 5})
    await simulator.post("/_sim/tokens/expire", json={"user_id": spotify_id})
    await simulator.delete("/_sim/requests")
    job = await trigger_and_wait(client, token)
    assert job["status"] == "completed", job
    assert job["items_processed"] == 5
    refreshes = (await simulator.get("/_sim/requests", params={"path_prefix": "/api/token"})).json()
    assert refreshes["count"] == 1


async def test_failing_step_is_recorded_and_others_still_run(client, simulator, synced_user):
    spotify_id, token = synced_user
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 3})
    await simulator.post(
        "/_sim/faults",
        json={"path_prefix": RECENTLY_PLAYED, "status": 503, "count": None, "user_id": spotify_id},
    )
    try:
        job = await trigger_and_wait(client, token)
    finally:
        await simulator.delete("/_sim/faults")
    assert job["status"] == "failed"
    assert "recently_played" in job["error_message"]
    steps = {step["action"]: step for step in job["steps"]}
    assert steps["recently_played"]["status"] == "failed"
    assert steps["recently_played"]["error"]
    assert len(steps) == 5
    assert all(steps[a]["status"] != "running" for a in steps)
    # Nothing stored before is lost, and the next sync picks the plays up.
    recovered = await trigger_and_wait(client, token)
    assert recovered["status"] == "completed"
    assert recovered["items_processed"] == 3


async def test_concurrent_triggers_start_one_job(client, synced_user):
    _, token = synced_user
    # The periodic scheduler may start a sync for this user at any moment (then both
    # triggers rightly answer already_running); try again once the user is idle.
    for _ in range(3):
        await wait_for_idle(client, token)
        first, second = await asyncio.gather(
            client.post("/api/v1/sync-jobs/trigger", headers=bearer(token)),
            client.post("/api/v1/sync-jobs/trigger", headers=bearer(token)),
        )
        bodies = sorted([first.json(), second.json()], key=lambda body: body["status"])
        if any(body["status"] == "started" for body in bodies):
            break
    assert [body["status"] for body in bodies] == ["already_running", "started"]
    assert bodies[0]["job_id"] == bodies[1]["job_id"]
    await wait_for_job(client, token, bodies[1]["job_id"])


async def test_every_spotify_call_is_logged_and_stats_add_up(client, simulator, synced_user):
    spotify_id, token = synced_user
    await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 75})
    await trigger_and_wait(client, token)
    sim_calls = (
        await simulator.get(
            "/_sim/requests", params={"path_prefix": RECENTLY_PLAYED, "user_id": spotify_id}
        )
    ).json()["count"]
    assert sim_calls >= 2  # 75 new plays need two pages of 50
    logged = 0
    for _ in range(30):
        response = await client.get(
            "/api/v1/api-logs",
            params={"endpoint_contains": "RECENTLY-played", "method": "get", "limit": 200},
            headers=bearer(token),
        )
        logged = response.json()["total"]
        if logged >= sim_calls:
            break
        await asyncio.sleep(0.3)
    assert logged == sim_calls
    items = response.json()["items"]
    assert all(item["endpoint"] == RECENTLY_PLAYED for item in items)
    assert all(item["service"] == "spotify" for item in items)
    assert items == sorted(items, key=lambda item: item["timestamp"], reverse=True)

    # The catalog may still be enriching in the background (more calls logged): compare
    # the stats with listings taken just before and after them, once those agree.
    for _ in range(30):
        before = await client.get("/api/v1/api-logs", params={"limit": 200}, headers=bearer(token))
        stats = (await client.get("/api/v1/api-logs/stats", headers=bearer(token))).json()
        everything = (
            await client.get("/api/v1/api-logs", params={"limit": 200}, headers=bearer(token))
        ).json()
        if before.json()["total"] == everything["total"]:
            break
        await asyncio.sleep(0.5)
    assert stats["total_calls"] == everything["total"]
    assert sum(stats["status_distribution"].values()) == stats["total_calls"]
    assert stats["error_count"] == sum(
        1 for item in everything["items"] if item["status_code"] >= 400 or item["status_code"] == 0
    )
    top = {entry["endpoint"]: entry["count"] for entry in stats["top_endpoints"]}
    assert top[f"GET {RECENTLY_PLAYED}"] >= sim_calls

    job_stats = (await client.get("/api/v1/sync-jobs/stats", headers=bearer(token))).json()
    jobs = (await client.get("/api/v1/sync-jobs?limit=100", headers=bearer(token))).json()
    assert job_stats["total_jobs"] == jobs["total"]
    assert job_stats["completed"] == sum(1 for j in jobs["items"] if j["status"] == "completed")
    assert job_stats["failed"] == sum(1 for j in jobs["items"] if j["status"] == "failed")
    assert job_stats["total_items_synced"] == sum(
        j["items_processed"] for j in jobs["items"] if j["status"] == "completed"
    )
    assert job_stats["last_sync_at"].endswith("Z")


async def test_users_never_see_each_other(client, simulator, simulator_url, synced_user):
    _, token_a = synced_user
    spotify_b = await new_spotify_user(simulator)
    token_b = await sign_in(client, simulator_url, sim_user=spotify_b)
    await wait_for_idle(client, token_b)
    history_a = await all_history(client, token_a)
    history_b = await all_history(client, token_b)
    assert history_a
    ids_a = {item["id"] for item in history_a}
    assert not ids_a & {item["id"] for item in history_b}
    assert (
        {item["user_id"] for item in history_b} <= {history_b[0]["user_id"]} if history_b else True
    )
    jobs_a = {
        job["id"]
        for job in (await client.get("/api/v1/sync-jobs", headers=bearer(token_a))).json()["items"]
    }
    jobs_b = {
        job["id"]
        for job in (await client.get("/api/v1/sync-jobs", headers=bearer(token_b))).json()["items"]
    }
    assert jobs_a and jobs_b and not jobs_a & jobs_b
    logs_a = {
        c["id"]
        for c in (await client.get("/api/v1/api-logs?limit=200", headers=bearer(token_a))).json()[
            "items"
        ]
    }
    logs_b = {
        c["id"]
        for c in (await client.get("/api/v1/api-logs?limit=200", headers=bearer(token_b))).json()[
            "items"
        ]
    }
    assert logs_a and not logs_a & logs_b


async def test_history_filters_paging_and_validation(client, synced_user):
    _, token = synced_user
    history = await all_history(client, token)
    assert history == sorted(history, key=lambda item: item["played_at"], reverse=True)
    sample = history[len(history) // 2]
    artist_part = sample["track"]["artist_name"][1:5].upper()
    by_artist = await client.get(
        "/api/v1/history", params={"artist": artist_part, "limit": 100}, headers=bearer(token)
    )
    assert by_artist.status_code == 200
    assert by_artist.json()["total"] >= 1
    assert all(
        artist_part.lower() in item["track"]["artist_name"].lower()
        for item in by_artist.json()["items"]
    )
    by_track = await client.get(
        "/api/v1/history", params={"track": sample["track"]["name"]}, headers=bearer(token)
    )
    assert sample["id"] in {item["id"] for item in by_track.json()["items"]}
    window = await client.get(
        "/api/v1/history",
        params={"start_date": sample["played_at"], "end_date": sample["played_at"]},
        headers=bearer(token),
    )
    assert [item["id"] for item in window.json()["items"]] == [sample["id"]]
    page = await client.get(
        "/api/v1/history", params={"limit": 7, "page": 2}, headers=bearer(token)
    )
    body = page.json()
    assert body["page"] == 2 and body["limit"] == 7
    assert body["pages"] == -(-body["total"] // 7)
    assert [item["id"] for item in body["items"]] == [item["id"] for item in history[7:14]]
    item = body["items"][0]
    assert set(item) == {
        "id",
        "user_id",
        "track",
        "played_at",
        "ms_played",
        "source",
        "context_type",
        "context_uri",
    }
    assert set(item["track"]) == {
        "spotify_id",
        "name",
        "artist_name",
        "album_name",
        "album_image_url",
        "duration_ms",
    }
    assert item["source"] == "api"
    assert item["played_at"].endswith("Z")

    bad_date = await client.get(
        "/api/v1/history", params={"start_date": "yesterday"}, headers=bearer(token)
    )
    assert bad_date.status_code == 422
    assert bad_date.json()["detail"][0]["loc"] == ["query", "start_date"]
    too_many = await client.get("/api/v1/history", params={"limit": 101}, headers=bearer(token))
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["query", "limit"]
    bad_status = await client.get(
        "/api/v1/sync-jobs", params={"status": "exploded"}, headers=bearer(token)
    )
    assert bad_status.status_code == 422
    bad_type = await client.get(
        "/api/v1/sync-jobs", params={"job_type": "weekly"}, headers=bearer(token)
    )
    assert bad_type.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/history",
        "/api/v1/sync-jobs",
        "/api/v1/sync-jobs/stats",
        "/api/v1/api-logs",
        "/api/v1/api-logs/stats",
    ],
)
async def test_user_routes_need_a_session(client, path):
    response = await client.get(path)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
