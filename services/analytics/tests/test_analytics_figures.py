"""Analytics figures against a brute-force recomputation from the raw plays, every period.

Seeded history: ~14 months of plays of one user in America/New_York (the service's zone
here), mostly with Spotify ids, some known only by names (account-data imports), one of those
naming a track that is also played with ids (so it must merge into it). The fake catalog
knows some tracks (some with audio features), some artists (with genres and images) and
some albums. The brute force below recomputes every figure straight from the plays with the
documented rules and never looks at rollups.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest

from echostats.analytics.v1 import analytics_service_pb2 as pb
from echostats.catalog.v1 import catalog_service_pb2 as catalog_pb
from ingestion_service.import_job import account_key
from ingestion_service.models import Play, PlaySource, PlayTrack

ZONE = ZoneInfo("America/New_York")
PERIODS = {
    pb.PERIOD_WEEK: 7,
    pb.PERIOD_MONTH: 30,
    pb.PERIOD_QUARTER: 90,
    pb.PERIOD_YEAR: 365,
    pb.PERIOD_ALL_TIME: None,
}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FEATURES = ("danceability", "energy", "valence", "tempo")


def fold(name: str) -> str:
    return " ".join(name.casefold().split())


def sid(prefix: str, number: int) -> str:
    """A Spotify-like base62 id."""
    return f"{prefix}{number:020d}"


def seed_catalog(catalog: Any) -> dict[str, Any]:
    """Canned catalog data; returns the seed's track table."""
    rng = random.Random(11)
    genres = ["art rock", "indie rock", "jazz", "ambient", "techno", "folk", "hip hop"]
    artists = [(sid("ar", i), f"Artist {i}") for i in range(12)]
    albums = [(sid("al", i), f"Album {i}") for i in range(15)]
    tracks = []
    for i in range(40):
        artist = artists[i % len(artists)]
        album = albums[i % len(albums)]
        tracks.append(
            {
                "id": sid("tr", i),
                "name": f"Track {i}",
                "artist": artist,
                "album": album,
                "image": f"https://img.test/{album[0]}" if i % 3 else None,
            }
        )
    for i, (artist_id, name) in enumerate(artists[:10]):
        catalog.artists[artist_id] = catalog_pb.Artist(
            id=f"cat{artist_id}",
            spotify_id=artist_id,
            name=name,
            genres=rng.sample(genres, k=1 + i % 3),
            image_url=f"https://img.test/{artist_id}",
            popularity=50 + i,
            followers=1000 * i,
            external_url=f"https://open.spotify.com/artist/{artist_id}",
            enriched=True,
        )
    for album_id, name in albums[:10]:
        catalog.albums[album_id] = catalog_pb.Album(
            id=f"cat{album_id}",
            spotify_id=album_id,
            name=name,
            album_type="album",
            total_tracks=10,
            release_date="2001-02-03",
            external_url=f"https://open.spotify.com/album/{album_id}",
            enriched=True,
        )
    for i, track in enumerate(tracks[:30]):
        message = catalog_pb.Track(
            id=f"cat{track['id']}",
            spotify_id=track["id"],
            name=track["name"],
            artists=[catalog_pb.ArtistRef(spotify_id=track["artist"][0], name=track["artist"][1])],
            album=catalog_pb.AlbumRef(spotify_id=track["album"][0], name=track["album"][1]),
            duration_ms=200_000,
            popularity=40,
            external_url=f"https://open.spotify.com/track/{track['id']}",
            enriched=True,
        )
        if i < 20:
            message.audio_features.CopyFrom(
                catalog_pb.AudioFeatures(
                    danceability=rng.random(),
                    energy=rng.random(),
                    valence=rng.random(),
                    tempo=80 + 80 * rng.random(),
                )
            )
        catalog.tracks[track["id"]] = message
    return {"tracks": tracks}


