"""Catalog end to end through the gateway: sync, enrichment, lookups and playlists.

Each test uses Spotify users of its own (`/_sim/users`). Call counts come from the user's
own API log (`/api/v1/api-logs`), so other tests' calls never mix in. Tests that switch the
simulator to a development-mode app forget catalog's remembered closures afterwards (the
`closures` fixture), so later tests see an extended-quota app again.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from echostats_devstack import LocalStack
from tests.integration.conftest import ClientFactory
from tests.integration.support import sign_in

pytestmark = pytest.mark.integration

CLOSED_PREFIX = "catalog:spotify-closed:"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_spotify_user(simulator: httpx.AsyncClient, plays: int = 0) -> str:
    """A fresh simulated Spotify account with `plays` plays a minute apart."""
    user_id = f"cat_{uuid.uuid4().hex[:10]}"
    response = await simulator.post("/_sim/users", json={"id": user_id, "product": "premium"})
    assert response.status_code == 201, response.text
    if plays:
        response = await simulator.post(
            "/_sim/plays", json={"user_id": user_id, "count": plays, "spacing_seconds": 60}
        )
        assert response.status_code == 201, response.text
    return user_id


async def played_track_ids(simulator: httpx.AsyncClient, user_id: str) -> list[str]:
    response = await simulator.get("/_sim/plays", params={"user_id": user_id})
    return sorted({play["track_id"] for play in response.json()["plays"]})


async def jobs_of(client: ClientFactory, token: str) -> list[dict]:
    response = await client().get("/api/v1/sync-jobs?limit=100", headers=bearer(token))
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def wait_for_idle(client: ClientFactory, token: str, timeout: float = 90.0) -> list[dict]:
    """Wait until the user's jobs (e.g. the initial sync) have ended; returns them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        jobs = await jobs_of(client, token)
        if jobs and all(job["status"] in ("completed", "failed") for job in jobs):
            return jobs
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"jobs still running: {jobs}")
        await asyncio.sleep(0.5)


async def sync_now(client: ClientFactory, token: str) -> dict:
    """Trigger a manual sync (after anything running) and return the finished job."""
    await wait_for_idle(client, token)
    response = await client().post("/api/v1/sync-jobs/trigger", headers=bearer(token))
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        job = next(j for j in await jobs_of(client, token) if j["id"] == job_id)
        if job["status"] in ("completed", "failed"):
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.5)


def step(job: dict, action: str) -> dict:
    return next(s for s in job["steps"] if s["action"] == action)


async def api_calls(client: ClientFactory, token: str, contains: str) -> list[dict]:
    """Every recorded Spotify call of the user whose endpoint contains `contains`."""
    items: list[dict] = []
    page = 1
    while True:
        response = await client().get(
            "/api/v1/api-logs",
            params={"endpoint_contains": contains, "limit": 200, "page": page},
            headers=bearer(token),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        if page >= body["pages"]:
            return items
        page += 1


async def wait_for_calls(
    client: ClientFactory, token: str, contains: str, at_least: int
) -> list[dict]:
    """Call records reach the log in batches: wait until `at_least` are there."""
    for _ in range(100):
        calls = await api_calls(client, token, contains)
        if len(calls) >= at_least:
            return calls
        await asyncio.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} calls to {contains}: {calls}")


async def wait_until_enriched(
    client: ClientFactory, track_ids: list[str], timeout: float = 90.0, *, features: bool = False
) -> list[dict]:
    """Poll the (anonymous, store-only) track endpoint until every track is enriched.

    `features`: also wait for the audio features (a queue of their own, often a round later).
    """
    deadline = asyncio.get_running_loop().time() + timeout
    pending = set(track_ids)
    found: dict[str, dict] = {}
    while pending:
        # A fresh client (its own rate-limit bucket) per round: one request per track.
        polling = client()
        for track_id in sorted(pending):
            response = await polling.get(f"/api/v1/tracks/{track_id}")
            album = response.json().get("album") if response.status_code == 200 else None
            # Placeholders from plays have no album image; enriched tracks do.
            if album and album["image_url"]:
                if features and response.json()["audio_features"] is None:
                    continue
                found[track_id] = response.json()
                pending.discard(track_id)
        if pending:
            assert asyncio.get_running_loop().time() < deadline, f"not enriched: {pending}"
            await asyncio.sleep(1.0)
    return [found[i] for i in track_ids]


