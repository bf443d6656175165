"""GET /v1/me/playlists and the /_sim/playlists control API."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from spotify_simulator import SimulatorConfig, create_app

PATH = "/v1/me/playlists"


@pytest.fixture
async def alice(headers_for) -> dict[str, str]:
    """sim_alice's Bearer header with every scope."""
    return await headers_for("sim_alice")


async def all_items(client, headers) -> list[dict]:
    """Every playlist of the user, following `next`."""
    url: str | None = f"{PATH}?limit=50"
    items: list[dict] = []
    while url:
        page = (await client.get(url, headers=headers)).json()
        items += page["items"]
        url = page["next"]
    return items


async def test_seeded_library_shape(client, alice) -> None:
    page = (await client.get(PATH, headers=alice)).json()
    assert set(page) == {"href", "items", "limit", "next", "offset", "previous", "total"}
    assert (page["limit"], page["offset"], page["total"]) == (20, 0, 9)
    assert page["next"] is None and page["previous"] is None
    assert page["href"] == "http://127.0.0.1:8090/v1/me/playlists?offset=0&limit=20"
    items = page["items"]
    first = items[0]
    assert set(first) == {
        "collaborative", "description", "external_urls", "href", "id", "images", "name",
        "owner", "primary_color", "public", "snapshot_id", "tracks", "type", "uri",
    }  # fmt: skip
    assert first["type"] == "playlist" and first["uri"] == f"spotify:playlist:{first['id']}"
    assert first["tracks"] == {
        "href": f"http://127.0.0.1:8090/v1/playlists/{first['id']}/tracks",
        "total": first["tracks"]["total"],
    }
    assert first["tracks"]["total"] > 0 and len(first["snapshot_id"]) == 32
    owners = [i["owner"]["id"] for i in items]
    assert owners == ["sim_alice"] * 6 + ["sim_bob", "spotify", "spotify"]
    assert items[6]["owner"]["display_name"] == "Bob Example"
    collaborative = [i for i in items if i["collaborative"]]
    assert len(collaborative) == 1 and collaborative[0]["public"] is False
    assert sum(i["public"] is False for i in items) == 2
    assert all(i["id"].startswith("37i9dQZF1") for i in items[7:])


async def test_development_mode_renames_tracks_to_items(client, alice) -> None:
    await client.put("/_sim/mode", json={"mode": "development"})
    first = (await client.get(PATH, headers=alice)).json()["items"][0]
    assert "tracks" not in first
    assert first["items"]["href"].endswith(f"/v1/playlists/{first['id']}/items")
    assert first["items"]["total"] > 0


async def test_offset_paging(client, alice) -> None:
    everything = await all_items(client, alice)
    page = (await client.get(PATH, params={"limit": 4, "offset": 4}, headers=alice)).json()
    assert [i["id"] for i in page["items"]] == [i["id"] for i in everything[4:8]]
    assert parse_qs(urlsplit(page["next"]).query) == {"offset": ["8"], "limit": ["4"]}
    assert parse_qs(urlsplit(page["previous"]).query) == {"offset": ["0"], "limit": ["4"]}
    last = (await client.get(page["next"], headers=alice)).json()
    assert len(last["items"]) == 1 and last["next"] is None
    beyond = (await client.get(PATH, params={"offset": 100}, headers=alice)).json()
    assert beyond["items"] == [] and beyond["total"] == 9


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "Invalid limit"),
        ({"limit": 51}, "Invalid limit"),
        ({"offset": -1}, "Invalid offset"),
        ({"offset": 100_001}, "Invalid offset"),
    ],
)
async def test_bad_paging_values(client, alice, params, message) -> None:
    response = await client.get(PATH, params=params, headers=alice)
    assert response.status_code == 400
    assert response.json() == {"error": {"status": 400, "message": message}}


async def test_scopes(client, headers_for) -> None:
    none = await headers_for("sim_alice", scope="user-read-private")
    assert (await client.get(PATH, headers=none)).status_code == 403
    private_only = await headers_for("sim_alice", scope="playlist-read-private")
    page = (await client.get(PATH, headers=private_only)).json()
    # Collaborative playlists need playlist-read-collaborative as well.
    assert page["total"] == 8 and not any(i["collaborative"] for i in page["items"])


async def test_libraries_are_deterministic_and_per_user(client, alice, headers_for) -> None:
    other = create_app(SimulatorConfig())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://127.0.0.1:8090"
    ) as second:
        token = (await second.post("/_sim/tokens", json={"user_id": "sim_alice"})).json()
        theirs = (
            await second.get(PATH, headers={"Authorization": f"Bearer {token['access_token']}"})
        ).json()
    ours = (await client.get(PATH, headers=alice)).json()
    assert theirs == ours
    bob = (await client.get(PATH, headers=await headers_for("sim_bob"))).json()
    assert bob["items"][0]["id"] != ours["items"][0]["id"]
    # Each seeded user follows the next one's first playlist: Bob follows Demo User's.
    assert bob["items"][6]["owner"]["id"] == "demo_user"


