"""/v1/me/player*: the per-user state machine, success styles, refusals and the control API."""

from __future__ import annotations

import pytest

PLAYER = "/v1/me/player"


@pytest.fixture
async def alice(headers_for) -> dict[str, str]:
    """sim_alice (premium) with every scope."""
    return await headers_for("sim_alice")


async def truth(client, user_id: str = "sim_alice") -> dict:
    """The simulator's ground truth for a user's player."""
    response = await client.get("/_sim/player", params={"user_id": user_id})
    assert response.status_code == 200, response.text
    return response.json()


async def first_device(client, headers) -> str:
    devices = (await client.get(f"{PLAYER}/devices", headers=headers)).json()["devices"]
    assert len(devices) == 3 and not any(d["is_active"] for d in devices)
    return devices[0]["id"]


async def test_idle_player_answers_204_and_empty_queue(client, alice) -> None:
    for path in (PLAYER, f"{PLAYER}/currently-playing"):
        response = await client.get(path, headers=alice)
        assert response.status_code == 204 and response.content == b""
    queue = (await client.get(f"{PLAYER}/queue", headers=alice)).json()
    assert queue == {"currently_playing": None, "queue": []}


async def test_commands_need_an_active_device_then_change_state(client, alice, app) -> None:
    refused = await client.post(f"{PLAYER}/next", headers=alice)
    assert refused.status_code == 404
    assert refused.json()["error"]["reason"] == "NO_ACTIVE_DEVICE"

    album = next(a for a in app.state.sim.catalog.albums.values() if a.total_tracks >= 4)
    device = await first_device(client, alice)
    played = await client.put(
        f"{PLAYER}/play",
        params={"device_id": device},
        json={"context_uri": f"spotify:album:{album.id}", "offset": {"position": 1}},
        headers=alice,
    )
    assert played.status_code == 204, played.text
    state = await truth(client)
    assert state["is_playing"] and state["active_device_id"] == device
    assert state["track_id"] == album.track_ids[1]

    body = (await client.get(PLAYER, headers=alice)).json()
    assert body["is_playing"] is True and body["item"]["id"] == album.track_ids[1]
    assert body["device"]["id"] == device and body["device"]["is_active"] is True
    assert body["context"]["uri"] == f"spotify:album:{album.id}"
    queue = (await client.get(f"{PLAYER}/queue", headers=alice)).json()
    assert [t["id"] for t in queue["queue"]] == list(album.track_ids[2:])

    assert (await client.post(f"{PLAYER}/next", headers=alice)).status_code == 204
    assert (await truth(client))["track_id"] == album.track_ids[2]
    assert (await client.post(f"{PLAYER}/previous", headers=alice)).status_code == 204
    assert (await client.post(f"{PLAYER}/previous", headers=alice)).status_code == 204
    assert (await truth(client))["track_id"] == album.track_ids[0]
    at_start = await client.post(f"{PLAYER}/previous", headers=alice)
    assert at_start.status_code == 403
    assert at_start.json()["error"]["reason"] == "NO_PREV_TRACK"

    assert (await client.put(f"{PLAYER}/pause", headers=alice)).status_code == 204
    paused = await truth(client)
    assert paused["is_playing"] is False and paused["track_id"] == album.track_ids[0]
    again = await client.put(f"{PLAYER}/pause", headers=alice)
    assert again.status_code == 403
    assert again.json()["error"] == {
        "status": 403,
        "message": "Player command failed: Restriction violated",
        "reason": "UNKNOWN",
    }
    assert (await client.put(f"{PLAYER}/play", headers=alice)).status_code == 204
    assert (await truth(client))["is_playing"] is True


async def test_free_users_get_premium_required(client, headers_for) -> None:
    bob = await headers_for("sim_bob")
    device = await first_device(client, bob)
    response = await client.put(f"{PLAYER}/play", params={"device_id": device}, headers=bob)
    assert response.status_code == 403
    assert response.json()["error"]["reason"] == "PREMIUM_REQUIRED"
    # Reading the player is allowed without Premium.
    assert (await client.get(f"{PLAYER}/devices", headers=bob)).status_code == 200


