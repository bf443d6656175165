"""Rollups: local-day boundaries, idempotent events, incremental == rebuild, the build job."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from echostats.analytics.v1 import analytics_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from echostats_grpc.timestamps import to_timestamp
from ingestion_service.models import Play, PlaySource, PlayTrack

ZONE = ZoneInfo("America/New_York")
ALL = (pb.PERIOD_WEEK, pb.PERIOD_MONTH, pb.PERIOD_QUARTER, pb.PERIOD_YEAR, pb.PERIOD_ALL_TIME)


def play(user_id: str, number: int, at: datetime, ms: int = 180_000) -> Play:
    """A play of track `number` (artist and album follow the number)."""
    return Play(
        user_id=user_id,
        track=PlayTrack(
            spotify_id=f"tr{number:020d}",
            name=f"Song {number}",
            artist_name=f"Band {number % 4}",
            album_name=f"Record {number % 5}",
            duration_ms=ms,
            artist_ids=(f"ar{number % 4:020d}",),
            album_id=f"al{number % 5:020d}",
        ),
        played_at=at,
        ms_played=ms,
        source=PlaySource.API,
    )


def new_user() -> str:
    return f"user_{uuid.uuid4().hex[:8]}"


async def overviews(stub: Any, user_id: str) -> dict[int, pb.Overview]:
    """Every period's overview."""
    answers = await asyncio.gather(
        *(stub.GetOverview(pb.PeriodRequest(user_id=user_id, period=p)) for p in ALL)
    )
    return dict(zip(ALL, answers, strict=True))


async def test_a_play_at_2330_local_lands_on_its_local_day_and_hour(harness: Any) -> None:
    """23:30 in New York is 04:30 UTC the next day: it counts on the local day, hour 23."""
    analytics, user_id = harness.without_catalog, new_user()
    today = datetime.now(UTC).astimezone(ZONE).date()
    day = today - timedelta(days=2)
    late = datetime(day.year, day.month, day.day, 23, 30, tzinfo=ZONE)
    early = late + timedelta(hours=1)  # 00:30 the next local day
    assert late.astimezone(UTC).date() != day
    await harness.store([play(user_id, 1, late.astimezone(UTC))], analytics)
    await harness.store([play(user_id, 2, early.astimezone(UTC))], analytics)
    await harness.wait_rolled_up(analytics, user_id)
    status = await analytics.stub.GetRollupStatus(pb.UserRequest(user_id=user_id))
    assert status.total_days == 2 and status.last_date == (day + timedelta(days=1)).isoformat()
    assert status.coverage == 100.0
    week = await analytics.stub.GetOverview(pb.PeriodRequest(user_id=user_id, period=1))
    hours = {h.hour: h.plays for h in week.hourly_distribution if h.plays}
    assert hours == {23: 1, 0: 1}
    days = {d.day: d.plays for d in week.daily_distribution if d.plays}
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    assert days == {names[day.weekday()]: 1, names[(day + timedelta(days=1)).weekday()]: 1}
    trend = await analytics.stub.GetTrend(pb.PeriodRequest(user_id=user_id, period=1))
    points = {p.label: p.plays for p in trend.points if p.plays}
    assert points == {day.isoformat(): 1, (day + timedelta(days=1)).isoformat(): 1}
    assert len(trend.points) == 7 and trend.points[-1].label == today.isoformat()
    # Plays the day before yesterday and yesterday, none today: a streak of 2.
    assert week.listening_streak_days == 2