@pytest.fixture
async def closures(stack: LocalStack) -> AsyncIterator[Redis]:
    """Catalog's remembered endpoint closures, forgotten before and after the test."""
    redis = Redis.from_url(stack.redis_url, decode_responses=True)

    async def forget() -> None:
        keys = [key async for key in redis.scan_iter(match=CLOSED_PREFIX + "*")]
        if keys:
            await redis.delete(*keys)

    await forget()
    try:
        yield redis
    finally:
        await forget()
        await redis.aclose()


async def test_extended_app_sync_enriches_with_batch_calls(make_client, simulator, simulator_url):
    client = make_client()
    spotify_id = await new_spotify_user(simulator, plays=120)
    track_ids = await played_track_ids(simulator, spotify_id)
    token = await sign_in(client, simulator_url, sim_user=spotify_id)

    jobs = await wait_for_idle(make_client, token)

    initial = next(job for job in jobs if job["job_type"] == "initial")
    assert initial["status"] == "completed", initial
    enrich = step(initial, "audio_features")
    assert enrich["status"] == "completed"
    # Tracks an earlier test of the session enriched already are not fetched again.
    assert 0 < enrich["items"] <= len(track_ids)
    tracks = await wait_until_enriched(make_client, track_ids, features=True)
    assert all(t["audio_features"] is not None for t in tracks)
    assert all(t["popularity"] is not None for t in tracks)
    track_calls = await wait_for_calls(make_client, token, "/v1/tracks", 1)
    # Batch calls only: at most one per 50 tracks, never one per track.
    assert all(call["endpoint"] == "/v1/tracks" for call in track_calls)
    assert len(track_calls) <= math.ceil(len(track_ids) / 50)
    feature_calls = await wait_for_calls(make_client, token, "/v1/audio-features", 1)
    assert all(call["endpoint"] == "/v1/audio-features" for call in feature_calls)
    artist_calls = await api_calls(make_client, token, "/v1/artists")
    assert artist_calls and all(call["endpoint"] == "/v1/artists" for call in artist_calls)

    track = (await client.get(f"/api/v1/tracks/{track_ids[0]}")).json()
    assert set(track) == {
        "id", "spotify_id", "name", "artists", "album", "duration_ms", "popularity",
        "explicit", "external_url", "audio_features",
    }  # fmt: skip
    assert len(track["id"]) == 24 and track["spotify_id"] == track_ids[0]
    assert set(track["album"]) == {"spotify_id", "name", "image_url", "release_date"}
    assert set(track["audio_features"]) == {
        "danceability", "energy", "valence", "acousticness", "instrumentalness", "liveness",
        "speechiness", "tempo", "key", "mode", "time_signature",
    }  # fmt: skip
    artist_id = track["artists"][0]["spotify_id"]
    artist = (await client.get(f"/api/v1/artists/{artist_id}")).json()
    assert set(artist) == {
        "id", "spotify_id", "name", "image_url", "genres", "popularity", "followers",
        "external_url",
    }  # fmt: skip
    assert artist["followers"] is not None and artist["image_url"]


