"""AnalyticsService gRPC servicer: protobuf <-> use cases; domain errors map in the kit."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

import grpc

from analytics_service.background import RollupBuildStarter, dependency_error
from analytics_service.periods import ALL_PERIODS, WEEKDAY_NAMES, Period
from analytics_service.repository import RollupRepository
from analytics_service.rollup_builder import RollupBuilder
from analytics_service.snapshots import (
    FEATURE_NAMES,
    Snapshot,
    SnapshotService,
    genre_percentages,
)
from analytics_service.top_items import TopItems
from echostats.analytics.v1 import analytics_service_pb2 as pb
from echostats.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from echostats.catalog.v1 import catalog_service_pb2 as catalog_pb
from echostats.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from echostats.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from echostats_grpc.timestamps import to_timestamp
from echostats_platform.errors import InvalidArgument

log = logging.getLogger(__name__)

MS_PER_HOUR = 3_600_000


def hours(ms: int) -> float:
    """Milliseconds as hours to one decimal."""
    return round(ms / MS_PER_HOUR, 1)


def period_of(value: int) -> Period:
    """The request's period; UNSPECIFIED means all_time (the API's default)."""
    if value == pb.PERIOD_UNSPECIFIED:
        return Period.ALL_TIME
    try:
        return Period.from_proto(value)
    except ValueError as exc:
        raise InvalidArgument("period must be one of week, month, quarter, year, all_time") from exc


def require_user(user_id: str) -> str:
    """The request's user id (INVALID_ARGUMENT when missing)."""
    if not user_id:
        raise InvalidArgument("user_id is required")
    return user_id


def ranked(items: list[dict[str, Any]], limit: int, *, image: bool = False) -> list[pb.RankedItem]:
    """Snapshot items as ranked entries."""
    entries = []
    for rank, item in enumerate(items[:limit], start=1):
        entry = pb.RankedItem(name=item["name"], play_count=item["plays"], rank=rank)
        if item["spotify_id"]:
            entry.spotify_id = item["spotify_id"]
        if image and item.get("image"):
            entry.image_url = item["image"]
        entries.append(entry)
    return entries


def overview_pb(snapshot: Snapshot, top: int) -> pb.Overview:
    """A stored snapshot as the Overview message."""
    overview = pb.Overview(
        period=Period(snapshot["period"]).proto,
        total_tracks_played=snapshot["plays"],
        total_ms_played=snapshot["ms"],
        total_hours=hours(snapshot["ms"]),
        unique_tracks=snapshot["unique_tracks"],
        unique_artists=snapshot["unique_artists"],
        unique_albums=snapshot["unique_albums"],
        unique_genres=snapshot["unique_genres"],
        listening_streak_days=snapshot["streak"],
        top_artists=ranked(snapshot["top_artists"], top, image=True),
        top_tracks=ranked(snapshot["top_tracks"], top),
        top_albums=ranked(snapshot["top_albums"], top),
        top_genres=[
            pb.RankedItem(name=genre["name"], play_count=genre["plays"], rank=rank)
            for rank, genre in enumerate(snapshot["genres"][:top], start=1)
        ],
        hourly_distribution=[
            pb.HourCount(hour=hour, plays=count) for hour, count in enumerate(snapshot["hours"])
        ],
        daily_distribution=[
            pb.WeekdayCount(day=WEEKDAY_NAMES[day], plays=count)
            for day, count in enumerate(snapshot["weekdays"])
        ],
        computed_at=to_timestamp(snapshot["computed_at"].astimezone(UTC)),
    )
    features = snapshot.get("avg_features")
    if features:
        overview.avg_audio_features.CopyFrom(
            catalog_pb.AudioFeatures(
                **{
                    name: value
                    for name, value in features.items()
                    if name in FEATURE_NAMES and value is not None
                }
            )
        )
    return overview