def make_play(
    user_id: str, track: dict[str, Any] | None, at: datetime, ms: int, *, names=None
) -> Play:
    """A play of a catalog track, or (names=(track, artist)) one known only by names."""
    if track is not None:
        return Play(
            user_id=user_id,
            track=PlayTrack(
                spotify_id=track["id"],
                name=track["name"],
                artist_name=track["artist"][1],
                album_name=track["album"][1],
                duration_ms=ms,
                album_image_url=track["image"],
                artist_ids=(track["artist"][0],),
                album_id=track["album"][0],
            ),
            played_at=at,
            ms_played=ms,
            source=PlaySource.API,
        )
    track_name, artist_name = names
    return Play(
        user_id=user_id,
        track=PlayTrack(
            spotify_id="", name=track_name, artist_name=artist_name, album_name="", duration_ms=ms
        ),
        played_at=at,
        ms_played=ms,
        source=PlaySource.IMPORT_ACCOUNT,
        account_key=account_key(artist_name, track_name, at),
    )


def generate_history(user_id: str, tracks: list[dict[str, Any]], now: datetime) -> list[Play]:
    """~14 months of plays, a streak of 6 days up to today, a gap before it."""
    rng = random.Random(5)
    plays: list[Play] = []
    seen: set[tuple[str, int]] = set()
    today = now.astimezone(ZONE).date()
    weights = [1 / (1 + i) for i in range(len(tracks))]
    name_only = [("Track 3", "Artist 3"), ("Lost Song", "Nobody"), ("Other Tune", "Somebody")]
    # Every day up to a gap 6 days ago (the streak), then one day in nine: ingestion writes
    # a day bucket per day, which is what storing costs on FerretDB.
    for offset in range(430):
        day = today - timedelta(days=offset)
        if offset == 6 or (offset > 6 and offset % 9):
            continue
        for _ in range(rng.randint(3, 30)):
            local = datetime(day.year, day.month, day.day, tzinfo=ZONE) + timedelta(
                seconds=rng.randint(0, 86_399)
            )
            at = local.astimezone(UTC)
            if at > now - timedelta(seconds=5):
                continue
            ms = rng.randint(30_000, 300_000)
            if rng.random() < 0.08:
                names = rng.choice(name_only)
                key = (names[0], int(at.timestamp()))
                if key not in seen:
                    seen.add(key)
                    plays.append(make_play(user_id, None, at, ms, names=names))
                continue
            track = rng.choices(tracks, weights=weights)[0]
            key = (track["id"], int(at.timestamp()))
            if key not in seen:
                seen.add(key)
                plays.append(make_play(user_id, track, at, ms))
    return plays


# -- the brute force -----------------------------------------------------------------------


def local(play: Play) -> datetime:
    return play.played_at.astimezone(ZONE)


