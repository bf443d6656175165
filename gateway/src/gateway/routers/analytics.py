"""/api/v1/analytics: overview, refresh, trend and rollup status/build (analytics service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from echostats.analytics.v1 import analytics_service_pb2 as pb
from gateway.dependencies import Clients, CurrentUser
from gateway.schemas.analytics import (
    AudioFeatureAverages,
    DailyCount,
    HourlyCount,
    OverviewOut,
    PeriodName,
    RefreshOut,
    RollupBuildOut,
    RollupStatusOut,
    TopArtistEntry,
    TopEntry,
    TopGenreEntry,
    TrendOut,
    TrendPointOut,
)
from gateway.timestamps import iso_or_none

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

PERIODS: dict[str, int] = {
    "week": pb.PERIOD_WEEK,
    "month": pb.PERIOD_MONTH,
    "quarter": pb.PERIOD_QUARTER,
    "year": pb.PERIOD_YEAR,
    "all_time": pb.PERIOD_ALL_TIME,
}
PERIOD_NAMES: dict[int, str] = {value: name for name, value in PERIODS.items()}

# The one `period` query parameter of every analytics, top-list and genre route.
PeriodQuery = Annotated[
    PeriodName, Query(description="One of week, month, quarter, year, all_time")
]
FEATURES = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "tempo",
)


def optional(message: object, field: str) -> object | None:
    """An optional proto field's value, or None when unset."""
    return getattr(message, field) if message.HasField(field) else None  # type: ignore[attr-defined]


def overview_out(overview: pb.Overview) -> OverviewOut:
    """The Overview message in the API's shape."""
    features = None
    if overview.HasField("avg_audio_features"):
        source = overview.avg_audio_features
        features = AudioFeatureAverages(**{name: optional(source, name) for name in FEATURES})
    return OverviewOut(
        period=PERIOD_NAMES[overview.period],  # type: ignore[arg-type]
        total_tracks_played=overview.total_tracks_played,
        total_ms_played=overview.total_ms_played,
        total_hours=overview.total_hours,
        unique_tracks=overview.unique_tracks,
        unique_artists=overview.unique_artists,
        unique_albums=overview.unique_albums,
        unique_genres=overview.unique_genres,
        listening_streak_days=overview.listening_streak_days,
        top_artists=[
            TopArtistEntry(
                name=item.name,
                play_count=item.play_count,
                spotify_id=optional(item, "spotify_id"),  # type: ignore[arg-type]
                image_url=optional(item, "image_url"),  # type: ignore[arg-type]
                rank=item.rank,
            )
            for item in overview.top_artists
        ],
        top_tracks=[
            TopEntry(
                name=item.name,
                play_count=item.play_count,
                spotify_id=optional(item, "spotify_id"),  # type: ignore[arg-type]
                rank=item.rank,
            )
            for item in overview.top_tracks
        ],
        top_albums=[
            TopEntry(
                name=item.name,
                play_count=item.play_count,
                spotify_id=optional(item, "spotify_id"),  # type: ignore[arg-type]
                rank=item.rank,
            )
            for item in overview.top_albums
        ],
        top_genres=[
            TopGenreEntry(name=item.name, play_count=item.play_count, rank=item.rank)
            for item in overview.top_genres
        ],
        hourly_distribution=[
            HourlyCount(hour=h.hour, plays=h.plays) for h in overview.hourly_distribution
        ],
        daily_distribution=[
            DailyCount(day=d.day, plays=d.plays) for d in overview.daily_distribution
        ],
        avg_audio_features=features,
        computed_at=iso_or_none(overview, "computed_at") or "",
    )


@router.get("/overview", response_model=OverviewOut)
async def overview(
    user: CurrentUser, clients: Clients, period: PeriodQuery = "all_time"
) -> OverviewOut:
    """Pre-computed analytics of the period (recomputed first only if the data changed)."""
    response = await clients.analytics.GetOverview(
        pb.PeriodRequest(user_id=user.id, period=PERIODS[period])
    )
    return overview_out(response)


@router.post("/refresh", response_model=RefreshOut)
async def refresh(
    user: CurrentUser, clients: Clients, period: PeriodQuery = "all_time"
) -> RefreshOut:
    """Recompute the period's snapshot; all_time refreshes every period."""
    response = await clients.analytics.RefreshSnapshots(
        pb.PeriodRequest(user_id=user.id, period=PERIODS[period])
    )
    return RefreshOut(
        status="refreshed",
        periods=[PERIOD_NAMES[p] for p in response.periods],  # type: ignore[misc]
        computed_at=iso_or_none(response, "computed_at") or "",
    )


@router.get("/trend", response_model=TrendOut)
async def trend(user: CurrentUser, clients: Clients, period: PeriodQuery = "all_time") -> TrendOut:
    """Plays per day, ISO week or month over the period (days without plays as zeros)."""
    response = await clients.analytics.GetTrend(
        pb.PeriodRequest(user_id=user.id, period=PERIODS[period])
    )
    return TrendOut(
        period=period,
        granularity=response.granularity,
        points=[
            TrendPointOut(label=p.label, plays=p.plays, ms=p.ms, hours=p.hours)
            for p in response.points
        ],
    )


@router.get("/rollup-status", response_model=RollupStatusOut)
async def rollup_status(user: CurrentUser, clients: Clients) -> RollupStatusOut:
    """How far the daily rollups cover the user's stored plays."""
    response = await clients.analytics.GetRollupStatus(pb.UserRequest(user_id=user.id))
    return RollupStatusOut(
        last_date=response.last_date if response.HasField("last_date") else None,
        total_days=response.total_days,
        complete=response.complete,
        coverage=response.coverage,
    )


@router.post("/rollup-build", response_model=RollupBuildOut)
async def rollup_build(user: CurrentUser, clients: Clients) -> RollupBuildOut:
    """Start a background rebuild of the daily rollups (one at a time per user)."""
    response = await clients.analytics.StartRollupBuild(pb.UserRequest(user_id=user.id))
    return RollupBuildOut(
        status="started" if response.started else "already_running", job_id=response.job_id
    )
