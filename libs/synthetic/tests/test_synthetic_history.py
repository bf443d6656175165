"""The listening-history generator: determinism, ordering, rhythm, diversity, speed."""

from __future__ import annotations

import inspect
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest

from echostats_synthetic import (
    ListenerTaste,
    generate_catalog,
    generate_history,
    listener_seed,
    recent_plays,
)
from echostats_synthetic.history import from_epoch_ms, to_epoch_ms
from echostats_synthetic.ids import stable_seed

START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog():
    """The simulator's default catalog (cached per process)."""
    return generate_catalog()


@pytest.fixture(scope="module")
def year(catalog):
    """A year of plays of one listener."""
    return list(generate_history(catalog, seed=11, start=START, end=YEAR_END))


def test_same_seed_same_plays(catalog) -> None:
    end = START + timedelta(days=20)
    first = list(generate_history(catalog, seed=5, start=START, end=end))
    second = list(generate_history(catalog, seed=5, start=START, end=end))
    other = list(generate_history(catalog, seed=6, start=START, end=end))
    assert first == second
    assert [p.track.id for p in first] != [p.track.id for p in other]


def test_windows_agree_where_they_overlap(catalog) -> None:
    middle = START + timedelta(days=9, hours=13, minutes=7)
    end = START + timedelta(days=20)
    whole = list(generate_history(catalog, seed=5, start=START, end=end))
    head = list(generate_history(catalog, seed=5, start=START, end=middle))
    tail = list(generate_history(catalog, seed=5, start=middle, end=end))
    assert head + tail == whole
    assert head and tail


def test_plays_are_ordered_inside_the_window_and_never_overlap(year) -> None:
    assert len(year) > 5_000
    assert all(p.played_at.tzinfo is UTC for p in year)
    assert year[0].played_at >= START and year[-1].played_at < YEAR_END
    for before, after in pairwise(year):
        assert before.played_at < after.played_at
        # played_at is when a play ended: the next one starts after it.
        assert after.played_at - timedelta(milliseconds=after.ms_played) >= before.played_at


def test_it_is_a_lazy_generator_and_checks_arguments_at_once(catalog) -> None:
    assert inspect.isgenerator(generate_history(catalog, seed=1, start=START, end=YEAR_END))
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_history(catalog, seed=1, start=datetime(2025, 1, 1), end=YEAR_END)
    with pytest.raises(ValueError):
        generate_history(catalog, seed=1, start=START, end=YEAR_END, plays_per_day=0)
    assert list(generate_history(catalog, seed=1, start=YEAR_END, end=START)) == []


def test_daily_rhythm_quiet_nights_evening_peak(year) -> None:
    hours = Counter(p.played_at.hour for p in year)
    night = sum(hours[h] for h in (2, 3, 4))
    evening = sum(hours[h] for h in (19, 20, 21))
    assert evening > 8 * night
    assert hours[21] > hours[14] > hours[4]
    assert night / len(year) < 0.05


def test_weekday_and_weekend_differ(year) -> None:
    def early_share(plays) -> float:
        return sum(6 <= p.played_at.hour < 9 for p in plays) / len(plays)

    weekdays = [p for p in year if p.played_at.weekday() < 5]
    weekends = [p for p in year if p.played_at.weekday() >= 5]
    # The weekday commute peak; weekends start late.
    assert early_share(weekdays) > 2 * early_share(weekends)


def test_rhythm_follows_the_listeners_time_zone(catalog) -> None:
    tokyo = timezone(timedelta(hours=9))
    plays = list(
        generate_history(catalog, seed=3, start=START, end=START + timedelta(days=90), tz=tokyo)
    )
    local = Counter(p.played_at.astimezone(tokyo).hour for p in plays)
    assert sum(local[h] for h in (19, 20, 21)) > 8 * sum(local[h] for h in (2, 3, 4))


def test_sessions_are_runs_of_back_to_back_plays(year) -> None:
    gaps = [
        (b.played_at - timedelta(milliseconds=b.ms_played) - a.played_at).total_seconds()
        for a, b in pairwise(year)
    ]
    back_to_back = sum(g <= 2 for g in gaps) / len(gaps)
    long_breaks = sum(g >= 300 for g in gaps) / len(gaps)
    assert back_to_back > 0.6
    assert 0.05 < long_breaks < 0.4