def brute_force(
    plays: list[Play], catalog: Any, period_days: int | None, today: date, *, with_catalog: bool
) -> dict[str, Any]:
    """Every figure of a period recomputed from raw plays with the documented rules."""
    first = None if period_days is None else today - timedelta(days=period_days - 1)
    chosen = [p for p in plays if (first is None or local(p).date() >= first)]
    chosen = [p for p in chosen if local(p).date() <= today]
    track_alias = {
        (fold(p.track.name), fold(p.track.artist_name)): p.track.spotify_id
        for p in chosen
        if p.track.spotify_id
    }
    artist_alias = {
        fold(p.track.artist_name): p.track.artist_ids[0] for p in chosen if p.track.artist_ids
    }
    tracks: Counter[str] = Counter()
    artists: Counter[str] = Counter()
    albums: Counter[str] = Counter()
    hours = [0] * 24
    weekdays = [0] * 7
    for play in chosen:
        names = (fold(play.track.name), fold(play.track.artist_name))
        tracks[play.track.spotify_id or track_alias.get(names, "~" + "|".join(names))] += 1
        artist = (
            play.track.artist_ids[0]
            if play.track.artist_ids
            else artist_alias.get(names[1], "~" + names[1])
        )
        artists[artist] += 1
        if play.track.album_id:
            albums[play.track.album_id] += 1
        elif play.track.album_name:
            albums["~" + fold(play.track.album_name)] += 1
        hours[local(play).hour] += 1
        weekdays[local(play).weekday()] += 1
    genres: Counter[str] = Counter()
    features = None
    if with_catalog:
        for artist_id, count in artists.items():
            if artist_id in catalog.artists:
                for genre in catalog.artists[artist_id].genres:
                    genres[genre] += count
        sums: dict[str, float] = defaultdict(float)
        weights: dict[str, int] = defaultdict(int)
        for track_id, count in tracks.items():
            known = catalog.tracks.get(track_id)
            if known is not None and known.HasField("audio_features"):
                for name in FEATURES:
                    sums[name] += getattr(known.audio_features, name) * count
                    weights[name] += count
        if weights:
            features = {name: sums[name] / weights[name] for name in FEATURES}
    days = {local(p).date() for p in plays}
    streak_day = today if today in days else today - timedelta(days=1)
    streak = 0
    while streak_day in days:
        streak += 1
        streak_day -= timedelta(days=1)
    by_day: Counter[date] = Counter(local(p).date() for p in chosen)
    return {
        "plays": len(chosen),
        "ms": sum(p.ms_played for p in chosen),
        "tracks": tracks,
        "artists": artists,
        "albums": albums,
        "genres": genres,
        "hours": hours,
        "weekdays": weekdays,
        "features": features,
        "streak": streak,
        "by_day": by_day,
        "first": first or min(days),
    }


def trend_label(day: date, period: int) -> str:
    if period in (pb.PERIOD_WEEK, pb.PERIOD_MONTH):
        return day.isoformat()
    if period == pb.PERIOD_QUARTER:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.strftime("%Y-%m")


async def check_period(
    stub: Any, user_id: str, period: int, expected: dict[str, Any], *, with_catalog: bool
) -> None:
    """Overview, trend, top lists and genres of one period against the brute force."""
    request = pb.PeriodRequest(user_id=user_id, period=period)
    overview = await stub.GetOverview(request)
    assert overview.total_tracks_played == expected["plays"]
    assert overview.total_ms_played == expected["ms"]
    assert overview.total_hours == round(expected["ms"] / 3_600_000, 1)
    assert overview.unique_tracks == len(expected["tracks"])
    assert overview.unique_artists == len(expected["artists"])
    assert overview.unique_albums == len(expected["albums"])
    assert overview.unique_genres == len(expected["genres"])
    assert overview.listening_streak_days == expected["streak"]
    assert [h.plays for h in overview.hourly_distribution] == expected["hours"]
    assert [h.hour for h in overview.hourly_distribution] == list(range(24))
    assert [d.day for d in overview.daily_distribution] == WEEKDAYS
    assert [d.plays for d in overview.daily_distribution] == expected["weekdays"]
    for ranked, counter in (
        (overview.top_tracks, expected["tracks"]),
        (overview.top_artists, expected["artists"]),
        (overview.top_albums, expected["albums"]),
        (overview.top_genres, expected["genres"]),
    ):
        counts = sorted(counter.values(), reverse=True)[: len(ranked)]
        assert [item.play_count for item in ranked] == counts
        assert [item.rank for item in ranked] == list(range(1, len(ranked) + 1))
        for item in ranked:
            key = item.spotify_id if item.HasField("spotify_id") else item.name
            if key in counter:
                assert counter[key] == item.play_count
    if with_catalog and expected["features"] is not None:
        for name in FEATURES:
            assert getattr(overview.avg_audio_features, name) == pytest.approx(
                expected["features"][name], abs=1e-3
            )
    else:
        assert not overview.HasField("avg_audio_features")
    # Artist images come from the catalog.
    for item in overview.top_artists:
        if with_catalog and item.spotify_id in {f"ar{i:020d}" for i in range(10)}:
            assert item.image_url == f"https://img.test/{item.spotify_id}"

    trend = await stub.GetTrend(request)
    assert sum(point.plays for point in trend.points) == expected["plays"]
    assert sum(point.ms for point in trend.points) == expected["ms"]
    wanted: Counter[str] = Counter()
    for day, count in expected["by_day"].items():
        wanted[trend_label(day, period)] += count
    labels = [point.label for point in trend.points]
    assert labels == sorted(set(labels))
    assert {p.label: p.plays for p in trend.points if p.plays} == dict(wanted)
    if period in (pb.PERIOD_WEEK, pb.PERIOD_MONTH):
        assert len(trend.points) == PERIODS[period]
        assert trend.granularity == "%Y-%m-%d"

    top = await stub.ListTopTracks(pb.TopItemsRequest(user_id=user_id, period=period, limit=100))
    assert top.total == len(expected["tracks"])
    assert len(top.tracks) == min(100, len(expected["tracks"]))
    for track in top.tracks:
        if track.spotify_id:
            assert track.name
    artists = await stub.ListTopArtists(pb.TopItemsRequest(user_id=user_id, period=period, limit=5))
    assert artists.total == len(expected["artists"])
    assert [a.spotify_id or a.name for a in artists.artists] == [
        key if not key.startswith("~") else a.name
        for key, a in zip(
            [a.spotify_id or a.name for a in artists.artists], artists.artists, strict=True
        )
    ]
    albums = await stub.ListTopAlbums(pb.TopItemsRequest(user_id=user_id, period=period, limit=3))
    assert albums.total == len(expected["albums"])

    genres = await stub.GetGenreDistribution(request)
    assert genres.total_genres == len(expected["genres"])
    assert {g.name: g.play_count for g in genres.genres} == dict(expected["genres"])
    if genres.genres:
        assert round(sum(g.percentage for g in genres.genres), 6) == 100.0
        total = sum(expected["genres"].values())
        for genre in genres.genres:
            assert abs(genre.percentage - genre.play_count * 100 / total) <= 0.1 + 1e-9