async def test_replays_change_nothing_and_incremental_equals_rebuild(harness: Any) -> None:
    """Events in pieces, replayed, then a full rebuild: same rollups, snapshots untouched."""
    analytics, user_id = harness.without_catalog, new_user()
    now = datetime.now(UTC)
    plays = [
        play(user_id, n % 13, now - timedelta(hours=7 * n + 1), 100_000 + n) for n in range(150)
    ]
    await harness.store(plays[:50], analytics)
    await harness.store(plays[50:], analytics)
    await harness.wait_rolled_up(analytics, user_id)
    first = await overviews(analytics.stub, user_id)
    assert first[pb.PERIOD_ALL_TIME].total_tracks_played == 150
    computed = analytics.computations

    # Replaying every event (what a redelivery does) changes nothing: no snapshot is stale.
    await harness.store(plays, analytics)
    await harness.store(plays[10:20], analytics)
    await asyncio.sleep(1.0)
    await harness.wait_rolled_up(analytics, user_id)
    assert await overviews(analytics.stub, user_id) == first
    assert analytics.computations == computed

    # A full rebuild gives the very same rollups, so the snapshots stay as they were.
    started = await analytics.stub.StartRollupBuild(pb.UserRequest(user_id=user_id))
    assert started.started and started.job_id
    job = await harness.wait_for_job(started.job_id, user_id)
    assert job.status == obs_pb.JOB_STATUS_COMPLETED, job
    assert job.job_type == obs_pb.JOB_TYPE_ROLLUP_BUILD
    assert job.items_processed == 150
    assert [s.action for s in job.steps] == ["rollup_build"]
    assert "0 days changed" in job.steps[0].detail
    assert await overviews(analytics.stub, user_id) == first
    assert analytics.computations == computed

    # A new play changes the version: snapshots are recomputed on the next read.
    await harness.store([play(user_id, 99, now - timedelta(minutes=3))], analytics)
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        week = await analytics.stub.GetOverview(pb.PeriodRequest(user_id=user_id, period=1))
        if week.total_tracks_played == first[pb.PERIOD_WEEK].total_tracks_played + 1:
            break
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert analytics.computations > computed


async def test_rebuild_repairs_rollups_and_reports_already_running(harness: Any) -> None:
    """Plays stored without any event are picked up by the rebuild; one build at a time."""
    analytics, user_id = harness.without_catalog, new_user()
    now = datetime.now(UTC)
    # Stored silently (as if every event had been lost).
    await harness.plays.insert_plays([play(user_id, n, now - timedelta(days=n)) for n in range(20)])
    status = await analytics.stub.GetRollupStatus(pb.UserRequest(user_id=user_id))
    assert not status.complete and status.coverage == 0.0 and status.total_days == 0
    assert not status.HasField("last_date")
    first, second = await asyncio.gather(
        analytics.stub.StartRollupBuild(pb.UserRequest(user_id=user_id)),
        analytics.stub.StartRollupBuild(pb.UserRequest(user_id=user_id)),
    )
    assert sorted([first.started, second.started]) == [False, True]
    assert first.job_id == second.job_id
    job = await harness.wait_for_job(first.job_id, user_id)
    assert job.status == obs_pb.JOB_STATUS_COMPLETED
    status = await analytics.stub.GetRollupStatus(pb.UserRequest(user_id=user_id))
    assert status.complete and status.coverage == 100.0 and status.total_days == 20
    assert status.last_date == now.astimezone(ZONE).date().isoformat()
    overview = await analytics.stub.GetOverview(pb.PeriodRequest(user_id=user_id, period=5))
    assert overview.total_tracks_played == 20


async def test_refresh_after_sync_rolls_up_the_range_and_warms_snapshots(harness: Any) -> None:
    """The sync pipeline's step: the synced range is rolled up, every snapshot is fresh."""
    analytics, user_id = harness.with_catalog, new_user()
    now = datetime.now(UTC)
    plays = [play(user_id, n, now - timedelta(minutes=5 * n + 1)) for n in range(12)]
    await harness.plays.insert_plays(plays)  # no event: the step itself must roll them up
    request = pb.RefreshAfterSyncRequest(user_id=user_id, job_id="job-1")
    request.first_played_at.CopyFrom(to_timestamp(min(p.played_at for p in plays)))
    request.last_played_at.CopyFrom(to_timestamp(max(p.played_at for p in plays)))
    report = await analytics.stub.RefreshAfterSync(request)
    assert report.status == "completed" and report.items >= 12
    assert "5 of 5 snapshots recomputed" in report.detail
    computed = analytics.computations
    answers = await overviews(analytics.stub, user_id)
    assert answers[pb.PERIOD_WEEK].total_tracks_played >= 12
    assert analytics.computations == computed  # served as stored
    again = await analytics.stub.RefreshAfterSync(pb.RefreshAfterSyncRequest(user_id=user_id))
    assert again.status == "completed" and "0 of 5 snapshots recomputed" in again.detail
