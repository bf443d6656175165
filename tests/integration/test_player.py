"""Player, browse and library end to end: gateway → player-proxy → simulator, with the API log.

Every test signs in its own fresh simulated Spotify user (the simulator fixture resets the
simulator afterwards, which removes added users), so state never leaks between tests.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.integration.support import sign_in

pytestmark = pytest.mark.integration

PLAYER = "/api/v1/player"
SIM_PLAYER = "/v1/me/player"
QUEUE_CAP = 20


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_user(
    client: httpx.AsyncClient, simulator: httpx.AsyncClient, url: str, *, product: str = "premium"
) -> tuple[str, dict[str, str]]:
    """A fresh simulated Spotify account signed in through the gateway: (spotify id, headers)."""
    spotify_id = f"sim_{uuid.uuid4().hex[:10]}"
    created = await simulator.post(
        "/_sim/users", json={"id": spotify_id, "display_name": spotify_id, "product": product}
    )
    assert created.status_code == 201, created.text
    token = await sign_in(client, url, sim_user=spotify_id)
    return spotify_id, bearer(token)


async def wait_for_idle(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Wait until the user's initial sync has ended, so it calls Spotify no more."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        jobs = (await client.get("/api/v1/sync-jobs?limit=100", headers=headers)).json()["items"]
        if jobs and all(job["status"] in ("completed", "failed") for job in jobs):
            return
        assert asyncio.get_running_loop().time() < deadline, jobs
        await asyncio.sleep(0.3)


async def truth(simulator: httpx.AsyncClient, spotify_id: str) -> dict:
    """The simulator's own view of the user's player."""
    response = await simulator.get("/_sim/player", params={"user_id": spotify_id})
    assert response.status_code == 200, response.text
    return response.json()


async def first_device(simulator: httpx.AsyncClient, spotify_id: str) -> dict:
    return (await truth(simulator, spotify_id))["devices"][0]


async def sim_album(simulator: httpx.AsyncClient, min_tracks: int = 4) -> dict:
    """An album of the simulator's catalog with at least `min_tracks` tracks (via its API)."""
    token = (await simulator.post("/_sim/tokens", json={"user_id": "sim_alice"})).json()
    page = (
        await simulator.get(
            "/v1/browse/new-releases",
            params={"limit": 50},
            headers=bearer(token["access_token"]),
        )
    ).json()["albums"]["items"]
    return next(a for a in page if a["total_tracks"] >= min_tracks)