async def test_development_app_uses_single_lookups_and_detects_closures_once(
    make_client, simulator, simulator_url, closures
):
    client = make_client()
    assert (await simulator.put("/_sim/mode", json={"mode": "development"})).status_code == 200
    first = await new_spotify_user(simulator, plays=25)
    first_ids = await played_track_ids(simulator, first)
    token = await sign_in(client, simulator_url, sim_user=first)

    jobs = await wait_for_idle(make_client, token)

    initial = next(job for job in jobs if job["job_type"] == "initial")
    assert initial["status"] == "completed", initial
    detail = step(initial, "audio_features")["detail"]
    assert "audio features are not available to this app" in detail
    tracks = await wait_until_enriched(make_client, first_ids)
    calls = await wait_for_calls(make_client, token, "/v1/tracks", 2)
    batch = [c for c in calls if c["endpoint"] == "/v1/tracks"]
    singles = [c["endpoint"].rsplit("/", 1)[1] for c in calls if c["endpoint"] != "/v1/tracks"]
    # The closed batch endpoint was called once (the detection), then single lookups, one
    # per track not enriched before (earlier tests may have enriched some of these tracks).
    assert len(batch) <= 1 and all(c["status_code"] == 403 for c in batch)
    assert singles and len(singles) == len(set(singles)) and set(singles) <= set(first_ids)
    fetched = [t for t in tracks if t["spotify_id"] in set(singles)]
    # Fields a development-mode app no longer receives are null, never invented.
    assert all(t["popularity"] is None and t["audio_features"] is None for t in fetched)
    features = await api_calls(make_client, token, "/v1/audio-features")
    assert len(features) <= 1 and all(c["status_code"] == 403 for c in features)
    artist_calls = await wait_for_calls(make_client, token, "/v1/artists/", 1)
    artist_id = artist_calls[0]["endpoint"].rsplit("/", 1)[1]
    artist = (await client.get(f"/api/v1/artists/{artist_id}")).json()
    assert artist["followers"] is None and artist["popularity"] is None and artist["image_url"]

    # Within the detection window a second user's enrichment never calls closed endpoints.
    second = await new_spotify_user(simulator, plays=10)
    second_ids = await played_track_ids(simulator, second)
    token_b = await sign_in(client, simulator_url, sim_user=second)
    await wait_for_idle(make_client, token_b)
    await wait_until_enriched(make_client, second_ids)
    calls_b = await api_calls(make_client, token_b, "/v1/tracks/")
    assert len(calls_b) == len({c["endpoint"] for c in calls_b}) <= len(second_ids)
    assert not [
        c
        for c in await api_calls(make_client, token_b, "/v1/tracks")
        if c["endpoint"] == "/v1/tracks"
    ]
    assert not await api_calls(make_client, token_b, "/v1/audio-features")


async def test_429_storm_pauses_enrichment_which_resumes_and_completes(
    make_client, simulator, simulator_url
):
    client = make_client()
    spotify_id = await new_spotify_user(simulator, plays=60)
    track_ids = await played_track_ids(simulator, spotify_id)
    # More 429s than the client retries: enrichment is paused (RateLimited), then resumes.
    fault = await simulator.post(
        "/_sim/faults",
        json={
            "path_prefix": "/v1/tracks",
            "status": 429,
            "count": 10,
            "retry_after": 1,
            "user_id": spotify_id,
        },
    )
    assert fault.status_code == 201, fault.text
    token = await sign_in(client, simulator_url, sim_user=spotify_id)

    jobs = await wait_for_idle(make_client, token)

    # The enrichment step ends early, says so and leaves the rest to the background (steps
    # that run inside the pause may fail on the pause too; they are retried next sync).
    initial = next(job for job in jobs if job["job_type"] == "initial")
    enrich = step(initial, "audio_features")
    assert enrich["status"] == "completed", initial
    assert "paused by Spotify's rate limit" in enrich["detail"]
    await wait_until_enriched(make_client, track_ids)
    limited = await wait_for_calls(make_client, token, "/v1/tracks", 11)
    assert sum(1 for c in limited if c["status_code"] == 429) == 10
    # Nothing was fetched twice: after the storm each batch of 50 went out once.
    ok = [c for c in limited if c["status_code"] == 200]
    assert len(ok) <= math.ceil(len(track_ids) / 50)


