"""Analytics end to end: sync → analytics step → snapshots, through the gateway.

The figures are checked against a recomputation from the user's own history
(GET /api/v1/history) in UTC (the stack's analytics time zone). Audio features and
genres are checked against what the real catalog service holds after the sync enriched
the tracks (read over gRPC), weighted by plays.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from echostats.catalog.v1 import catalog_service_pb2 as catalog_pb
from echostats.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from echostats_grpc.client import create_channel
from tests.integration.support import sign_in

pytestmark = pytest.mark.integration

PERIODS = {"week": 7, "month": 30, "quarter": 90, "year": 365, "all_time": None}
OVERVIEW_KEYS = {
    "period",
    "total_tracks_played",
    "total_ms_played",
    "total_hours",
    "unique_tracks",
    "unique_artists",
    "unique_albums",
    "unique_genres",
    "listening_streak_days",
    "top_artists",
    "top_tracks",
    "top_albums",
    "top_genres",
    "hourly_distribution",
    "daily_distribution",
    "avg_audio_features",
    "computed_at",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_listener(simulator: httpx.AsyncClient, plays: int) -> str:
    """A simulated Spotify account with `plays` plays, three hours apart, ending now."""
    user_id = f"sim_{uuid.uuid4().hex[:10]}"
    created = await simulator.post(
        "/_sim/users", json={"id": user_id, "display_name": user_id, "product": "premium"}
    )
    assert created.status_code in (200, 201), created.text
    if plays:
        added = await simulator.post(
            "/_sim/plays", json={"user_id": user_id, "count": plays, "spacing_seconds": 10_800}
        )
        assert added.status_code in (200, 201), added.text
    return user_id


async def wait_until(check, timeout: float = 90.0, interval: float = 0.3):
    """Poll `check()` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


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


async def signed_in_listener(client, simulator, simulator_url, plays: int) -> str:
    """Sign a new listener in and wait until the initial sync and its rollups are done."""
    sim_user = await new_listener(simulator, plays)
    token = await sign_in(client, simulator_url, sim_user=sim_user)

    async def synced() -> bool:
        jobs = (await client.get("/api/v1/sync-jobs", headers=bearer(token))).json()["items"]
        return bool(jobs) and all(job["status"] in ("completed", "failed") for job in jobs)

    await wait_until(synced)
    return token


def played_day(play: dict) -> date:
    return datetime.fromisoformat(play["played_at"].replace("Z", "+00:00")).astimezone(UTC).date()


FEATURES = ("danceability", "energy", "valence", "acousticness", "instrumentalness")


async def catalog_truth(stack, track_ids: set[str]) -> tuple[dict, dict]:
    """What catalog knows: audio features by track id, and genres of each track's artists."""
    async with create_channel(stack.service_addrs["catalog"], default_timeout=10) as channel:
        catalog = catalog_grpc.CatalogServiceStub(channel)
        tracks = await catalog.BatchGetTracks(catalog_pb.BatchGetRequest(spotify_ids=track_ids))
        artist_ids = {a.spotify_id for t in tracks.tracks for a in t.artists[:1]}
        genres = await catalog.GetArtistGenres(catalog_pb.BatchGetRequest(spotify_ids=artist_ids))
    features = {
        t.spotify_id: t.audio_features for t in tracks.tracks if t.HasField("audio_features")
    }
    track_genres = {
        t.spotify_id: list(genres.genres_by_artist[t.artists[0].spotify_id].genres)
        for t in tracks.tracks
        if t.artists and t.artists[0].spotify_id in genres.genres_by_artist
    }
    return features, track_genres