async def featured_playlist_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.get("/api/v1/browse/featured-playlists", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"][0]["id"]


# --- shapes -------------------------------------------------------------------------------


async def test_every_route_needs_a_session(client) -> None:
    for method, path in (
        ("GET", f"{PLAYER}/current"),
        ("GET", f"{PLAYER}/devices"),
        ("GET", f"{PLAYER}/queue"),
        ("POST", f"{PLAYER}/play"),
        ("POST", f"{PLAYER}/pause"),
        ("POST", f"{PLAYER}/next"),
        ("POST", f"{PLAYER}/previous"),
        ("GET", "/api/v1/browse/new-releases"),
        ("GET", "/api/v1/browse/featured-playlists"),
        ("GET", "/api/v1/browse/categories"),
        ("GET", "/api/v1/library/followed-artists"),
        ("GET", "/api/v1/library/saved-albums"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 401, (path, response.text)
        assert response.json() == {"detail": "Not authenticated"}


async def test_idle_player_shapes(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    current = await client.get(f"{PLAYER}/current", headers=headers)
    assert current.status_code == 200
    assert current.json() == {"is_playing": False}
    devices = (await client.get(f"{PLAYER}/devices", headers=headers)).json()
    expected = [
        {
            "id": d["id"],
            "name": d["name"],
            "type": d["type"],
            "is_active": False,
            "volume_percent": d["volume_percent"],
        }
        for d in (await truth(simulator, spotify_id))["devices"]
    ]
    assert devices == {"devices": expected}
    assert len(expected) == 3
    queue = (await client.get(f"{PLAYER}/queue", headers=headers)).json()
    assert queue == {"currently_playing": None, "queue": []}


async def test_browse_and_library_shapes_limits_and_paging(client, simulator, simulator_url):
    _, headers = await new_user(client, simulator, simulator_url)
    releases = (await client.get("/api/v1/browse/new-releases", headers=headers)).json()
    assert set(releases) == {"items"} and len(releases["items"]) == 20
    assert set(releases["items"][0]) == {
        "id", "name", "artists", "image", "release_date", "total_tracks", "type",
    }  # fmt: skip
    dates = [a["release_date"] for a in releases["items"]]
    assert dates == sorted(dates, reverse=True)
    five = (await client.get("/api/v1/browse/new-releases?limit=5", headers=headers)).json()
    assert [a["id"] for a in five["items"]] == [a["id"] for a in releases["items"][:5]]

    featured = (await client.get("/api/v1/browse/featured-playlists", headers=headers)).json()
    assert set(featured) == {"message", "items"} and featured["message"].startswith("Good ")
    assert set(featured["items"][0]) == {
        "id", "name", "description", "image", "tracks_total", "owner",
    }  # fmt: skip
    assert featured["items"][0]["owner"] == "Spotify" and featured["items"][0]["tracks_total"] > 0

    categories = (await client.get("/api/v1/browse/categories", headers=headers)).json()
    assert set(categories) == {"items"} and 1 < len(categories["items"]) <= 50
    assert categories["items"][0] == {
        "id": "toplists",
        "name": "Top Lists",
        "image": categories["items"][0]["image"],
    }
    assert categories["items"][0]["image"].startswith("https://")

    followed = (await client.get("/api/v1/library/followed-artists", headers=headers)).json()
    assert set(followed) == {"items", "total"} and followed["total"] >= 40
    assert len(followed["items"]) == min(50, followed["total"])
    assert set(followed["items"][0]) == {"id", "name", "image", "followers", "genres"}
    assert isinstance(followed["items"][0]["followers"], int)
    seven = (await client.get("/api/v1/library/followed-artists?limit=7", headers=headers)).json()
    assert [a["id"] for a in seven["items"]] == [a["id"] for a in followed["items"][:7]]

    first = (await client.get("/api/v1/library/saved-albums?limit=10", headers=headers)).json()
    second = (
        await client.get("/api/v1/library/saved-albums?limit=10&offset=10", headers=headers)
    ).json()
    assert set(first) == {"items", "total", "limit", "offset"}
    assert (first["limit"], first["offset"], second["offset"]) == (10, 0, 10)
    assert first["total"] == second["total"] >= 30
    assert set(first["items"][0]) == {
        "id", "name", "artists", "image", "release_date", "total_tracks", "added_at",
    }  # fmt: skip
    assert not {a["id"] for a in first["items"]} & {a["id"] for a in second["items"]}
    assert first["items"][-1]["added_at"] > second["items"][0]["added_at"]
    assert first["items"][0]["added_at"].endswith("Z")
    default = (await client.get("/api/v1/library/saved-albums", headers=headers)).json()
    assert (default["limit"], default["offset"]) == (50, 0)


async def test_bad_parameters_are_422(client, simulator, simulator_url) -> None:
    _, headers = await new_user(client, simulator, simulator_url)
    for path in (
        "/api/v1/browse/new-releases?limit=0",
        "/api/v1/browse/featured-playlists?limit=51",
        "/api/v1/browse/categories?limit=abc",
        "/api/v1/library/followed-artists?limit=51",
        "/api/v1/library/saved-albums?limit=0",
        "/api/v1/library/saved-albums?offset=-1",
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == 422, path
        item = response.json()["detail"][0]
        assert set(item) == {"loc", "msg", "type"} and item["loc"][0] == "query"
    for body in (
        {"uris": ["not-a-uri"]},
        {"uris": []},
        {"context_uri": "spotify:album:abc", "uris": ["spotify:track:abc"]},
        {"uris": ["spotify:track:abc"], "offset": {"position": 1}},
        {"context_uri": "spotify:album:abc", "offset": {}},
        {"position_ms": -1},
        {"unexpected": True},
    ):
        response = await client.post(f"{PLAYER}/play", json=body, headers=headers)
        assert response.status_code == 422, body
        assert all(set(i) == {"loc", "msg", "type"} for i in response.json()["detail"])


# --- the state machine through the gateway ------------------------------------------------


async def test_play_current_next_previous_pause_change_the_player(
    client, simulator, simulator_url
) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    device = await first_device(simulator, spotify_id)
    album = await sim_album(simulator)
    album_uri = f"spotify:album:{album['id']}"

    played = await client.post(
        f"{PLAYER}/play",
        json={
            "context_uri": album_uri,
            "device_id": device["id"],
            "offset": {"position": 1},
            "position_ms": 5000,
        },
        headers=headers,
    )
    assert played.status_code == 200, played.text
    assert played.json() == {"status": "playing"}
    state = await truth(simulator, spotify_id)
    assert state["is_playing"] and state["active_device_id"] == device["id"]
    assert state["context_uri"] == album_uri and state["index"] == 1
    tracks = state["track_ids"]

    current = (await client.get(f"{PLAYER}/current", headers=headers)).json()
    assert set(current) == {
        "is_playing", "track_name", "artist_name", "album_name", "album_image", "track_id",
        "duration_ms", "progress_ms", "device", "shuffle", "repeat",
    }  # fmt: skip
    assert current["is_playing"] is True and current["track_id"] == tracks[1]
    assert current["album_name"] == album["name"] and current["device"] == device["name"]
    assert current["progress_ms"] >= 5000 and current["repeat"] == "off"
    assert current["shuffle"] is False and current["album_image"].startswith("https://")
    devices = (await client.get(f"{PLAYER}/devices", headers=headers)).json()["devices"]
    assert [d["id"] for d in devices if d["is_active"]] == [device["id"]]

    assert (await client.post(f"{PLAYER}/next", headers=headers)).json() == {"status": "skipped"}
    assert (await truth(simulator, spotify_id))["index"] == 2
    after_next = (await client.get(f"{PLAYER}/current", headers=headers)).json()
    assert after_next["track_id"] == tracks[2]
    queue = (await client.get(f"{PLAYER}/queue", headers=headers)).json()
    assert queue["currently_playing"]["id"] == tracks[2]
    assert [i["id"] for i in queue["queue"]] == tracks[3 : 3 + QUEUE_CAP]

    back = await client.post(f"{PLAYER}/previous", headers=headers)
    assert back.json() == {"status": "skipped_back"}
    assert (await client.get(f"{PLAYER}/current", headers=headers)).json()["track_id"] == tracks[1]

    paused = await client.post(f"{PLAYER}/pause", headers=headers)
    assert paused.json() == {"status": "paused"}
    state = await truth(simulator, spotify_id)
    assert state["is_playing"] is False and state["track_id"] == tracks[1]
    now = (await client.get(f"{PLAYER}/current", headers=headers)).json()
    assert now["is_playing"] is False and now["track_id"] == tracks[1]

    resumed = await client.post(f"{PLAYER}/play", headers=headers)
    assert resumed.json() == {"status": "playing"}
    assert (await truth(simulator, spotify_id))["is_playing"] is True


async def test_uris_and_a_long_context_cap_the_queue(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    device = await first_device(simulator, spotify_id)
    playlist = await featured_playlist_id(client, headers)
    played = await client.post(
        f"{PLAYER}/play",
        json={"context_uri": f"spotify:playlist:{playlist}", "device_id": device["id"]},
        headers=headers,
    )
    assert played.status_code == 200, played.text
    state = await truth(simulator, spotify_id)
    assert len(state["track_ids"]) > QUEUE_CAP + 1
    queue = (await client.get(f"{PLAYER}/queue", headers=headers)).json()
    assert [i["id"] for i in queue["queue"]] == state["track_ids"][1 : 1 + QUEUE_CAP]
    assert set(queue["queue"][0]) == {"id", "name", "artist", "album", "image", "duration_ms"}

    uris = [f"spotify:track:{t}" for t in state["track_ids"][5:8]]
    assert (await client.post(f"{PLAYER}/play", json={"uris": uris}, headers=headers)).is_success
    state = await truth(simulator, spotify_id)
    assert state["track_ids"] == [u.split(":")[2] for u in uris]
    assert state["context_uri"] is None


async def test_commands_succeed_on_200_text_and_202(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    device = await first_device(simulator, spotify_id)
    album = await sim_album(simulator)
    await simulator.put("/_sim/player/success", json={"status": 200})
    played = await client.post(
        f"{PLAYER}/play",
        json={"context_uri": f"spotify:album:{album['id']}", "device_id": device["id"]},
        headers=headers,
    )
    assert played.status_code == 200 and played.json() == {"status": "playing"}
    assert (await client.post(f"{PLAYER}/next", headers=headers)).json() == {"status": "skipped"}
    await simulator.put("/_sim/player/success", json={"status": 202})
    back = await client.post(f"{PLAYER}/previous", headers=headers)
    assert back.json() == {"status": "skipped_back"}
    assert (await client.post(f"{PLAYER}/pause", headers=headers)).json() == {"status": "paused"}
    state = await truth(simulator, spotify_id)
    assert state["index"] == 0 and state["is_playing"] is False
    answered = (
        await simulator.get(
            "/_sim/requests", params={"path_prefix": SIM_PLAYER, "user_id": spotify_id}
        )
    ).json()["requests"]
    statuses = {(r["method"], r["path"].rsplit("/", 1)[1], r["status"]) for r in answered}
    assert {("PUT", "play", 200), ("POST", "next", 200), ("POST", "previous", 202)} <= statuses


# --- Spotify's errors, mapped -------------------------------------------------------------


async def test_player_refusals_are_mapped(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    no_device = await client.post(f"{PLAYER}/next", headers=headers)
    assert no_device.status_code == 404
    assert "NO_ACTIVE_DEVICE" in no_device.json()["detail"]

    unknown_device = await client.post(
        f"{PLAYER}/play", json={"device_id": "no-such-device"}, headers=headers
    )
    assert unknown_device.status_code == 404
    assert unknown_device.json() == {"detail": "Device not found"}

    device = await first_device(simulator, spotify_id)
    album = await sim_album(simulator)
    await client.post(
        f"{PLAYER}/play",
        json={"context_uri": f"spotify:album:{album['id']}", "device_id": device["id"]},
        headers=headers,
    )
    await client.post(f"{PLAYER}/pause", headers=headers)
    again = await client.post(f"{PLAYER}/pause", headers=headers)
    assert again.status_code == 409
    assert again.json() == {"detail": "Player command failed: Restriction violated (UNKNOWN)"}
    at_start = await client.post(f"{PLAYER}/previous", headers=headers)
    assert at_start.status_code == 409 and "NO_PREV_TRACK" in at_start.json()["detail"]

    await simulator.post(
        "/_sim/player/refusals",
        json={"command": "next", "status": 403, "reason": "REMOTE_CONTROL_DISALLOW"},
    )
    disallowed = await client.post(f"{PLAYER}/next", headers=headers)
    assert disallowed.status_code == 403
    assert "REMOTE_CONTROL_DISALLOW" in disallowed.json()["detail"]


async def test_free_users_get_premium_required(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url, product="free")
    device = await first_device(simulator, spotify_id)
    refused = await client.post(f"{PLAYER}/play", json={"device_id": device["id"]}, headers=headers)
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "Player command failed: Premium required (PREMIUM_REQUIRED)"
    }
    # Reading the player works without Premium.
    assert (await client.get(f"{PLAYER}/devices", headers=headers)).status_code == 200


async def test_rate_limit_is_429_with_retry_after(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    # Longer than the client sleeps through (30 s): the user gets Spotify's wait at once.
    await simulator.post(
        "/_sim/faults",
        json={
            "path_prefix": f"{SIM_PLAYER}/devices",
            "status": 429,
            "retry_after": 120,
            "user_id": spotify_id,
        },
    )
    limited = await client.get(f"{PLAYER}/devices", headers=headers)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "120"
    assert limited.json()["detail"]
    # A short Retry-After is slept through and the user never sees it.
    await simulator.post(
        "/_sim/faults",
        json={
            "path_prefix": f"{SIM_PLAYER}/devices",
            "status": 429,
            "retry_after": 1,
            "user_id": spotify_id,
        },
    )
    assert (await client.get(f"{PLAYER}/devices", headers=headers)).status_code == 200


async def test_spotify_5xx_is_502_after_bounded_retries(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    devices = f"{SIM_PLAYER}/devices"
    await simulator.post(
        "/_sim/faults",
        json={"path_prefix": devices, "status": 503, "count": None, "user_id": spotify_id},
    )
    await simulator.delete("/_sim/requests")
    failed = await client.get(f"{PLAYER}/devices", headers=headers)
    await simulator.delete("/_sim/faults")
    assert failed.status_code == 502
    assert failed.json()["detail"]
    attempts = (
        await simulator.get(
            "/_sim/requests", params={"path_prefix": devices, "user_id": spotify_id}
        )
    ).json()["count"]
    assert attempts == 4  # the first try and three retries
    assert (await client.get(f"{PLAYER}/devices", headers=headers)).status_code == 200


async def test_expired_token_is_refreshed_once(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    await wait_for_idle(client, headers)
    await simulator.post("/_sim/tokens/expire", json={"user_id": spotify_id})
    await simulator.delete("/_sim/requests")
    devices = await client.get(f"{PLAYER}/devices", headers=headers)
    assert devices.status_code == 200 and len(devices.json()["devices"]) == 3
    refreshes = (await simulator.get("/_sim/requests", params={"path_prefix": "/api/token"})).json()
    assert refreshes["count"] == 1
    calls = (
        await simulator.get(
            "/_sim/requests", params={"path_prefix": f"{SIM_PLAYER}/devices", "user_id": spotify_id}
        )
    ).json()["requests"]
    assert sorted(c["status"] for c in calls) == [200, 401]


async def test_token_refused_after_refresh_is_401(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    await simulator.post(
        "/_sim/faults",
        json={
            "path_prefix": f"{SIM_PLAYER}/queue",
            "status": 401,
            "count": 2,
            "user_id": spotify_id,
        },
    )
    refused = await client.get(f"{PLAYER}/queue", headers=headers)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Not authenticated"}
    # The EchoStats session is untouched; the next call works.
    assert (await client.get(f"{PLAYER}/queue", headers=headers)).status_code == 200


async def test_development_mode_app(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    await simulator.put("/_sim/mode", json={"mode": "development"})
    featured = await client.get("/api/v1/browse/featured-playlists", headers=headers)
    assert featured.status_code == 200
    body = featured.json()
    assert body["items"] == [] and body["message"] is None and "featured" in body["reason"]
    for path in ("/api/v1/browse/new-releases", "/api/v1/browse/categories"):
        closed = await client.get(path, headers=headers)
        assert closed.status_code == 200, closed.text
        assert set(closed.json()) == {"items", "reason"} and closed.json()["items"] == []
        assert "development-mode" in closed.json()["reason"]
    followed = (await client.get("/api/v1/library/followed-artists", headers=headers)).json()
    assert followed["items"] and all(a["followers"] is None for a in followed["items"])
    assert (await client.get("/api/v1/library/saved-albums", headers=headers)).status_code == 200
    device = await first_device(simulator, spotify_id)
    played = await client.post(f"{PLAYER}/play", json={"device_id": device["id"]}, headers=headers)
    assert played.status_code == 200
    # Extended quota again: the proxy asks Spotify each time, so the shelves come back.
    await simulator.put("/_sim/mode", json={"mode": "extended"})
    again = (await client.get("/api/v1/browse/categories", headers=headers)).json()
    assert "reason" not in again and again["items"]


# --- users and the API log ----------------------------------------------------------------


async def test_each_user_uses_their_own_token(client, simulator, simulator_url) -> None:
    alice_id, alice = await new_user(client, simulator, simulator_url)
    bob_id, bob = await new_user(client, simulator, simulator_url)
    device = await first_device(simulator, alice_id)
    album = await sim_album(simulator)
    await client.post(
        f"{PLAYER}/play",
        json={"context_uri": f"spotify:album:{album['id']}", "device_id": device["id"]},
        headers=alice,
    )
    await simulator.delete("/_sim/requests")
    assert (await client.get(f"{PLAYER}/current", headers=bob)).json() == {"is_playing": False}
    bob_devices = (await client.get(f"{PLAYER}/devices", headers=bob)).json()["devices"]
    assert device["id"] not in {d["id"] for d in bob_devices}
    assert (await client.get(f"{PLAYER}/current", headers=alice)).json()["is_playing"] is True
    calls = (await simulator.get("/_sim/requests", params={"path_prefix": SIM_PLAYER})).json()
    # Background syncs read recently-played meanwhile; only the proxy's calls count here.
    by_path = {
        (c["path"], c["user_id"])
        for c in calls["requests"]
        if not c["path"].endswith("recently-played")
    }
    assert by_path == {
        (SIM_PLAYER, bob_id),
        (f"{SIM_PLAYER}/devices", bob_id),
        (SIM_PLAYER, alice_id),
    }
    assert (await truth(simulator, bob_id))["active_device_id"] is None


async def test_every_call_appears_in_the_api_log(client, simulator, simulator_url) -> None:
    spotify_id, headers = await new_user(client, simulator, simulator_url)
    device = await first_device(simulator, spotify_id)
    await client.get(f"{PLAYER}/devices", headers=headers)
    await client.post(f"{PLAYER}/play", json={"device_id": device["id"]}, headers=headers)
    await client.post(f"{PLAYER}/next", headers=headers)
    await client.post(f"{PLAYER}/pause", headers=headers)
    await client.post(f"{PLAYER}/pause", headers=headers)  # refused: 403, logged too
    await client.get("/api/v1/browse/new-releases?limit=3", headers=headers)
    await client.get("/api/v1/library/saved-albums?limit=3", headers=headers)
    sim_calls = [
        c
        for c in (await simulator.get("/_sim/requests", params={"user_id": spotify_id})).json()[
            "requests"
        ]
        if c["path"].startswith(("/v1/me/player/", "/v1/browse/", "/v1/me/albums"))
        and "recently-played" not in c["path"]
    ]
    expected = sorted((c["method"], c["path"], c["status"]) for c in sim_calls)
    assert len(expected) == 7 and ("PUT", f"{SIM_PLAYER}/pause", 403) in expected
    logged: list[tuple[str, str, int]] = []
    for _ in range(40):
        response = await client.get("/api/v1/api-logs", params={"limit": 200}, headers=headers)
        assert response.status_code == 200, response.text
        logged = sorted(
            (i["method"], i["endpoint"], i["status_code"])
            for i in response.json()["items"]
            if i["endpoint"].startswith(("/v1/me/player/", "/v1/browse/", "/v1/me/albums"))
            and "recently-played" not in i["endpoint"]
        )
        if len(logged) >= len(expected):
            break
        await asyncio.sleep(0.25)
    assert logged == expected