class AnalyticsServicer(pb_grpc.AnalyticsServiceServicer):
    """The analytics context's RPCs."""

    def __init__(
        self,
        *,
        snapshots: SnapshotService,
        top_items: TopItems,
        rollups: RollupRepository,
        builder: RollupBuilder,
        build_starter: RollupBuildStarter,
        ingestion: ingestion_grpc.IngestionServiceStub,
        overview_top_items: int = 10,
    ) -> None:
        self._snapshots = snapshots
        self._top = top_items
        self._rollups = rollups
        self._builder = builder
        self._build_starter = build_starter
        self._ingestion = ingestion
        self._overview_top = overview_top_items

    async def GetOverview(
        self, request: pb.PeriodRequest, context: grpc.aio.ServicerContext
    ) -> pb.Overview:
        user_id, period = require_user(request.user_id), period_of(request.period)
        snapshot = await self._snapshots.get(user_id, period)
        return overview_pb(snapshot, self._overview_top)

    async def RefreshSnapshots(
        self, request: pb.PeriodRequest, context: grpc.aio.ServicerContext
    ) -> pb.RefreshSnapshotsResponse:
        user_id, period = require_user(request.user_id), period_of(request.period)
        periods = ALL_PERIODS if period is Period.ALL_TIME else (period,)
        refreshed = await self._snapshots.refresh(user_id, periods)
        computed_at = max(snapshot["computed_at"] for snapshot in refreshed)
        return pb.RefreshSnapshotsResponse(
            periods=[each.proto for each in periods],
            computed_at=to_timestamp(computed_at.astimezone(UTC)),
        )

    async def GetTrend(
        self, request: pb.PeriodRequest, context: grpc.aio.ServicerContext
    ) -> pb.Trend:
        user_id, period = require_user(request.user_id), period_of(request.period)
        snapshot = await self._snapshots.get(user_id, period)
        return pb.Trend(
            period=period.proto,
            granularity=snapshot["granularity"],
            points=[
                pb.TrendPoint(
                    label=point["label"],
                    plays=point["plays"],
                    ms=point["ms"],
                    hours=hours(point["ms"]),
                )
                for point in snapshot["trend"]
            ],
        )

    async def GetRollupStatus(
        self, request: pb.UserRequest, context: grpc.aio.ServicerContext
    ) -> pb.RollupStatus:
        user_id = require_user(request.user_id)
        state = await self._rollups.state(user_id)
        try:
            page = await self._ingestion.ListPlays(
                ingestion_pb.ListPlaysRequest(user_id=user_id, page=1, page_size=1)
            )
        except grpc.aio.AioRpcError as exc:
            raise dependency_error("Ingestion", exc) from exc
        stored = page.total
        rolled = state.rolled_plays
        status = pb.RollupStatus(
            total_days=len(state.days),
            complete=rolled == stored,
            coverage=100.0 if stored == 0 else round(min(rolled, stored) * 100 / stored, 1),
        )
        if state.days:
            status.last_date = max(state.days)
        return status

    async def StartRollupBuild(
        self, request: pb.UserRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartRollupBuildResponse:
        started = await self._build_starter.start(require_user(request.user_id))
        return pb.StartRollupBuildResponse(started=started.started, job_id=started.job_id)

    async def ListTopTracks(
        self, request: pb.TopItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.TopTracksResponse:
        tracks, total = await self._top.tracks(
            require_user(request.user_id), period_of(request.period), request.limit
        )
        return pb.TopTracksResponse(tracks=tracks, total=total)

    async def ListTopArtists(
        self, request: pb.TopItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.TopArtistsResponse:
        artists, total = await self._top.artists(
            require_user(request.user_id), period_of(request.period), request.limit
        )
        return pb.TopArtistsResponse(artists=artists, total=total)

    async def ListTopAlbums(
        self, request: pb.TopItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.TopAlbumsResponse:
        albums, total = await self._top.albums(
            require_user(request.user_id), period_of(request.period), request.limit
        )
        return pb.TopAlbumsResponse(albums=albums, total=total)

    async def GetGenreDistribution(
        self, request: pb.PeriodRequest, context: grpc.aio.ServicerContext
    ) -> pb.GenreDistribution:
        period = period_of(request.period)
        genres = await self._top.genres(require_user(request.user_id), period)
        shares = genre_percentages(genres)
        return pb.GenreDistribution(
            period=period.proto,
            genres=[
                pb.GenreShare(name=name, play_count=count, percentage=share)
                for (name, count), share in zip(genres, shares, strict=True)
            ],
            total_genres=len(genres),
        )

    async def GetRecommendations(
        self, request: pb.GetRecommendationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.Recommendations:
        tracks, seed_info = await self._top.recommendations(
            require_user(request.user_id), request.limit, request.seed_type
        )
        return pb.Recommendations(tracks=tracks, seed_info=seed_info)

    async def RefreshAfterSync(
        self, request: pb.RefreshAfterSyncRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb.StepReport:
        user_id = require_user(request.user_id)
        detail = "No plays fetched"
        items = 0
        if request.HasField("first_played_at") and request.HasField("last_played_at"):
            first = request.first_played_at.ToDatetime(tzinfo=UTC)
            last = request.last_played_at.ToDatetime(tzinfo=UTC)
            try:
                outcome = await self._builder.refresh_range(user_id, first, last)
            except grpc.aio.AioRpcError as exc:
                raise dependency_error("Ingestion", exc) from exc
            items = outcome.plays
            detail = (
                f"Rolled up {outcome.plays} plays of the synced days "
                f"({outcome.changed_days} days changed)"
            )
        computed = await self._snapshots.warm(user_id)
        detail += f"; {computed} of {len(ALL_PERIODS)} snapshots recomputed"
        log.info(
            "analytics refreshed after sync", extra={"user_id": user_id, "job_id": request.job_id}
        )
        return catalog_pb.StepReport(status="completed", detail=detail, items=items)