async def test_played_playlists_are_in_the_library(client) -> None:
    await client.post("/_sim/plays", json={"user_id": "sim_alice", "count": 60})
    truth = (await client.get("/_sim/plays", params={"user_id": "sim_alice"})).json()["plays"]
    contexts = {p["context_uri"] for p in truth if (p["context_uri"] or "").count(":playlist:")}
    library = (await client.get("/_sim/playlists", params={"user_id": "sim_alice"})).json()
    uris = {f"spotify:playlist:{p['id']}" for p in library["playlists"]}
    assert contexts and contexts <= uris


async def test_create_update_delete(client, alice) -> None:
    created = await client.post(
        "/_sim/playlists",
        json={"user_id": "sim_alice", "name": "Brand New", "track_count": 7},
    )
    assert created.status_code == 201
    new = created.json()
    assert new["owner_id"] == "sim_alice" and new["owner_display_name"] == "Alice Example"
    assert new["public"] is True and new["collaborative"] is False
    assert len(new["track_ids"]) == 7 and new["user_ids"] == ["sim_alice"]
    page = (await client.get(PATH, headers=alice)).json()
    assert page["total"] == 10 and page["items"][0]["id"] == new["id"]
    assert page["items"][0]["tracks"]["total"] == 7

    patched = await client.patch(
        f"/_sim/playlists/{new['id']}", json={"name": "Renamed", "track_count": 3}
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Renamed" and len(patched.json()["track_ids"]) == 3
    assert patched.json()["snapshot_id"] != new["snapshot_id"]
    listed = (await client.get(PATH, headers=alice)).json()["items"][0]
    assert listed["name"] == "Renamed" and listed["snapshot_id"] == patched.json()["snapshot_id"]

    assert (await client.delete(f"/_sim/playlists/{new['id']}")).status_code == 204
    assert (await client.get(PATH, headers=alice)).json()["total"] == 9
    assert (await client.delete(f"/_sim/playlists/{new['id']}")).status_code == 404
    assert (await client.patch(f"/_sim/playlists/{new['id']}", json={})).status_code == 404


async def test_deleting_a_shared_playlist_removes_it_everywhere(client, alice, headers_for) -> None:
    bob = await headers_for("sim_bob")
    bobs_first = (await client.get(PATH, headers=bob)).json()["items"][0]
    holders = (await client.get("/_sim/playlists", params={"user_id": "sim_bob"})).json()
    assert holders["playlists"][0]["user_ids"] == ["sim_alice", "sim_bob"]
    await client.delete(f"/_sim/playlists/{bobs_first['id']}")
    alice_ids = [i["id"] for i in (await client.get(PATH, headers=alice)).json()["items"]]
    assert bobs_first["id"] not in alice_ids and len(alice_ids) == 8


async def test_followed_and_collaborative_playlists(client, alice) -> None:
    followed = await client.post(
        "/_sim/playlists",
        json={
            "user_id": "sim_alice",
            "name": "Someone Else's",
            "owner_id": "stranger",
            "track_ids": [],
        },
    )
    assert followed.json()["owner_display_name"] == "stranger"
    collab = await client.post(
        "/_sim/playlists",
        json={"user_id": "sim_alice", "name": "Together", "collaborative": True},
    )
    assert collab.json()["public"] is False
    items = (await client.get(PATH, headers=alice)).json()["items"]
    assert items[0]["collaborative"] is True
    assert items[1]["owner"]["id"] == "stranger" and items[1]["images"] == []
    assert items[1]["tracks"]["total"] == 0


async def test_control_validation(client) -> None:
    base = {"user_id": "sim_alice", "name": "x"}
    bad = [
        {**base, "collaborative": True, "public": True},
        {**base, "track_ids": ["nope"]},
        {**base, "track_ids": [], "track_count": 2},
        {**base, "id": "short"},
        {"user_id": "sim_alice"},
    ]
    for body in bad:
        assert (await client.post("/_sim/playlists", json=body)).status_code == 422, body
    assert (await client.post("/_sim/playlists", json={**base, "user_id": "x"})).status_code == 404
    fixed = {**base, "id": "0123456789abcdefABCDEF"}
    assert (await client.post("/_sim/playlists", json=fixed)).status_code == 201
    assert (await client.post("/_sim/playlists", json=fixed)).status_code == 409
    owned = (await client.get("/_sim/playlists", params={"user_id": "sim_alice"})).json()
    collab = next(p for p in owned["playlists"] if p["collaborative"])
    refused = await client.patch(f"/_sim/playlists/{collab['id']}", json={"public": True})
    assert refused.status_code == 422


async def test_reset_restores_libraries(client, alice) -> None:
    before = (await client.get(PATH, headers=alice)).json()
    await client.post("/_sim/playlists", json={"user_id": "sim_alice", "name": "Temp"})
    await client.delete(f"/_sim/playlists/{before['items'][0]['id']}")
    await client.post("/_sim/reset")
    assert (await client.get(PATH, headers=alice)).json() == before
