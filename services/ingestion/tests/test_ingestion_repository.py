"""The plays and sync-state repositories on real FerretDB: dedup, filters, paging, isolation."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from echostats_devstack.pytest_plugin import FerretDBServer
from echostats_platform.mongo import create_mongo_client
from echostats_platform.settings import CommonSettings
from ingestion_service.models import Play, PlayQuery, PlaySource, PlayTrack
from ingestion_service.repository import PlayRepository, SyncStateRepository, play_document

BASE = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def database(ferretdb_server: FerretDBServer) -> AsyncIterator[AsyncDatabase]:
    """A database of this module's own on the session's FerretDB (dropped at the end)."""
    settings = CommonSettings(mongodb_uri=ferretdb_server.uri)
    mongo = create_mongo_client(settings, app_name="ingestion-repository-tests")
    name = f"ingestion_repo_test_{uuid.uuid4().hex[:10]}"
    try:
        yield mongo[name]
    finally:
        await mongo.drop_database(name)
        await mongo.close()


@pytest.fixture(scope="module")
async def plays(database: AsyncDatabase) -> PlayRepository:
    """The plays repository with its indexes."""
    repository = PlayRepository(database)
    await repository.ensure_indexes()
    return repository


def play(
    user_id: str,
    track_id: str,
    played_at: datetime,
    *,
    artist: str = "Radiohead",
    name: str | None = None,
    source: PlaySource = PlaySource.API,
) -> Play:
    """A play with plausible metadata."""
    return Play(
        user_id=user_id,
        track=PlayTrack(
            spotify_id=track_id,
            name=name or f"Song {track_id}",
            artist_name=artist,
            album_name="Kid A",
            duration_ms=250_000,
            album_image_url="https://i.scdn.co/image/x",
            artist_ids=("a1",),
            album_id="al1",
        ),
        played_at=played_at,
        ms_played=245_000,
        source=source,
        context_type="album",
        context_uri="spotify:album:al1",
    )


def user() -> str:
    """A fresh user id, so tests share the collection without sharing data."""
    return f"user-{uuid.uuid4().hex[:10]}"


async def test_the_same_play_is_stored_once(plays: PlayRepository) -> None:
    u = user()
    batch = [play(u, f"t{i}", BASE + timedelta(minutes=i)) for i in range(5)]

    first = await plays.insert_plays(batch)
    again = await plays.insert_plays(batch)
    mixed = await plays.insert_plays([*batch[:2], play(u, "t9", BASE + timedelta(hours=1))])

    assert (first.inserted, first.already_present) == (5, 0)
    assert (first.first_inserted_at, first.last_inserted_at) == (BASE, BASE + timedelta(minutes=4))
    assert (again.inserted, again.already_present) == (0, 5)
    assert again.first_inserted_at is None
    assert (mixed.inserted, mixed.already_present) == (1, 2)
    assert await plays.count_for_user(u) == 6


async def test_a_live_play_and_its_export_row_are_one_play(plays: PlayRepository) -> None:
    u = user()
    live = play(u, "t1", BASE.replace(second=7, microsecond=812_000))
    export = play(u, "t1", BASE.replace(second=7), source=PlaySource.IMPORT_EXTENDED)

    assert (await plays.insert_plays([live])).inserted == 1
    assert (await plays.insert_plays([export])).already_present == 1
    page = await plays.list_plays(PlayQuery(user_id=u))
    # The first report wins, with its millisecond timestamp.
    assert page.total == 1
    assert page.plays[0].play.played_at == live.played_at
    assert page.plays[0].play.source is PlaySource.API


async def test_repeats_inside_one_batch_count_as_present(plays: PlayRepository) -> None:
    u = user()
    one = play(u, "t1", BASE)
    outcome = await plays.insert_plays(
        [one, one, play(u, "t1", BASE + timedelta(milliseconds=300))]
    )
    assert (outcome.inserted, outcome.already_present) == (1, 2)


async def test_overlapping_concurrent_writes_store_each_play_once(plays: PlayRepository) -> None:
    u = user()
    everything = [play(u, f"t{i % 7}", BASE + timedelta(minutes=i)) for i in range(120)]
    # Four writers with overlapping windows, as overlapping syncs or a sync plus an import.
    windows = [everything[0:60], everything[30:90], everything[50:120], everything[::3]]

    outcomes = await asyncio.gather(*(plays.insert_plays(w) for w in windows))

    assert sum(o.inserted for o in outcomes) == 120
    assert sum(o.inserted + o.already_present for o in outcomes) == sum(map(len, windows))
    assert await plays.count_for_user(u) == 120


async def test_history_pages_newest_first_with_totals(plays: PlayRepository) -> None:
    u = user()
    await plays.insert_plays([play(u, f"t{i}", BASE + timedelta(minutes=i)) for i in range(25)])

    first = await plays.list_plays(PlayQuery(user_id=u, page=1, page_size=10))
    third = await plays.list_plays(PlayQuery(user_id=u, page=3, page_size=10))
    beyond = await plays.list_plays(PlayQuery(user_id=u, page=4, page_size=10))

    assert first.total == third.total == beyond.total == 25
    assert [p.play.track.spotify_id for p in first.plays] == [f"t{i}" for i in range(24, 14, -1)]
    assert [p.play.track.spotify_id for p in third.plays] == [f"t{i}" for i in range(4, -1, -1)]
    assert beyond.plays == []
    stored = first.plays[0]
    assert stored.id == f"{u}:t24:{int((BASE + timedelta(minutes=24)).timestamp())}"
    assert stored.play.played_at.tzinfo is not None
    assert stored.play.track.artist_ids == ("a1",)
    assert stored.play.context_uri == "spotify:album:al1"


async def test_filters_are_case_insensitive_substrings(plays: PlayRepository) -> None:
    u = user()
    await plays.insert_plays(
        [
            play(u, "t1", BASE, artist="Radiohead", name="Everything In Its Right Place"),
            play(u, "t2", BASE + timedelta(minutes=1), artist="AC/DC", name="T.N.T."),
            play(u, "t3", BASE + timedelta(minutes=2), artist="Björk", name="Jóga"),
            play(u, "t4", BASE + timedelta(minutes=3), artist="Radiohead", name="Idioteque"),
            play(u, "t5", BASE + timedelta(minutes=4), artist="Portishead", name="Roads (Live)"),
        ]
    )

    async def ids(**filters: object) -> list[str]:
        page = await plays.list_plays(PlayQuery(user_id=u, **filters))  # type: ignore[arg-type]
        return [p.play.track.spotify_id for p in page.plays]

    assert await ids(artist="radiohead") == ["t4", "t1"]
    assert await ids(artist="HEAD") == ["t5", "t4", "t1"]
    assert await ids(artist="bJÖrk") == ["t3"]
    assert await ids(track="right place") == ["t1"]
    # Regex specials match literally (a `.` is not "any character").
    assert await ids(track="t.n.t.") == ["t2"]
    assert await ids(track="t.n") == ["t2"]
    assert await ids(track="(live)") == ["t5"]
    assert await ids(artist="ac/dc") == ["t2"]
    assert await ids(artist="r.dio") == []
    assert await ids(artist="radiohead", track="idio") == ["t4"]


async def test_time_bounds_are_inclusive(plays: PlayRepository) -> None:
    u = user()
    await plays.insert_plays([play(u, f"t{i}", BASE + timedelta(hours=i)) for i in range(6)])

    page = await plays.list_plays(
        PlayQuery(user_id=u, start=BASE + timedelta(hours=1), end=BASE + timedelta(hours=3))
    )
    after = await plays.list_plays(PlayQuery(user_id=u, start=BASE + timedelta(hours=4)))

    assert [p.play.track.spotify_id for p in page.plays] == ["t3", "t2", "t1"]
    assert page.total == 3
    assert after.total == 2


async def test_users_never_see_each_others_plays(plays: PlayRepository) -> None:
    alice, bob = user(), user()
    # The same track at the same moment is a different play for another user.
    await plays.insert_plays([play(alice, "t1", BASE), play(alice, "t2", BASE + timedelta(1))])
    bob_outcome = await plays.insert_plays([play(bob, "t1", BASE)])

    assert bob_outcome.inserted == 1
    assert (await plays.list_plays(PlayQuery(user_id=alice))).total == 2
    bobs = await plays.list_plays(PlayQuery(user_id=bob, artist="radio"))
    assert bobs.total == 1 and bobs.plays[0].play.user_id == bob


async def test_the_cursor_only_moves_forward(database: AsyncDatabase) -> None:
    state = SyncStateRepository(database)
    u = user()

    assert await state.get_cursor(u) is None
    await state.advance_cursor(u, 2_000)
    await state.advance_cursor(u, 1_000)  # a late, older page must not move it back
    assert await state.get_cursor(u) == 2_000
    for value in (5_000, 3_000, 4_000):
        await state.advance_cursor(u, value)
    assert await state.get_cursor(u) == 5_000


async def test_the_demo_marker_remembers_its_job(database: AsyncDatabase) -> None:
    state = SyncStateRepository(database)
    u = user()

    assert await state.demo_history_marker(u) is None
    await state.advance_cursor(u, 1)  # other state of the user does not set the marker
    assert await state.demo_history_marker(u) is None
    await state.mark_demo_history_seeded(u, job_id="j1", counters={"imported": 3})
    marker = await state.demo_history_marker(u)

    assert marker is not None and marker.job_id == "j1"
    assert marker.counters == {"imported": 3}
    assert await state.get_cursor(u) == 1


# -- the day-bucket read model ---------------------------------------------------------------


async def test_pages_from_day_buckets_match_the_plays_collection(
    plays: PlayRepository, database: AsyncDatabase
) -> None:
    u = user()
    rng = random.Random(7)
    moments = sorted({BASE + timedelta(seconds=rng.randrange(0, 20 * 86400)) for _ in range(300)})
    await plays.insert_plays([play(u, f"t{i % 40}", at) for i, at in enumerate(moments)])

    queries = [
        PlayQuery(user_id=u, page=page, page_size=size)
        for size in (7, 100)
        for page in (1, 2, 300 // size, 300 // size + 1)
    ]
    for _ in range(5):
        start = BASE + timedelta(seconds=rng.randrange(0, 20 * 86400))
        end = start + timedelta(seconds=rng.randrange(0, 6 * 86400))
        queries.append(PlayQuery(user_id=u, page=rng.randint(1, 3), page_size=9, start=start))
        queries.append(PlayQuery(user_id=u, page=rng.randint(1, 3), page_size=9, end=end))
        queries.append(PlayQuery(user_id=u, page=1, page_size=20, start=start, end=end))

    for artist in ("", "ARTIST T1", "t3"):
        queries.append(PlayQuery(user_id=u, page=1, page_size=50, artist=artist or None))
        queries.append(PlayQuery(user_id=u, page=2, page_size=5, track=artist or "T2"))

    # The truth: the `plays` collection itself, filtered and ordered here.
    documents = [doc async for doc in database["plays"].find({"user_id": u})]
    for query in queries:
        page = await plays.list_plays(query)
        truth = sorted(
            (
                doc
                for doc in documents
                if (query.start is None or doc["played_at"] >= query.start)
                and (query.end is None or doc["played_at"] <= query.end)
                and (
                    not query.artist or query.artist.lower() in doc["track"]["artist_name"].lower()
                )
                and (not query.track or query.track.lower() in doc["track"]["name"].lower())
            ),
            key=lambda doc: (doc["played_at"], doc["_id"]),
            reverse=True,
        )
        skip = (query.page - 1) * query.page_size
        assert page.total == len(truth), query
        assert [p.id for p in page.plays] == [
            d["_id"] for d in truth[skip : skip + query.page_size]
        ]


async def test_a_batch_that_died_between_its_writes_is_repaired(
    plays: PlayRepository, database: AsyncDatabase
) -> None:
    u = user()
    batch = [play(u, f"t{i}", BASE + timedelta(hours=i)) for i in range(30)]
    # As if the worker died after writing `plays` and before writing the buckets.
    await database["plays"].insert_many([play_document(p, BASE) for p in batch[:20]])
    assert (await plays.list_plays(PlayQuery(user_id=u))).total == 0

    redelivered = await plays.insert_plays(batch)

    assert (redelivered.inserted, redelivered.already_present) == (10, 20)
    page = await plays.list_plays(PlayQuery(user_id=u, page_size=100))
    assert page.total == 30
    assert {p.id for p in page.plays} == {p.id for p in batch}


async def test_a_wrong_day_count_is_corrected_by_the_next_read(
    plays: PlayRepository, database: AsyncDatabase
) -> None:
    u = user()
    await plays.insert_plays([play(u, f"t{i}", BASE + timedelta(minutes=i)) for i in range(12)])
    day = BASE.date().isoformat()
    await database["history_index"].update_one({"_id": u}, {"$set": {f"days.{day}": 3}})

    await plays.list_plays(PlayQuery(user_id=u, page_size=5))
    index = await database["history_index"].find_one({"_id": u})

    assert index is not None and index["days"][day] == 12
    page = await plays.list_plays(PlayQuery(user_id=u, page=2, page_size=5))
    assert page.total == 12
    assert [p.play.track.spotify_id for p in page.plays] == [f"t{i}" for i in range(6, 1, -1)]


@pytest.mark.parametrize("repair", [True, False], ids=["reading", "append-only"])
async def test_later_plays_of_a_day_go_in_new_parts_and_none_is_lost(
    plays: PlayRepository, database: AsyncDatabase, repair: bool
) -> None:
    u = user()
    day = BASE.date().isoformat()
    await plays.insert_plays([play(u, f"t{i}", BASE + timedelta(minutes=i)) for i in range(5)])
    # Two writers add different plays to the same existing day at once (sync and import).
    first = [play(u, f"a{i}", BASE + timedelta(minutes=10 + i)) for i in range(7)]
    second = [play(u, f"b{i}", BASE + timedelta(minutes=30 + i)) for i in range(9)]
    await asyncio.gather(
        plays.insert_plays(first, repair=repair), plays.insert_plays(second, repair=repair)
    )
    # Writing the same plays again adds no part, either way.
    await plays.insert_plays(first + second, repair=repair)
    await plays.insert_plays(first + second)

    parts = [doc["_id"] async for doc in database["history_days"].find({"user_id": u})]
    assert sorted(parts) == [f"{u}:{day}", f"{u}:{day}#1", f"{u}:{day}#2"]
    await plays.list_plays(PlayQuery(user_id=u))  # a racing writer's count is corrected
    page = await plays.list_plays(PlayQuery(user_id=u, page_size=100))
    assert page.total == 21 and len({p.id for p in page.plays}) == 21
    streamed = [p async for _, day_plays in plays.plays_by_day(u, None, None) for p in day_plays]
    assert {p.id for p in streamed} == {p.id for p in page.plays}


async def test_a_part_the_index_does_not_list_is_still_read(
    plays: PlayRepository, database: AsyncDatabase
) -> None:
    u = user()
    day = BASE.date().isoformat()
    await plays.insert_plays([play(u, f"t{i}", BASE + timedelta(minutes=i)) for i in range(4)])
    await plays.insert_plays([play(u, "late", BASE + timedelta(hours=1))])
    # As if the writer of part 1 died before recording it in the index.
    await database["history_index"].update_one(
        {"_id": u}, {"$set": {f"days.{day}": 4, f"parts.{day}": 1}}
    )

    page = await plays.list_plays(PlayQuery(user_id=u, page_size=10))

    assert [p.play.track.spotify_id for p in page.plays][:2] == ["late", "t3"]
    # The read corrected the day's count, as for any count a dead writer left behind.
    assert (await plays.list_plays(PlayQuery(user_id=u))).total == 5
    await plays.insert_plays([play(u, "later", BASE + timedelta(hours=2))])
    assert (await plays.list_plays(PlayQuery(user_id=u))).total == 6