@pytest.fixture(scope="module")
async def seeded(harness: Any) -> dict[str, Any]:
    """One user's history stored and rolled up in both analytics servers."""
    table = seed_catalog(harness.catalog)
    user_id = f"user_{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    plays = generate_history(user_id, table["tracks"], now)
    # Announced in three batches (older, middle, recent), like an import and two syncs.
    plays.sort(key=lambda play: play.played_at)
    third = len(plays) // 3
    for batch in (plays[:third], plays[third : 2 * third], plays[2 * third :]):
        await harness.store(batch)
    for analytics in (harness.with_catalog, harness.without_catalog):
        await harness.wait_rolled_up(analytics, user_id)
    return {"user_id": user_id, "plays": plays, "tracks": table["tracks"]}


@pytest.mark.parametrize("period", list(PERIODS))
async def test_figures_match_brute_force(harness: Any, seeded: dict[str, Any], period: int) -> None:
    """Every figure of every period equals the brute-force recomputation (catalog known)."""
    today = datetime.now(UTC).astimezone(ZONE).date()
    expected = brute_force(
        seeded["plays"], harness.catalog, PERIODS[period], today, with_catalog=True
    )
    assert expected["plays"] > 0 and expected["genres"]
    await check_period(
        harness.with_catalog.stub, seeded["user_id"], period, expected, with_catalog=True
    )


@pytest.mark.parametrize("period", [pb.PERIOD_WEEK, pb.PERIOD_ALL_TIME])
async def test_without_catalog_every_other_figure_is_there(
    harness: Any, seeded: dict[str, Any], period: int
) -> None:
    """Catalog UNIMPLEMENTED: no genres and no audio features, everything else unchanged."""
    today = datetime.now(UTC).astimezone(ZONE).date()
    expected = brute_force(
        seeded["plays"], harness.catalog, PERIODS[period], today, with_catalog=False
    )
    await check_period(
        harness.without_catalog.stub, seeded["user_id"], period, expected, with_catalog=False
    )
    top = await harness.without_catalog.stub.ListTopTracks(
        pb.TopItemsRequest(user_id=seeded["user_id"], period=period, limit=10)
    )
    # Hydrated from the plays' own names and ids.
    by_id = {t["id"]: t for t in seeded["tracks"]}
    for track in top.tracks:
        if track.spotify_id:
            assert track.name == by_id[track.spotify_id]["name"]
            assert track.artists[0].name == by_id[track.spotify_id]["artist"][1]
            assert track.external_url == f"https://open.spotify.com/track/{track.spotify_id}"