def test_repeat_listening_is_skewed_and_artists_are_diverse(year) -> None:
    artists = Counter(p.track.artists[0].id for p in year)
    tracks = Counter(p.track.id for p in year)
    assert len(artists) >= 200  # several hundred artists over a year
    top_artist_share = artists.most_common(1)[0][1] / len(year)
    top_ten_share = sum(n for _, n in artists.most_common(10)) / len(year)
    assert 0.04 < top_artist_share < 0.35
    assert top_ten_share > 0.3
    assert tracks.most_common(1)[0][1] >= 50  # a favourite song, played again and again
    assert sum(1 for n in tracks.values() if n == 1) > 200  # and a long tail


def test_skips_and_gap_days(year) -> None:
    skipped = [p for p in year if p.skipped]
    assert 0.08 < len(skipped) / len(year) < 0.25
    assert all(0 < p.ms_played <= p.track.duration_ms for p in year)
    assert any(p.ms_played < 30_000 for p in skipped)
    days = {p.played_at.date() for p in year}
    assert 300 <= len(days) < 365


def test_contexts_and_records(catalog, year) -> None:
    taste = ListenerTaste(catalog, seed=11)
    playlist_uris = {p.uri for p in taste.playlists()}
    kinds = Counter(p.context.type if p.context else None for p in year)
    assert set(kinds) == {"album", "artist", "playlist", None}
    for play in year[:2_000]:
        track = catalog.tracks[play.track.id]
        assert play.track.duration_ms == track.duration_ms
        assert [a.id for a in play.track.artists] == list(track.artist_ids)
        artist_id, artist_name = play.track.artists[0]
        assert catalog.artists[artist_id].name == artist_name
        assert play.track.album.id == track.album_id
        assert play.track.album.image_url.startswith("https://i.scdn.co/image/ab67")
        if play.context and play.context.type == "playlist":
            assert play.context.uri in playlist_uris
        if play.context and play.context.type == "album":
            assert play.context.uri == f"spotify:album:{track.album_id}"


def test_whole_seconds_and_minimum_play_length(catalog) -> None:
    end = START + timedelta(days=30)
    plays = list(generate_history(catalog, seed=2, start=START, end=end, with_ms=False))
    assert all(p.played_at.microsecond == 0 for p in plays)
    assert all(a.played_at < b.played_at for a, b in pairwise(plays))
    listed = list(generate_history(catalog, seed=2, start=START, end=end, min_ms_played=30_000))
    assert listed and all(p.ms_played >= 30_000 for p in listed)


def test_recent_plays_is_the_tail_of_the_history(catalog) -> None:
    before = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
    recent = recent_plays(catalog, seed=8, before=before, count=30)
    window = list(generate_history(catalog, seed=8, start=before - timedelta(days=30), end=before))
    assert len(recent) == 30
    assert recent == window[-30:]
    assert recent_plays(catalog, seed=8, before=before, count=0) == []


def test_taste_is_deterministic(catalog) -> None:
    first = ListenerTaste(catalog, seed=4)
    again = ListenerTaste(catalog, seed=4)
    assert first.favourite_artist_ids(20) == again.favourite_artist_ids(20)
    assert first.favourite_track_ids(20) == again.favourite_track_ids(20)
    assert first.playlists() == again.playlists()
    assert len(set(first.favourite_track_ids(50))) == 50
    assert len(first.playlists()) == 6
    assert ListenerTaste(catalog, seed=5).favourite_artist_ids(5) != first.favourite_artist_ids(5)


def test_listener_seed_and_epoch_helpers() -> None:
    assert listener_seed("demo_user") == stable_seed("listener", "demo_user")
    assert listener_seed("demo_user") != listener_seed("sim_alice")
    moment = datetime(2026, 4, 20, 10, 0, 0, 123_000, tzinfo=UTC)
    assert to_epoch_ms(moment) == 1_776_679_200_123
    assert from_epoch_ms(to_epoch_ms(moment)) == moment


def test_hundred_thousand_plays_stream_fast(catalog) -> None:
    history = generate_history(
        catalog, seed=9, start=START, end=START + timedelta(days=3_000), plays_per_day=60
    )
    started = time.perf_counter()
    count = 0
    for _ in history:
        count += 1
        if count == 100_000:
            break
    elapsed = time.perf_counter() - started
    assert count == 100_000
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
