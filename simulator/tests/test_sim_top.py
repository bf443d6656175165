"""GET /v1/me/top/artists and /v1/me/top/tracks: ranking from the play log, paging, modes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

ARTISTS = "/v1/me/top/artists"
TRACKS = "/v1/me/top/tracks"


@pytest.fixture
async def alice(headers_for) -> dict[str, str]:
    """sim_alice's Bearer header with every scope."""
    return await headers_for("sim_alice")


async def truth_of(client, user_id: str = "sim_alice") -> list[dict]:
    """The user's ground-truth plays."""
    return (await client.get("/_sim/plays", params={"user_id": user_id})).json()["plays"]


def ranking(plays: list[dict]) -> list[tuple[str, int]]:
    """(track id, plays) most played first, ties to the more recently played."""
    counts = Counter(p["track_id"] for p in plays)
    latest = {p["track_id"]: p["played_at"] for p in plays}
    # played_at is unique per play and ISO strings sort as times, so no tie is left over.
    order = sorted(counts, key=lambda t: (counts[t], latest[t]), reverse=True)
    return [(t, counts[t]) for t in order]


async def test_top_tracks_follow_play_counts(client, alice) -> None:
    await client.post("/_sim/plays", json={"user_id": "sim_alice", "count": 300})
    expected = ranking(await truth_of(client))
    page = (await client.get(TRACKS, params={"limit": 50}, headers=alice)).json()
    assert set(page) == {"href", "items", "limit", "next", "offset", "previous", "total"}
    ids = [t["id"] for t in page["items"]]
    assert ids == [t for t, _ in expected[:50]]
    assert expected[0][1] > expected[-1][1]  # a real favourite, not a flat list
    assert page["total"] == len(expected)
    track = page["items"][0]
    assert track["type"] == "track" and "popularity" in track and track["album"]["images"]


async def test_top_artists_count_every_credited_artist(client, alice, app) -> None:
    await client.post("/_sim/plays", json={"user_id": "sim_alice", "count": 200})
    catalog = app.state.sim.catalog
    counts: Counter[str] = Counter()
    for play in await truth_of(client):
        counts.update(catalog.tracks[play["track_id"]].artist_ids)
    page = (await client.get(ARTISTS, params={"limit": 10}, headers=alice)).json()
    top = page["items"]
    assert [counts[a["id"]] for a in top] == sorted(counts.values(), reverse=True)[:10]
    assert set(top[0]) == {
        "external_urls", "followers", "genres", "href", "id", "images", "name", "popularity",
        "type", "uri",
    }  # fmt: skip
    assert top[0]["type"] == "artist" and top[0]["followers"]["href"] is None


async def test_time_ranges_look_back_four_weeks_six_months_a_year(client, alice) -> None:
    await client.delete("/_sim/plays", params={"user_id": "sim_alice"})
    now = (await client.get("/_sim/clock")).json()["now"]
    old_end = datetime.fromtimestamp(now, UTC) - timedelta(days=60)
    await client.post(
        "/_sim/plays",
        json={"user_id": "sim_alice", "count": 40, "end": old_end.isoformat()},
    )
    old = await truth_of(client)
    await client.post("/_sim/plays", json={"user_id": "sim_alice", "count": 25})
    recent = (await truth_of(client))[len(old) :]

    short_params = {"time_range": "short_term", "limit": 50}
    short = (await client.get(TRACKS, params=short_params, headers=alice)).json()
    medium = (await client.get(TRACKS, params={"limit": 50}, headers=alice)).json()
    recent_ranking = [t for t, _ in ranking(recent)]
    both_ranking = [t for t, _ in ranking(old + recent)]
    assert [t["id"] for t in short["items"]][: len(recent_ranking)] == recent_ranking
    assert [t["id"] for t in medium["items"]][: len(both_ranking)] == both_ranking[:50]
    assert "time_range=short_term" in short["href"]


async def test_short_logs_fall_back_to_favourites(client, headers_for) -> None:
    await client.post("/_sim/users", json={"id": "sim_carol"})
    carol = await headers_for("sim_carol")
    artists = (await client.get(ARTISTS, headers=carol)).json()
    tracks = (await client.get(TRACKS, params={"limit": 50}, headers=carol)).json()
    assert artists["total"] == 50 and len(artists["items"]) == 20
    assert tracks["total"] == 50 and len({t["id"] for t in tracks["items"]}) == 50
    again = (await client.get(ARTISTS, headers=carol)).json()
    assert again == artists  # deterministic


async def test_offset_paging(client, alice) -> None:
    everything = (await client.get(ARTISTS, params={"limit": 50}, headers=alice)).json()
    page = (await client.get(ARTISTS, params={"offset": 40, "limit": 20}, headers=alice)).json()
    total = everything["total"]
    assert [a["id"] for a in page["items"]] == [a["id"] for a in everything["items"][40:60]]
    assert page["offset"] == 40 and page["previous"] and "offset=20" in page["previous"]
    assert (page["next"] is None) == (total <= 60)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"time_range": "forever"}, "Invalid time_range"),
        ({"limit": 51}, "Invalid limit"),
        ({"limit": 0}, "Invalid limit"),
        ({"offset": -1}, "Invalid offset"),
    ],
)
async def test_bad_parameters(client, alice, params, message) -> None:
    for path in (ARTISTS, TRACKS):
        response = await client.get(path, params=params, headers=alice)
        assert response.status_code == 400
        assert response.json() == {"error": {"status": 400, "message": message}}


async def test_scope_and_unknown_kind(client, headers_for, alice) -> None:
    narrow = await headers_for("sim_alice", scope="user-read-recently-played")
    for path in (ARTISTS, TRACKS):
        denied = await client.get(path, headers=narrow)
        assert denied.json() == {"error": {"status": 403, "message": "Insufficient client scope"}}
    missing = await client.get("/v1/me/top/albums", headers=alice)
    assert missing.status_code == 404


async def test_development_mode_strips_fields(client, alice) -> None:
    await client.put("/_sim/mode", json={"mode": "development"})
    artist = (await client.get(ARTISTS, headers=alice)).json()["items"][0]
    track = (await client.get(TRACKS, headers=alice)).json()["items"][0]
    assert "followers" not in artist and "popularity" not in artist and "genres" in artist
    assert "popularity" not in track and "available_markets" not in track
