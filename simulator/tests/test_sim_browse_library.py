"""/v1/browse/* and the library (/v1/me/following, /v1/me/albums): paging and dev-mode closures."""

from __future__ import annotations

import pytest


@pytest.fixture
async def alice(headers_for) -> dict[str, str]:
    """sim_alice with every scope."""
    return await headers_for("sim_alice")


async def walk_offset(client, path: str, key: str | None, headers, limit: int) -> list[dict]:
    """Every item of an offset-paged list, following `next`."""
    items: list[dict] = []
    url: str | None = f"{path}?limit={limit}"
    while url:
        body = (await client.get(url, headers=headers)).json()
        page = body[key] if key else body
        items += page["items"]
        url = page["next"]
    return items


async def test_new_releases_are_newest_first_with_real_paging(client, alice) -> None:
    items = await walk_offset(client, "/v1/browse/new-releases", "albums", alice, 30)
    assert len(items) == 100
    assert len({a["id"] for a in items}) == 100
    dates = [a["release_date"] for a in items]
    assert dates == sorted(dates, reverse=True)
    assert items[0]["type"] == "album" and items[0]["images"]


async def test_featured_playlists_and_categories(client, alice) -> None:
    featured = (
        await client.get("/v1/browse/featured-playlists", params={"limit": 5}, headers=alice)
    ).json()
    assert featured["message"].startswith("Good ")
    page = featured["playlists"]
    assert len(page["items"]) == 5 and page["total"] == 12
    assert all(p["id"].startswith("37i9dQZF1") for p in page["items"])
    assert page["items"][0]["owner"]["display_name"] == "Spotify"
    categories = await walk_offset(client, "/v1/browse/categories", "categories", alice, 7)
    assert categories[0]["id"] == "toplists" and categories[0]["icons"][0]["url"]
    assert len({c["id"] for c in categories}) == len(categories) > 7


async def test_development_mode_closes_browse(client, alice) -> None:
    await client.put("/_sim/mode", json={"mode": "development"})
    featured = await client.get("/v1/browse/featured-playlists", headers=alice)
    assert featured.status_code == 404
    for path in ("/v1/browse/new-releases", "/v1/browse/categories"):
        closed = await client.get(path, headers=alice)
        assert closed.status_code == 403
        assert closed.json() == {"error": {"status": 403, "message": "Forbidden"}}
    # The library stays open in development mode.
    assert (await client.get("/v1/me/albums", headers=alice)).status_code == 200


async def test_followed_artists_cursor_paging(client, alice) -> None:
    seen: list[dict] = []
    url: str | None = "/v1/me/following?type=artist&limit=50"
    total = None
    while url:
        body = (await client.get(url, headers=alice)).json()["artists"]
        assert set(body) == {"href", "items", "limit", "next", "cursors", "total"}
        total = body["total"]
        seen += body["items"]
        if body["next"]:
            assert body["cursors"]["after"] == body["items"][-1]["id"]
        url = body["next"]
    assert total is not None and len(seen) == total >= 40
    assert len({a["id"] for a in seen}) == total
    assert "followers" in seen[0] and seen[0]["genres"] is not None
    bad = await client.get("/v1/me/following", params={"type": "user"}, headers=alice)
    assert bad.status_code == 400


async def test_saved_albums_offset_paging(client, alice, headers_for) -> None:
    items = await walk_offset(client, "/v1/me/albums", None, alice, 50)
    assert len(items) >= 30
    assert len({i["album"]["id"] for i in items}) == len(items)
    added = [i["added_at"] for i in items]
    assert added == sorted(added, reverse=True) and added[0].endswith("Z")
    album = items[0]["album"]
    assert album["tracks"]["total"] == album["total_tracks"] == len(album["tracks"]["items"])
    bob = await headers_for("sim_bob")
    bob_first = (await client.get("/v1/me/albums", headers=bob)).json()["items"][0]
    assert bob_first["album"]["id"] != album["id"] or bob_first["added_at"] != added[0]
    narrow = await headers_for("sim_alice", scope="user-read-private")
    assert (await client.get("/v1/me/albums", headers=narrow)).status_code == 403
