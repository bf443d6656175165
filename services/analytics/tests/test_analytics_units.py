"""Pure parts of analytics: periods and labels, day rollups, merging and identity, percentages."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from analytics_service.catalog_client import _Lookup
from analytics_service.periods import Granularity, Period
from analytics_service.rollups import DayBuilder, Merged, PlayFacts, from_document, to_document
from analytics_service.snapshots import current_streak, genre_percentages


def facts(
    hour: int,
    track_id: str = "t1",
    *,
    name: str = "Song",
    artist: str = "Band",
    artist_id: str = "a1",
    album: str = "Record",
    album_id: str = "l1",
    ms: int = 1000,
    minute: int = 0,
) -> PlayFacts:
    return PlayFacts(
        local_time=datetime(2025, 1, 15, hour, minute, tzinfo=UTC),
        ms=ms,
        track_id=track_id,
        track_name=name,
        artist_id=artist_id,
        artist_name=artist,
        album_id=album_id,
        album_name=album,
        album_image="",
    )


def test_windows_and_granularity() -> None:
    today = date(2025, 3, 10)
    assert Period.WEEK.window(today) == (date(2025, 3, 4), today)
    assert Period.YEAR.window(today)[0] == today - timedelta(days=364)
    assert Period.ALL_TIME.window(today) == (None, today)
    assert Period.QUARTER.granularity is Granularity.WEEK
    assert Granularity.WEEK.label(date(2025, 1, 15)) == "2025-W03"
    assert Granularity.WEEK.label(date(2024, 12, 30)) == "2025-W01"
    assert Granularity.MONTH.labels(date(2024, 11, 30), date(2025, 2, 1)) == [
        "2024-11",
        "2024-12",
        "2025-01",
        "2025-02",
    ]
    weeks = Granularity.WEEK.labels(date(2025, 1, 1), date(2025, 1, 20))
    assert weeks == ["2025-W01", "2025-W02", "2025-W03", "2025-W04"]
    assert len(Granularity.DAY.labels(date(2025, 2, 27), date(2025, 3, 2))) == 4


def test_day_rollup_is_the_same_whatever_the_order() -> None:
    plays = [facts(h % 24, f"t{h % 5}", minute=h % 60, ms=h) for h in range(200)]
    first, second = DayBuilder(), DayBuilder()
    for play in plays:
        first.add(play)
    shuffled = plays[:]
    random.Random(3).shuffle(shuffled)
    for play in shuffled:
        second.add(play)
    assert first.rollup() == second.rollup()
    rollup = first.rollup()
    assert rollup["plays"] == 200 and sum(rollup["hours"]) == 200
    assert rollup["weekdays"] == [0, 0, 200, 0, 0, 0, 0]  # 2025-01-15 is a Wednesday
    assert from_document(to_document(rollup)) == rollup


def test_name_only_plays_merge_into_the_id_keyed_item() -> None:
    day = DayBuilder()
    day.add(facts(10, "t1", name="Song", artist="Band", artist_id="a1", album_id="l1"))
    day.add(facts(11, "", name=" song ", artist="BAND", artist_id="", album="Record", album_id=""))
    day.add(facts(12, "", name="Other", artist="Nobody", artist_id="", album="", album_id=""))
    merged = Merged()
    merged.add(day.rollup())
    resolved = merged.resolve()
    assert [(t.spotify_id, t.plays) for t in resolved.tracks] == [("t1", 2), ("", 1)]
    assert [(a.spotify_id, a.plays) for a in resolved.artists] == [("a1", 2), ("", 1)]
    # The name-only album of Band matches album l1 by names; "Other" has no album at all.
    assert [(a.spotify_id, a.plays) for a in resolved.albums] == [("l1", 2)]


def test_merging_days_adds_up() -> None:
    days = []
    for offset in range(3):
        day = DayBuilder()
        for n in range(5 + offset):
            day.add(facts(n, f"t{n % 3}", ms=100))
        days.append(day.rollup())
    merged = Merged()
    for rollup in days:
        merged.add(rollup)
    assert merged.plays == 18 and merged.ms == 1800
    assert sum(t.plays for t in merged.resolve().tracks) == 18


@pytest.mark.parametrize(
    "counts",
    [[1, 1, 1], [5, 3, 2], [1], [7, 0], [2, 2, 2, 2, 2, 2, 2], [123, 45, 6, 7, 890, 1, 1]],
)
def test_genre_percentages_sum_to_exactly_100(counts: list[int]) -> None:
    shares = genre_percentages([(str(i), count) for i, count in enumerate(counts)])
    assert round(sum(shares), 6) == 100.0
    total = sum(counts)
    for share, count in zip(shares, counts, strict=True):
        assert abs(share - count * 100 / total) <= 0.1 + 1e-9


def test_streak_ends_today_or_yesterday() -> None:
    today = date(2025, 1, 10)
    days = {(today - timedelta(days=n)).isoformat() for n in (1, 2, 3, 5)}
    assert current_streak(days, today) == 3
    assert current_streak(days | {today.isoformat()}, today) == 4
    assert current_streak({(today - timedelta(days=2)).isoformat()}, today) == 0
    assert current_streak(set(), today) == 0


class _Asked:
    """A fake catalog fetch: records every call, answers after a pause, can fail."""

    def __init__(self, answers: dict[str, str], *, complete: bool = True) -> None:
        self.answers = answers
        self.complete = complete
        self.calls: list[list[str]] = []

    async def __call__(self, ids: list[str]) -> tuple[dict[str, str], bool]:
        self.calls.append(list(ids))
        await asyncio.sleep(0.05)
        return {i: self.answers[i] for i in ids if i in self.answers}, self.complete


async def test_lookup_shares_asks_in_flight_and_remembers_only_settled_answers() -> None:
    asked = _Asked({"a": "settled", "b": "", "c": "settled"})
    lookup = _Lookup(asked, settled=bool, items=100, settled_seconds=60, recent_seconds=0)

    first, second = await asyncio.gather(lookup.get(["a", "b", "x"]), lookup.get(["a", "c", "x"]))

    assert first == {"a": "settled", "b": ""} and second == {"a": "settled", "c": "settled"}
    # "a" and "x" were in flight when the second caller came: asked once, shared.
    assert sorted(map(sorted, asked.calls)) == [["a", "b", "x"], ["c"]]

    asked.calls.clear()
    assert await lookup.get(["a", "b", "c", "x"]) == {"a": "settled", "b": "", "c": "settled"}
    # Settled answers are remembered; "" (not settled) and unknown ids are asked again.
    assert asked.calls == [["b", "x"]]


async def test_lookup_remembers_nothing_from_a_failed_fetch_even_briefly() -> None:
    asked = _Asked({"a": "settled-but-partial"}, complete=False)
    lookup = _Lookup(
        asked, settled=lambda v: False, items=100, settled_seconds=60, recent_seconds=60
    )
    await lookup.get(["a", "x"])
    await lookup.get(["a", "x"])
    assert asked.calls == [["a", "x"], ["a", "x"]]

    asked.complete = True
    await lookup.get(["a", "x"])
    await lookup.get(["a", "x"])
    # With recent_seconds, a complete answer (unknown "x" too) is reused for a while.
    assert asked.calls == [["a", "x"], ["a", "x"], ["a", "x"]]