async def test_top_lists_hydrate_from_the_catalog(harness: Any, seeded: dict[str, Any]) -> None:
    """Known items carry the catalog's fields; unknown ones the plays' names."""
    stub, user_id = harness.with_catalog.stub, seeded["user_id"]
    request = pb.TopItemsRequest(user_id=user_id, period=pb.PERIOD_ALL_TIME, limit=100)
    tracks = (await stub.ListTopTracks(request)).tracks
    known = [t for t in tracks if t.spotify_id in harness.catalog.tracks]
    assert known and all(t.id == f"cat{t.spotify_id}" for t in known)
    unknown = [t for t in tracks if t.spotify_id and t.spotify_id not in harness.catalog.tracks]
    assert unknown and all(t.id == t.spotify_id for t in unknown)
    artists = (await stub.ListTopArtists(request)).artists
    assert any(a.genres for a in artists)
    albums = (await stub.ListTopAlbums(request)).albums
    assert any(a.album_type == "album" for a in albums)


async def test_recommendations(harness: Any, seeded: dict[str, Any]) -> None:
    """Seeds from the snapshot; the catalog's candidates; own favourites without a catalog."""
    user_id = seeded["user_id"]
    overview = await harness.with_catalog.stub.GetOverview(
        pb.PeriodRequest(user_id=user_id, period=pb.PERIOD_ALL_TIME)
    )
    for seed_type, (artists, tracks, genres) in {
        "artists": (5, 0, 0),
        "tracks": (0, 5, 0),
        "genres": (0, 0, 5),
        "mixed": (2, 2, 1),
    }.items():
        response = await harness.with_catalog.stub.GetRecommendations(
            pb.GetRecommendationsRequest(user_id=user_id, limit=7, seed_type=seed_type)
        )
        assert 0 < len(response.tracks) <= 7
        assert response.seed_info["type"] == seed_type
        assert response.seed_info["top_artist"] == overview.top_artists[0].name
        assert response.seed_info["top_genre"] == overview.top_genres[0].name
        sent = harness.catalog.recommend_requests[-1]
        assert len(sent.seed_artist_ids) == artists
        assert len(sent.seed_track_ids) == tracks
        assert len(sent.seed_genres) == genres
        assert (
            sent.seed_artist_ids[: min(artists, 1)]
            == [overview.top_artists[0].spotify_id][: min(artists, 1)]
        )
        assert sent.HasField("target_features")
    fallback = await harness.without_catalog.stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id=user_id, limit=5, seed_type="mixed")
    )
    assert 0 < len(fallback.tracks) <= 5
    # Nothing heard in the last 30 days is recommended.
    month = await harness.without_catalog.stub.ListTopTracks(
        pb.TopItemsRequest(user_id=user_id, period=pb.PERIOD_MONTH, limit=100)
    )
    recent = {t.spotify_id or t.name for t in month.tracks}
    assert not {t.spotify_id or t.name for t in fallback.tracks} & recent
    # A user without plays gets nothing.
    empty = await harness.with_catalog.stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id="nobody", limit=5, seed_type="mixed")
    )
    assert list(empty.tracks) == [] and dict(empty.seed_info) == {}