async def test_success_styles_and_forced_refusals(client, alice) -> None:
    device = await first_device(client, alice)
    await client.put("/_sim/player/success", json={"status": 200})
    played = await client.put(f"{PLAYER}/play", params={"device_id": device}, headers=alice)
    assert played.status_code == 200
    assert len(played.text) == 27 and not played.text.startswith("{")
    await client.put("/_sim/player/success", json={"status": 202})
    assert (await client.post(f"{PLAYER}/next", headers=alice)).status_code == 202
    assert (await client.put("/_sim/player/success", json={"status": 201})).status_code == 422

    armed = await client.post(
        "/_sim/player/refusals",
        json={"command": "pause", "status": 403, "reason": "REMOTE_CONTROL_DISALLOW"},
    )
    assert armed.status_code == 201
    refused = await client.put(f"{PLAYER}/pause", headers=alice)
    assert refused.status_code == 403
    assert refused.json()["error"]["reason"] == "REMOTE_CONTROL_DISALLOW"
    assert (await client.put(f"{PLAYER}/pause", headers=alice)).status_code == 202


async def test_play_validates_uris_devices_and_offsets(client, alice, app) -> None:
    device = await first_device(client, alice)
    track = next(iter(app.state.sim.catalog.tracks))
    bad_device = await client.put(f"{PLAYER}/play", params={"device_id": "nope"}, headers=alice)
    assert bad_device.status_code == 404
    bad_uri = await client.put(
        f"{PLAYER}/play", params={"device_id": device}, json={"uris": ["x"]}, headers=alice
    )
    assert bad_uri.status_code == 400
    offset_without_context = await client.put(
        f"{PLAYER}/play",
        params={"device_id": device},
        json={"uris": [f"spotify:track:{track}"], "offset": {"position": 0}},
        headers=alice,
    )
    assert offset_without_context.status_code == 400
    ok = await client.put(
        f"{PLAYER}/play",
        params={"device_id": device},
        json={"uris": [f"spotify:track:{track}"], "position_ms": 1000},
        headers=alice,
    )
    assert ok.status_code == 204
    state = await truth(client)
    assert state["track_ids"] == [track] and state["progress_ms"] >= 1000
    at_end = await client.post(f"{PLAYER}/next", headers=alice)
    assert at_end.json()["error"]["reason"] == "NO_NEXT_TRACK"


async def test_devices_are_per_user_and_replaceable(client, alice, headers_for) -> None:
    demo = await headers_for("demo_user")
    a = (await client.get(f"{PLAYER}/devices", headers=alice)).json()["devices"]
    d = (await client.get(f"{PLAYER}/devices", headers=demo)).json()["devices"]
    assert {x["id"] for x in a}.isdisjoint({x["id"] for x in d})
    replaced = await client.put(
        "/_sim/player/devices",
        json={
            "user_id": "sim_alice",
            "devices": [{"id": "tv1", "name": "Living Room", "type": "TV"}],
            "active_device_id": "tv1",
        },
    )
    assert replaced.status_code == 200, replaced.text
    devices = (await client.get(f"{PLAYER}/devices", headers=alice)).json()["devices"]
    assert devices == [
        {
            "id": "tv1",
            "is_active": True,
            "is_private_session": False,
            "is_restricted": False,
            "name": "Living Room",
            "supports_volume": True,
            "type": "TV",
            "volume_percent": 50,
        }
    ]
    await client.post("/_sim/reset")
    assert len((await client.get(f"{PLAYER}/devices", headers=alice)).json()["devices"]) == 3


async def test_player_scopes(client, headers_for) -> None:
    narrow = await headers_for("sim_alice", scope="user-read-private")
    assert (await client.get(f"{PLAYER}/devices", headers=narrow)).status_code == 403
    assert (await client.post(f"{PLAYER}/next", headers=narrow)).status_code == 403
