"""Unit tests of ingestion's pure logic: play identity, the cursor walk, page parsing, helpers.

No servers: these pin down the rules every component test relies on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import grpc
import pytest

from echostats_spotify import RateLimited, SpotifyUnauthorized, SpotifyUpstreamError
from ingestion_service.demo_history import months_before
from ingestion_service.identity import (
    from_unix_ms,
    parse_spotify_time,
    play_id,
    played_at_ms,
    played_at_seconds,
)
from ingestion_service.job_ledger import JobType
from ingestion_service.models import InsertOutcome
from ingestion_service.queues import JobMessage, Task
from ingestion_service.recently_played import (
    PAGE_LIMIT,
    CursorWalk,
    Direction,
    RecentlyPlayedPage,
    parse_page,
)
from ingestion_service.repository import fold
from ingestion_service.settings import IngestionSettings
from ingestion_service.sync_pipeline import _from_catalog_error, describe_failure, plural

# -- identity ---------------------------------------------------------------------------------


def test_play_id_is_user_track_and_whole_unix_seconds() -> None:
    ended = datetime(2025, 1, 15, 14, 32, 0, 999_000, tzinfo=UTC)
    assert (
        play_id("u1", "t1", ended)
        == f"u1:t1:{int(datetime(2025, 1, 15, 14, 32, tzinfo=UTC).timestamp())}"
    )


def test_live_sync_milliseconds_and_export_seconds_give_the_same_id() -> None:
    live = parse_spotify_time("2025-01-15T14:32:07.812Z")
    export = datetime(2025, 1, 15, 14, 32, 7, tzinfo=UTC)
    assert play_id("u", "t", live) == play_id("u", "t", export)
    # The next second is another play.
    assert play_id("u", "t", live) != play_id("u", "t", export + timedelta(seconds=1))


def test_identity_does_not_depend_on_the_time_zone_of_the_value() -> None:
    utc = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    cest = utc.astimezone(timezone(timedelta(hours=2)))
    assert play_id("u", "t", utc) == play_id("u", "t", cest)


def test_seconds_are_floored_and_exact() -> None:
    # Floats would round 0.9999995 s up on some values; integer arithmetic never does.
    moment = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    assert played_at_seconds(moment) == int(
        datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC).timestamp()
    )
    before_epoch = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert played_at_seconds(before_epoch) == -1


def test_identity_needs_aware_times_and_ids() -> None:
    with pytest.raises(ValueError):
        play_id("u", "t", datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        play_id("", "t", datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        play_id("u", "", datetime(2025, 1, 1, tzinfo=UTC))


def test_unix_ms_round_trips_and_spotify_times_parse_to_ms() -> None:
    moment = parse_spotify_time("2026-04-20T10:00:00.123456Z")
    assert moment == datetime(2026, 4, 20, 10, 0, 0, 123_000, tzinfo=UTC)
    assert from_unix_ms(played_at_ms(moment)) == moment
    assert parse_spotify_time("2026-04-20T10:00:00Z").tzinfo is not None


# -- page parsing ---------------------------------------------------------------------------


def _item(track_id: str | None, played_at: str, **extra: Any) -> dict[str, Any]:
    track = {
        "id": track_id,
        "type": "track",
        "name": f"Song {track_id}",
        "duration_ms": 200_000,
        "artists": [{"id": "a1", "name": "Main Artist"}, {"id": "a2", "name": "Guest"}],
        "album": {"id": "al1", "name": "Album", "images": [{"url": "https://img/640"}]},
    }
    return {"track": track, "played_at": played_at, **extra}


def test_parse_page_keeps_tracks_and_counts_what_it_skips() -> None:
    body = {
        "items": [
            _item(
                "t2",
                "2025-01-15T14:35:00.500Z",
                context={"type": "album", "uri": "spotify:album:al1"},
            ),
            _item(None, "2025-01-15T14:33:00.000Z"),  # a local file: no Spotify id
            _item("t1", "2025-01-15T14:32:00.250Z", context=None),
        ],
        "cursors": {"after": "1736951700500", "before": "1736951520250"},
    }
    page = parse_page(body, user_id="u1")
    assert [p.track.spotify_id for p in page.plays] == ["t2", "t1"]
    assert page.item_count == 3 and page.skipped == 1
    first = page.plays[0]
    assert first.track.artist_name == "Main Artist"
    assert first.track.artist_ids == ("a1", "a2")
    assert first.track.album_image_url == "https://img/640"
    assert first.ms_played == 200_000  # recently-played has no ms_played: the track's length
    assert first.source.value == "api"
    assert (first.context_type, first.context_uri) == ("album", "spotify:album:al1")
    assert page.plays[1].context_type is None
    assert page.cursor_after == 1736951700500 and page.cursor_before == 1736951520250
    assert page.newest_ms == played_at_ms(parse_spotify_time("2025-01-15T14:35:00.500Z"))
    # The skipped item's time counts for the page's range (it was seen).
    assert page.oldest_ms == played_at_ms(parse_spotify_time("2025-01-15T14:32:00.250Z"))


def test_parse_page_tolerates_an_empty_or_odd_body() -> None:
    for body in (None, {}, {"items": None, "cursors": None}, {"items": [], "cursors": {}}):
        page = parse_page(body, user_id="u")
        assert page.plays == [] and page.item_count == 0
        assert page.cursor_after is None and page.newest_ms is None


# -- the cursor walk ----------------------------------------------------------------------


def _page(times_ms: list[int], *, cursors: bool = True) -> RecentlyPlayedPage:
    newest = max(times_ms) if times_ms else None
    oldest = min(times_ms) if times_ms else None
    return RecentlyPlayedPage(
        plays=[],
        item_count=len(times_ms),
        skipped=0,
        cursor_after=newest if cursors else None,
        cursor_before=oldest if cursors else None,
        newest_ms=newest,
        oldest_ms=oldest,
    )


def _full(start: int) -> list[int]:
    return [start + i * 1000 for i in range(PAGE_LIMIT)]


def test_first_sync_walks_backward_from_now_until_a_short_page() -> None:
    walk = CursorWalk.start(None, first_sync_max_pages=10, max_forward_pages=100)
    assert walk.direction is Direction.BACKWARD
    assert walk.params() == {"limit": 50}  # no cursor: the newest plays
    walk.advance(_page(_full(200_000)))
    assert not walk.done and walk.params() == {"limit": 50, "before": 200_000}
    walk.advance(_page([150_000, 160_000]))
    assert walk.done and walk.stop_reason == "short page"
    assert walk.newest_ms == 200_000 + 49_000


def test_first_sync_stops_after_max_pages() -> None:
    walk = CursorWalk.start(None, first_sync_max_pages=2, max_forward_pages=100)
    walk.advance(_page(_full(900_000)))
    walk.advance(_page(_full(800_000)))
    assert walk.done and walk.stop_reason == "page limit reached" and walk.pages == 2


def test_forward_walk_follows_cursors_after_until_empty() -> None:
    walk = CursorWalk.start(1_000, first_sync_max_pages=5, max_forward_pages=100)
    assert walk.direction is Direction.FORWARD
    assert walk.params() == {"limit": 50, "after": 1_000}
    walk.advance(_page(_full(2_000)))
    assert walk.params() == {"limit": 50, "after": 2_000 + 49_000}
    walk.advance(_page(_full(60_000)))
    assert walk.params()["after"] == 60_000 + 49_000
    walk.advance(_page([]))
    assert walk.done and walk.stop_reason == "empty page"
    assert walk.newest_ms == 60_000 + 49_000


def test_forward_walk_falls_back_to_item_times_without_cursors() -> None:
    walk = CursorWalk.start(1_000, first_sync_max_pages=5, max_forward_pages=100)
    walk.advance(_page(_full(2_000), cursors=False))
    assert walk.params()["after"] == 2_000 + 49_000


def test_a_page_that_does_not_move_the_cursor_ends_the_walk() -> None:
    walk = CursorWalk.start(10_000_000, first_sync_max_pages=5, max_forward_pages=100)
    walk.advance(_page(_full(1_000)))  # a server answering old plays to `after`
    assert walk.done and walk.stop_reason == "cursor did not move"
    # The stored cursor never moves backward.
    assert walk.newest_ms == 10_000_000


def test_forward_walk_has_a_page_limit_too() -> None:
    walk = CursorWalk.start(0, first_sync_max_pages=5, max_forward_pages=3)
    for page in range(3):
        walk.advance(_page(_full(1_000 + page * 100_000)))
    assert walk.done and walk.stop_reason == "page limit reached"


# -- repository helpers -----------------------------------------------------------------


def test_fold_is_case_insensitive_beyond_ascii() -> None:
    assert fold("BJÖRK") == fold("björk")
    assert fold("Straße") == fold("STRASSE")


def test_insert_outcomes_add_up() -> None:
    early = datetime(2025, 1, 1, tzinfo=UTC)
    late = datetime(2025, 2, 1, tzinfo=UTC)
    total = InsertOutcome(1, 2, early, early) + InsertOutcome(3, 0, late, late) + InsertOutcome()
    assert (total.inserted, total.already_present) == (4, 2)
    assert (total.first_inserted_at, total.last_inserted_at) == (early, late)


# -- messages, settings, wording ------------------------------------------------------------


def test_job_messages_round_trip_and_refuse_garbage() -> None:
    message = JobMessage("j1", "u1", JobType.PERIODIC, Task.SYNC, request_id="r1")
    assert JobMessage.from_payload(message.to_payload()) == message
    # An import message without a task is the demo history (the only import task so far).
    legacy = JobMessage.from_payload({"job_id": "j", "user_id": "u", "job_type": "import"})
    assert legacy.task is Task.DEMO_HISTORY
    for bad in ({}, {"job_id": "j"}, {"job_id": "j", "user_id": "u", "job_type": "weekly"}):
        with pytest.raises(ValueError):
            JobMessage.from_payload(bad)


def test_months_before_clamps_the_day() -> None:
    assert months_before(datetime(2026, 3, 31, 12, tzinfo=UTC), 13) == datetime(
        2025, 2, 28, 12, tzinfo=UTC
    )
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 1) == datetime(2025, 12, 15, tzinfo=UTC)
    assert months_before(datetime(2026, 5, 1, tzinfo=UTC), 12) == datetime(2025, 5, 1, tzinfo=UTC)


def test_settings_defaults_and_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHOSTATS_ENVIRONMENT", "test")
    monkeypatch.setenv("ECHOSTATS_SYNC_INTERVAL_SECONDS", "60")
    monkeypatch.setenv("ECHOSTATS_IMPORT_CONCURRENCY", "2")
    monkeypatch.setenv("ECHOSTATS_QUEUE_CLAIM_IDLE_MS", "1500")
    monkeypatch.setenv("ECHOSTATS_QUEUE_HEARTBEAT_SECONDS", "0.5")
    settings = IngestionSettings()
    assert settings.sync_interval_seconds == 60
    assert settings.sync_concurrency == 4 and settings.import_concurrency == 2
    assert settings.queue_claim_idle_ms == 1500 and settings.queue_max_deliveries == 5
    assert settings.demo_history_months == 13 and settings.first_sync_max_pages == 20


def test_settings_refuse_timings_that_would_steal_jobs() -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        IngestionSettings(environment="test", queue_claim_idle_ms=1000, queue_heartbeat_seconds=2)
    with pytest.raises(ValueError, match="lease"):
        IngestionSettings(
            environment="test", scheduler_lease_ttl_seconds=5, scheduler_lease_renew_seconds=10
        )


def test_failures_read_well() -> None:
    common = {"method": "GET", "endpoint": "/v1/me/player/recently-played"}
    assert describe_failure(SpotifyUpstreamError("x", status_code=503, **common)) == (
        "Spotify API error (503)"
    )
    assert describe_failure(SpotifyUpstreamError("x", status_code=0, **common)) == (
        "Spotify unreachable"
    )
    assert (
        describe_failure(
            RateLimited("x", quota_exceeded=True, status_code=429, retry_after=3600, **common)
        )
        == "Spotify quota exceeded; retry after 3600 s"
    )
    assert (
        describe_failure(
            RateLimited("x", quota_exceeded=False, status_code=429, retry_after=120, **common)
        )
        == "Spotify rate limit; retry after 120 s"
    )
    assert "sign in again" in describe_failure(SpotifyUnauthorized("x", status_code=401, **common))
    assert describe_failure(KeyError("boom")) == "Internal error (KeyError)"
    assert plural(1, "recent track") == "1 recent track"
    assert plural(137, "recent track") == "137 recent tracks"


def _auth_error(code: grpc.StatusCode, reason: str | None) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata(("echostats-reason", reason)) if reason else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details="refused")


def test_auth_refusals_read_well() -> None:
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED
    assert "sign in again" in describe_failure(_auth_error(unauthenticated, "REAUTH_REQUIRED"))
    assert describe_failure(_auth_error(unauthenticated, "NO_SPOTIFY_CREDENTIALS")) == (
        "No Spotify account is linked to this user"
    )
    assert describe_failure(_auth_error(grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")) == (
        "User not found"
    )
    assert describe_failure(_auth_error(grpc.StatusCode.UNAVAILABLE, None)) == (
        "Auth service error (UNAVAILABLE)"
    )


def test_a_failing_catalog_is_named_as_the_catalog() -> None:
    internal = _auth_error(grpc.StatusCode.INTERNAL, None)
    assert describe_failure(_from_catalog_error(internal)) == "Catalog service error (INTERNAL)"
    # Auth's refusals passed on by the catalog still read as the sign-in problem they are.
    reauth = _auth_error(grpc.StatusCode.UNAUTHENTICATED, "REAUTH_REQUIRED")
    assert "sign in again" in describe_failure(_from_catalog_error(reauth))