async def test_overview_trend_and_top_lists_match_the_history(
    client, simulator, simulator_url, stack
):
    token = await signed_in_listener(client, simulator, simulator_url, plays=70)
    jobs = (await client.get("/api/v1/sync-jobs", headers=bearer(token))).json()["items"]
    initial = next(job for job in jobs if job["job_type"] == "initial")
    step = next(s for s in initial["steps"] if s["action"] == "analytics_refresh")
    assert step["status"] == "completed", initial
    assert step["detail"].startswith("Rolled up 70 plays"), step

    history = await all_history(client, token)
    assert len(history) == 70
    today = datetime.now(UTC).date()

    status = (await client.get("/api/v1/analytics/rollup-status", headers=bearer(token))).json()
    assert set(status) == {"last_date", "total_days", "complete", "coverage"}
    assert status["complete"] is True and status["coverage"] == 100.0
    assert status["total_days"] == len({played_day(p) for p in history})
    assert status["last_date"] == max(played_day(p) for p in history).isoformat()

    for period, days in PERIODS.items():
        first = None if days is None else today - timedelta(days=days - 1)
        plays = [p for p in history if first is None or played_day(p) >= first]
        response = await client.get(
            "/api/v1/analytics/overview", params={"period": period}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        overview = response.json()
        assert set(overview) == OVERVIEW_KEYS
        assert overview["period"] == period
        assert overview["total_tracks_played"] == len(plays)
        assert overview["total_ms_played"] == sum(p["ms_played"] for p in plays)
        assert overview["unique_tracks"] == len({p["track"]["spotify_id"] for p in plays})
        # The history shows album names, not ids: an album is its name and its artist here.
        assert overview["unique_albums"] == len(
            {(p["track"]["album_name"], p["track"]["artist_name"]) for p in plays}
        )
        assert sum(h["plays"] for h in overview["hourly_distribution"]) == len(plays)
        assert [h["hour"] for h in overview["hourly_distribution"]] == list(range(24))
        hours = Counter(int(p["played_at"][11:13]) for p in plays)
        assert {h["hour"]: h["plays"] for h in overview["hourly_distribution"]} == {
            hour: hours.get(hour, 0) for hour in range(24)
        }
        assert sum(d["plays"] for d in overview["daily_distribution"]) == len(plays)
        assert overview["daily_distribution"][0]["day"] == "Monday"
        counts = Counter(p["track"]["spotify_id"] for p in plays)
        assert [t["play_count"] for t in overview["top_tracks"]] == sorted(
            counts.values(), reverse=True
        )[: len(overview["top_tracks"])]
        for rank, item in enumerate(overview["top_tracks"], start=1):
            assert item["rank"] == rank and counts[item["spotify_id"]] == item["play_count"]
        assert set(overview["top_artists"][0]) == {
            "name",
            "play_count",
            "spotify_id",
            "image_url",
            "rank",
        }
        # Audio features and genres against catalog's own data (the sync enriched it),
        # weighted by plays: a brute-force recomputation.
        features, track_genres = await catalog_truth(
            stack, {p["track"]["spotify_id"] for p in plays}
        )
        with_features = [p for p in plays if p["track"]["spotify_id"] in features]
        if with_features:
            for name in FEATURES:
                expected = sum(
                    getattr(features[p["track"]["spotify_id"]], name) for p in with_features
                ) / len(with_features)
                assert abs(overview["avg_audio_features"][name] - expected) < 0.001, name
        else:
            assert overview["avg_audio_features"] is None
        genre_counts = Counter(
            g for p in plays for g in track_genres.get(p["track"]["spotify_id"], [])
        )
        assert overview["unique_genres"] == len(genre_counts)
        for item in overview["top_genres"]:
            assert genre_counts[item["name"]] == item["play_count"], item
        assert overview["computed_at"].endswith("Z")
        assert overview["listening_streak_days"] >= 1

        trend = (
            await client.get(
                "/api/v1/analytics/trend", params={"period": period}, headers=bearer(token)
            )
        ).json()
        assert set(trend) == {"period", "granularity", "points"}
        assert sum(point["plays"] for point in trend["points"]) == len(plays)
        assert sum(point["ms"] for point in trend["points"]) == overview["total_ms_played"]
        assert set(trend["points"][0]) == {"label", "plays", "ms", "hours"}
        if period in ("week", "month"):
            assert trend["granularity"] == "%Y-%m-%d"
            assert len(trend["points"]) == days
            assert trend["points"][-1]["label"] == today.isoformat()
        elif period == "quarter":
            assert trend["points"][-1]["label"] == "{}-W{:02d}".format(*today.isocalendar()[:2])
        else:
            assert trend["points"][-1]["label"] == today.strftime("%Y-%m")

        top = (
            await client.get(
                "/api/v1/tracks/top",
                params={"period": period, "limit": 3},
                headers=bearer(token),
            )
        ).json()
        assert top["period"] == period and top["total"] == overview["unique_tracks"]
        assert len(top["items"]) == min(3, top["total"])
        assert [t["spotify_id"] for t in top["items"]] == [
            t["spotify_id"] for t in overview["top_tracks"][:3]
        ]
        assert set(top["items"][0]) == {
            "id",
            "spotify_id",
            "name",
            "artists",
            "album",
            "duration_ms",
            "popularity",
            "external_url",
            "audio_features",
        }

    artists = (await client.get("/api/v1/artists/top?limit=2", headers=bearer(token))).json()
    assert artists["period"] == "all_time" and len(artists["items"]) == min(2, artists["total"])
    assert set(artists["items"][0]) == {
        "id",
        "spotify_id",
        "name",
        "image_url",
        "genres",
        "popularity",
        "followers",
        "external_url",
    }
    albums = (await client.get("/api/v1/albums/top", headers=bearer(token))).json()
    assert albums["total"] == len(
        {(p["track"]["album_name"], p["track"]["artist_name"]) for p in history}
    )
    assert set(albums["items"][0]) == {
        "id",
        "spotify_id",
        "name",
        "artists",
        "image_url",
        "release_date",
        "total_tracks",
        "type",
        "external_url",
    }
    genres = (await client.get("/api/v1/genres/distribution", headers=bearer(token))).json()
    assert set(genres) == {"genres", "period", "total_genres"}
    assert genres["total_genres"] == len(genres["genres"])
    if genres["genres"]:
        assert round(sum(g["percentage"] for g in genres["genres"]), 6) == 100.0

    recommended = await client.get(
        "/api/v1/recommendations", params={"seed_type": "artists"}, headers=bearer(token)
    )
    assert recommended.status_code == 200, recommended.text
    body = recommended.json()
    assert set(body) == {"items", "total", "seed_info"}
    assert body["seed_info"]["type"] == "artists"
    assert body["seed_info"]["top_artist"] == artists["items"][0]["name"]
    assert body["total"] == len(body["items"]) <= 20


async def test_refresh_rollup_build_and_isolation(client, make_client, simulator, simulator_url):
    token_a = await signed_in_listener(client, simulator, simulator_url, plays=12)
    client_b = make_client()
    token_b = await signed_in_listener(client_b, simulator, simulator_url, plays=0)

    refreshed = await client.post("/api/v1/analytics/refresh", headers=bearer(token_a))
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["status"] == "refreshed"
    assert body["periods"] == ["week", "month", "quarter", "year", "all_time"]
    assert body["computed_at"].endswith("Z")
    one = await client.post(
        "/api/v1/analytics/refresh", params={"period": "week"}, headers=bearer(token_a)
    )
    assert one.json()["periods"] == ["week"]

    build = (await client.post("/api/v1/analytics/rollup-build", headers=bearer(token_a))).json()
    assert set(build) == {"status", "job_id"} and build["status"] in ("started", "already_running")

    async def build_done():
        jobs = (
            await client.get(
                "/api/v1/sync-jobs", params={"job_type": "rollup_build"}, headers=bearer(token_a)
            )
        ).json()["items"]
        job = next((j for j in jobs if j["id"] == build["job_id"]), None)
        return job if job and job["status"] in ("completed", "failed") else None

    job = await wait_until(build_done)
    assert job["status"] == "completed", job
    assert job["items_processed"] == 12
    assert job["steps"][0]["action"] == "rollup_build"

    # User B has no plays and sees none of A's.
    overview_b = (await client_b.get("/api/v1/analytics/overview", headers=bearer(token_b))).json()
    assert overview_b["total_tracks_played"] == 0 and overview_b["top_tracks"] == []
    assert (await client_b.get("/api/v1/tracks/top", headers=bearer(token_b))).json() == {
        "items": [],
        "period": "all_time",
        "total": 0,
    }
    assert (await client_b.get("/api/v1/recommendations", headers=bearer(token_b))).json() == {
        "items": [],
        "seed_info": {},
    }
    status_b = (
        await client_b.get("/api/v1/analytics/rollup-status", headers=bearer(token_b))
    ).json()
    assert status_b == {"last_date": None, "total_days": 0, "complete": True, "coverage": 100.0}
    overview_a = (await client.get("/api/v1/analytics/overview", headers=bearer(token_a))).json()
    assert overview_a["total_tracks_played"] == 12


async def test_bad_queries_and_missing_auth(client, simulator, simulator_url):
    token = await signed_in_listener(client, simulator, simulator_url, plays=0)
    for path, params, loc in (
        ("/api/v1/analytics/overview", {"period": "decade"}, ["query", "period"]),
        ("/api/v1/analytics/trend", {"period": "day"}, ["query", "period"]),
        ("/api/v1/tracks/top", {"limit": "0"}, ["query", "limit"]),
        ("/api/v1/artists/top", {"limit": "101"}, ["query", "limit"]),
        ("/api/v1/albums/top", {"period": "x"}, ["query", "period"]),
        ("/api/v1/genres/distribution", {"period": "x"}, ["query", "period"]),
        ("/api/v1/recommendations", {"seed_type": "moods"}, ["query", "seed_type"]),
        ("/api/v1/recommendations", {"limit": "51"}, ["query", "limit"]),
    ):
        response = await client.get(path, params=params, headers=bearer(token))
        assert response.status_code == 422, (path, response.text)
        detail = response.json()["detail"]
        assert detail[0]["loc"] == loc and set(detail[0]) == {"loc", "msg", "type"}
    refused = await client.post(
        "/api/v1/analytics/refresh", params={"period": "x"}, headers=bearer(token)
    )
    assert refused.status_code == 422
    for method, path in (
        ("GET", "/api/v1/analytics/overview"),
        ("POST", "/api/v1/analytics/refresh"),
        ("GET", "/api/v1/analytics/trend"),
        ("GET", "/api/v1/analytics/rollup-status"),
        ("POST", "/api/v1/analytics/rollup-build"),
        ("GET", "/api/v1/tracks/top"),
        ("GET", "/api/v1/artists/top"),
        ("GET", "/api/v1/albums/top"),
        ("GET", "/api/v1/genres/distribution"),
        ("GET", "/api/v1/recommendations"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 401 and response.json() == {"detail": "Not authenticated"}