async def test_unknown_ids_are_404_in_the_documented_shape(make_client, simulator, simulator_url):
    client = make_client()
    unknown = "0000000000000000000000"
    for path, detail in (
        (f"/api/v1/tracks/{unknown}", "Track not found"),
        (f"/api/v1/artists/{unknown}", "Artist not found"),
        ("/api/v1/tracks/not-an-id", "Track not found"),
        ("/api/v1/artists/not-an-id", "Artist not found"),
    ):
        response = await client.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.json() == {"detail": detail}

    # Signed in, a miss is asked of Spotify, which does not know the id either.
    spotify_id = await new_spotify_user(simulator)
    token = await sign_in(client, simulator_url, sim_user=spotify_id)
    response = await client.get(f"/api/v1/tracks/{unknown}", headers=bearer(token))
    assert response.status_code == 404 and response.json() == {"detail": "Track not found"}
    # ...and a track catalog has never seen is fetched with the user's token.
    sample = (await simulator.get("/_sim/catalog", params={"sample": 40})).json()["sample"]
    fresh = sample["tracks"][-1]
    response = await client.get(f"/api/v1/tracks/{fresh}", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["spotify_id"] == fresh


async def add_playlist(simulator: httpx.AsyncClient, user_id: str, name: str) -> str:
    response = await simulator.post(
        "/_sim/playlists", json={"user_id": user_id, "name": name, "track_count": 5}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def playlists_of(client: ClientFactory, token: str, **params: int) -> dict:
    response = await client().get("/api/v1/playlists", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_playlists_follow_spotify_additions_changes_and_deletions(
    make_client, simulator, simulator_url, closures
):
    client = make_client()
    spotify_id = await new_spotify_user(simulator)
    keep = await add_playlist(simulator, spotify_id, "Keep")
    rename = await add_playlist(simulator, spotify_id, "Old name")
    gone = await add_playlist(simulator, spotify_id, "Deleted on Spotify")
    token = await sign_in(client, simulator_url, sim_user=spotify_id)
    await wait_for_idle(make_client, token)

    listed = await playlists_of(make_client, token)
    assert listed["total"] == 3 and listed["page"] == 1 and listed["limit"] == 50
    assert {p["spotify_id"] for p in listed["items"]} == {keep, rename, gone}
    item = listed["items"][0]
    assert set(item) == {
        "id", "user_id", "spotify_id", "name", "description", "image_url", "tracks_total",
        "owner", "public", "collaborative", "external_url",
    }  # fmt: skip
    assert item["tracks_total"] == 5 and len(item["id"]) == 24

    assert (await simulator.delete(f"/_sim/playlists/{gone}")).status_code == 204
    patched = await simulator.patch(
        f"/_sim/playlists/{rename}", json={"name": "New name", "track_count": 7}
    )
    assert patched.status_code == 200, patched.text
    added = await add_playlist(simulator, spotify_id, "Brand new")
    # A development-mode app reads the count block under its Feb 2026 name, `items`.
    assert (await simulator.put("/_sim/mode", json={"mode": "development"})).status_code == 200

    job = await sync_now(make_client, token)

    assert job["status"] == "completed", job
    assert step(job, "playlists")["detail"] == ("Synced 3 playlists: 1 added, 1 changed, 1 removed")
    listed = await playlists_of(make_client, token)
    by_id = {p["spotify_id"]: p for p in listed["items"]}
    assert set(by_id) == {keep, rename, added}
    assert by_id[rename]["name"] == "New name" and by_id[rename]["tracks_total"] == 7
    assert by_id[added]["tracks_total"] == 5
    second_page = await playlists_of(make_client, token, page=2, limit=2)
    assert len(second_page["items"]) == 1 and second_page["total"] == 3


async def test_users_see_only_their_own_playlists_and_bad_paging_is_422(
    make_client, simulator, simulator_url
):
    client = make_client()
    alice = await new_spotify_user(simulator)
    bob = await new_spotify_user(simulator)
    alices = {await add_playlist(simulator, alice, f"Alice {n}") for n in range(2)}
    bobs = {await add_playlist(simulator, bob, "Bob's only one")}
    token_a = await sign_in(client, simulator_url, sim_user=alice)
    token_b = await sign_in(client, simulator_url, sim_user=bob)
    await wait_for_idle(make_client, token_a)
    await wait_for_idle(make_client, token_b)

    listed_a = await playlists_of(make_client, token_a)
    listed_b = await playlists_of(make_client, token_b)
    assert {p["spotify_id"] for p in listed_a["items"]} == alices
    assert {p["spotify_id"] for p in listed_b["items"]} == bobs
    assert {p["user_id"] for p in listed_b["items"]} != {p["user_id"] for p in listed_a["items"]}

    assert (await client.get("/api/v1/playlists")).status_code == 401
    for params, field in (
        ({"page": 0}, "page"),
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
    ):
        response = await client.get("/api/v1/playlists", params=params, headers=bearer(token_a))
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert isinstance(detail, list) and detail[0]["loc"] == ["query", field]
        assert {"loc", "msg", "type"} <= set(detail[0])