async def test_bad_arguments_are_refused(harness: Any) -> None:
    """Unknown periods, limits out of range and unknown seed types: INVALID_ARGUMENT."""
    stub = harness.with_catalog.stub
    calls = [
        stub.GetOverview(pb.PeriodRequest(user_id="u", period=99)),
        stub.ListTopTracks(pb.TopItemsRequest(user_id="u", period=1, limit=0)),
        stub.ListTopArtists(pb.TopItemsRequest(user_id="u", period=1, limit=101)),
        stub.GetRecommendations(pb.GetRecommendationsRequest(user_id="u", limit=5, seed_type="x")),
        stub.GetRecommendations(
            pb.GetRecommendationsRequest(user_id="u", limit=51, seed_type="mixed")
        ),
        stub.GetOverview(pb.PeriodRequest(user_id="", period=1)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_other_users_see_nothing(harness: Any, seeded: dict[str, Any]) -> None:
    """Another user's overview is empty even with the first user's history rolled up."""
    overview = await harness.with_catalog.stub.GetOverview(
        pb.PeriodRequest(user_id=f"other_{uuid.uuid4().hex[:6]}", period=pb.PERIOD_ALL_TIME)
    )
    assert overview.total_tracks_played == 0 and not overview.top_tracks
    assert sum(h.plays for h in overview.hourly_distribution) == 0


async def test_concurrent_refreshes_compute_once(harness: Any, seeded: dict[str, Any]) -> None:
    """Eight refreshes of one period at once: one computation, one result for all."""
    analytics = harness.with_catalog
    before = analytics.computations
    responses = await asyncio.gather(
        *(
            analytics.stub.RefreshSnapshots(
                pb.PeriodRequest(user_id=seeded["user_id"], period=pb.PERIOD_QUARTER)
            )
            for _ in range(8)
        )
    )
    assert analytics.computations - before == 1
    assert len({r.computed_at.ToDatetime() for r in responses}) == 1
    assert list(responses[0].periods) == [pb.PERIOD_QUARTER]
    everything = await analytics.stub.RefreshSnapshots(
        pb.PeriodRequest(user_id=seeded["user_id"], period=pb.PERIOD_ALL_TIME)
    )
    assert list(everything.periods) == list(PERIODS)
    # Reads afterwards serve the stored snapshots: no more computations.
    before = analytics.computations
    await asyncio.gather(
        *(
            analytics.stub.GetOverview(pb.PeriodRequest(user_id=seeded["user_id"], period=p))
            for p in PERIODS
            for _ in range(3)
        )
    )
    assert analytics.computations == before


async def test_a_reader_gets_the_stored_snapshot_while_a_recomputation_takes_long(
    harness: Any,
) -> None:
    """Data changed while another replica holds the snapshot's computation: a reader waits
    at most `stale_after_seconds` (2 s) and then gets the stored snapshot, not a timeout."""
    analytics = harness.with_catalog
    table = seed_catalog(harness.catalog)
    user_id = f"user_{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    track = table["tracks"][0]
    first = [make_play(user_id, track, now - timedelta(minutes=10 + n), 200_000) for n in range(3)]
    await harness.store(first, analytics)
    await harness.wait_rolled_up(analytics, user_id)
    request = pb.PeriodRequest(user_id=user_id, period=pb.PERIOD_WEEK)
    stored = await analytics.stub.GetOverview(request)
    assert stored.total_tracks_played == 3

    # Another replica is computing this snapshot (its lock is held) when new plays arrive.
    lock = f"analytics:snapshot-lock:{user_id}:week"
    await analytics.redis.set(lock, "another-replica", px=20_000)
    try:
        more = [
            make_play(user_id, track, now - timedelta(minutes=1 + n), 200_000) for n in range(2)
        ]
        await harness.store(more, analytics)
        await harness.wait_rolled_up(analytics, user_id)
        started = asyncio.get_running_loop().time()
        stale = await analytics.stub.GetOverview(request)
        waited = asyncio.get_running_loop().time() - started
        assert stale.total_tracks_played == 3 and stale.computed_at == stored.computed_at
        assert 1.5 < waited < 6, waited
    finally:
        await analytics.redis.delete(lock)
    fresh = await analytics.stub.GetOverview(request)
    assert fresh.total_tracks_played == 5
