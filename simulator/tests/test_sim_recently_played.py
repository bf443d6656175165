"""GET /v1/me/player/recently-played: shape, cursor semantics, limits, scopes, modes, faults."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from spotify_simulator import SimulatorConfig, create_app

PATH = "/v1/me/player/recently-played"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
END = "2026-04-20T10:00:00.000Z"


@pytest.fixture
async def alice(headers_for) -> dict[str, str]:
    """sim_alice's Bearer header with every scope."""
    return await headers_for("sim_alice")


async def fresh_log(client, count: int, user_id: str = "sim_alice") -> list[dict]:
    """Replace the user's log with `count` back-to-back plays; return the ground truth."""
    await client.delete("/_sim/plays", params={"user_id": user_id})
    added = await client.post("/_sim/plays", json={"user_id": user_id, "count": count, "end": END})
    assert added.status_code == 201
    return (await client.get("/_sim/plays", params={"user_id": user_id})).json()["plays"]


def ms(item: dict) -> int:
    """Unix ms of a played_at (ISO with ms and Z)."""
    return round(
        datetime.fromisoformat(item["played_at"].replace("Z", "+00:00")).timestamp() * 1000
    )


def query(url: str) -> dict[str, str]:
    """The query parameters of a link."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_default_page_shape(client, alice) -> None:
    response = await client.get(PATH, headers=alice)
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"href", "items", "limit", "next", "cursors"}  # no total, as on Spotify
    assert page["limit"] == 20 and len(page["items"]) == 20
    assert page["href"] == "http://127.0.0.1:8090/v1/me/player/recently-played?limit=20"
    stamps = [ms(i) for i in page["items"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert page["cursors"] == {"after": str(stamps[0]), "before": str(stamps[-1])}
    assert query(page["next"]) == {"before": str(stamps[-1]), "limit": "20"}
    item = page["items"][0]
    assert set(item) == {"track", "played_at", "context"}
    assert ISO_MS.match(item["played_at"])
    track = item["track"]
    assert {"id", "name", "uri", "duration_ms", "artists", "album", "popularity", "explicit",
            "external_ids", "external_urls", "href", "is_local", "type", "available_markets",
            "track_number", "disc_number", "preview_url"} <= set(track)  # fmt: skip
    assert track["type"] == "track" and track["uri"] == f"spotify:track:{track['id']}"
    assert track["href"] == f"http://127.0.0.1:8090/v1/tracks/{track['id']}"
    assert track["album"]["images"][0]["height"] == 640
    assert track["artists"][0]["type"] == "artist"


async def test_items_match_the_ground_truth(client, alice) -> None:
    truth = (await client.get("/_sim/plays", params={"user_id": "sim_alice"})).json()["plays"]
    page = (await client.get(PATH, params={"limit": 50}, headers=alice)).json()
    assert len(page["items"]) == len(truth) == 30
    assert page["next"] is None  # nothing older is reachable
    for item, play in zip(page["items"], reversed(truth), strict=True):
        assert item["track"]["id"] == play["track_id"]
        assert item["played_at"] == play["played_at"]
        context = item["context"]
        if play["context_uri"] is None:
            assert context is None
        else:
            kind, entity_id = play["context_uri"].split(":")[1:]
            assert context == {
                "type": kind,
                "uri": play["context_uri"],
                "href": f"http://127.0.0.1:8090/v1/{kind}s/{entity_id}",
                "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{entity_id}"},
            }


async def test_walk_forward_with_after_gets_every_play_once(client, alice) -> None:
    truth = await fresh_log(client, 137)
    seen: list[str] = []
    sizes = []
    cursor = "0"
    while True:
        page = (await client.get(PATH, params={"after": cursor, "limit": 50}, headers=alice)).json()
        if not page["items"]:
            assert page["cursors"] is None
            break
        stamps = [ms(i) for i in page["items"]]
        assert stamps == sorted(stamps, reverse=True)
        assert all(s > int(cursor) for s in stamps)
        sizes.append(len(page["items"]))
        seen += [i["played_at"] for i in reversed(page["items"])]
        cursor = page["cursors"]["after"]
        assert cursor == str(stamps[0])
    assert sizes == [50, 50, 37]
    assert seen == [p["played_at"] for p in truth]


async def test_polling_forward_sees_new_plays_exactly_once(client, alice) -> None:
    await fresh_log(client, 10)
    first = (await client.get(PATH, params={"limit": 50}, headers=alice)).json()
    cursor = first["cursors"]["after"]
    await client.post("/_sim/plays", json={"user_id": "sim_alice", "count": 7})
    second = (await client.get(PATH, params={"after": cursor, "limit": 50}, headers=alice)).json()
    assert len(second["items"]) == 7
    third = await client.get(
        PATH, params={"after": second["cursors"]["after"], "limit": 50}, headers=alice
    )
    assert third.json()["items"] == [] and third.json()["cursors"] is None


async def test_walk_backward_with_next(client, alice) -> None:
    truth = await fresh_log(client, 137)
    url: str | None = f"{PATH}?limit=50"
    seen: list[str] = []
    sizes = []
    while url:
        page = (await client.get(url, headers=alice)).json()
        sizes.append(len(page["items"]))
        seen += [i["played_at"] for i in page["items"]]
        url = page["next"]
        if url:
            assert url.startswith("http://127.0.0.1:8090/v1/me/player/recently-played?before=")
    assert sizes == [50, 50, 37]
    assert seen == [p["played_at"] for p in reversed(truth)]


async def test_cursors_are_exclusive(client, alice) -> None:
    truth = await fresh_log(client, 5)
    middle = truth[2]
    middle_ms = ms(middle)
    before = (await client.get(PATH, params={"before": middle_ms}, headers=alice)).json()
    after = (await client.get(PATH, params={"after": middle_ms}, headers=alice)).json()
    assert [i["played_at"] for i in before["items"]] == [
        truth[1]["played_at"],
        truth[0]["played_at"],
    ]
    assert [i["played_at"] for i in after["items"]] == [
        truth[4]["played_at"],
        truth[3]["played_at"],
    ]
    # after=T takes the OLDEST plays after T, still listed newest first.
    oldest_two = (await client.get(PATH, params={"after": 0, "limit": 2}, headers=alice)).json()
    assert [i["played_at"] for i in oldest_two["items"]] == [
        truth[1]["played_at"],
        truth[0]["played_at"],
    ]
    assert oldest_two["next"] is None
    assert query(oldest_two["href"]) == {"after": "0", "limit": "2"}


async def test_empty_log(client, alice) -> None:
    await client.delete("/_sim/plays", params={"user_id": "sim_alice"})
    page = (await client.get(PATH, headers=alice)).json()
    assert page["items"] == [] and page["cursors"] is None and page["next"] is None


@pytest.mark.parametrize("limit", ["0", "51", "-1", "abc", "1.5"])
async def test_bad_limit(client, alice, limit: str) -> None:
    response = await client.get(PATH, params={"limit": limit}, headers=alice)
    assert response.status_code == 400
    assert response.json() == {"error": {"status": 400, "message": "Invalid limit"}}


async def test_limits_one_and_fifty_are_fine(client, alice) -> None:
    for limit in (1, 50):
        page = (await client.get(PATH, params={"limit": limit}, headers=alice)).json()
        assert page["limit"] == limit and len(page["items"]) == min(limit, 30)


async def test_after_and_before_together_or_bad_values(client, alice) -> None:
    both = await client.get(PATH, params={"after": 1, "before": 2}, headers=alice)
    assert both.status_code == 400
    assert both.json()["error"]["status"] == 400
    negative = await client.get(PATH, params={"after": -5}, headers=alice)
    assert negative.json() == {"error": {"status": 400, "message": "Invalid after"}}
    text = await client.get(PATH, params={"before": "yesterday"}, headers=alice)
    assert text.json() == {"error": {"status": 400, "message": "Invalid before"}}


async def test_scope_and_authentication(client, headers_for) -> None:
    narrow = await headers_for("sim_alice", scope="user-read-private user-top-read")
    denied = await client.get(PATH, headers=narrow)
    assert denied.status_code == 403
    assert denied.json() == {"error": {"status": 403, "message": "Insufficient client scope"}}
    anonymous = await client.get(PATH)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["message"] == "No token provided"


async def test_each_user_sees_their_own_log(client, headers_for) -> None:
    bob = await headers_for("sim_bob")
    truth = (await client.get("/_sim/plays", params={"user_id": "sim_bob"})).json()["plays"]
    page = (await client.get(PATH, params={"limit": 50}, headers=bob)).json()
    assert [i["track"]["id"] for i in page["items"]] == [p["track_id"] for p in reversed(truth)]


async def test_recent_window_limits_reachability(client, alice) -> None:
    truth = await fresh_log(client, 137)
    await client.put("/_sim/recent-window", json={"recent_window": 50})
    url: str | None = f"{PATH}?limit=20"
    seen = []
    while url:
        page = (await client.get(url, headers=alice)).json()
        seen += [i["played_at"] for i in page["items"]]
        url = page["next"]
    assert seen == [p["played_at"] for p in reversed(truth[-50:])]
    oldest = (await client.get(PATH, params={"after": 0, "limit": 1}, headers=alice)).json()
    assert oldest["items"][0]["played_at"] == truth[-50]["played_at"]
    # The ground truth still holds everything.
    assert (await client.get("/_sim/plays", params={"user_id": "sim_alice"})).json()["count"] == 137


async def test_recent_window_from_config() -> None:
    app = create_app(SimulatorConfig(recent_window=5))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        token = (await client.post("/_sim/tokens", json={"user_id": "demo_user"})).json()
        page = await client.get(
            PATH, params={"limit": 50}, headers={"Authorization": f"Bearer {token['access_token']}"}
        )
    assert len(page.json()["items"]) == 5


async def test_development_mode_strips_track_fields(client, alice) -> None:
    await client.put("/_sim/mode", json={"mode": "development"})
    page = (await client.get(PATH, headers=alice)).json()
    track = page["items"][0]["track"]
    assert "popularity" not in track and "available_markets" not in track
    assert "available_markets" not in track["album"]
    assert track["external_ids"]["isrc"]  # restored in Mar 2026
    await client.put("/_sim/mode", json={"mode": "extended"})
    track = (await client.get(PATH, headers=alice)).json()["items"][0]["track"]
    assert "popularity" in track and "available_markets" in track


# --- faults apply to this path like to every other ---------------------------------------


async def test_429_with_retry_after_then_success(client, alice) -> None:
    await client.post(
        "/_sim/faults",
        json={"path_prefix": PATH, "status": 429, "count": 1, "retry_after": 4},
    )
    limited = await client.get(PATH, headers=alice)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "4"
    assert limited.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    retried = await client.get(PATH, headers=alice)
    assert retried.status_code == 200 and len(retried.json()["items"]) == 20


async def test_expired_token_fault_then_success(client, alice) -> None:
    await client.post("/_sim/faults", json={"path_prefix": PATH, "status": 401})
    expired = await client.get(PATH, headers=alice)
    assert expired.status_code == 401
    assert expired.json() == {"error": {"status": 401, "message": "The access token expired"}}
    assert "invalid_token" in expired.headers["www-authenticate"]
    assert (await client.get(PATH, headers=alice)).status_code == 200


async def test_server_errors_then_success(client, alice) -> None:
    for status in (500, 503):
        await client.post("/_sim/faults", json={"path_prefix": PATH, "status": status})
    assert (await client.get(PATH, headers=alice)).status_code == 500
    assert (await client.get(PATH, headers=alice)).status_code == 503
    assert (await client.get(PATH, headers=alice)).status_code == 200


async def test_really_expired_token(client, alice) -> None:
    await client.post("/_sim/tokens/expire", json={"user_id": "sim_alice"})
    response = await client.get(PATH, headers=alice)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The access token expired"
    log = (await client.get("/_sim/requests", params={"path_prefix": PATH})).json()
    assert log["requests"][-1]["status"] == 401
