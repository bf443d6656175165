"""/api/v1/history: the user's listening history (served by ingestion)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from echostats.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from echostats_grpc.timestamps import to_timestamp
from gateway.dependencies import Clients, CurrentUser
from gateway.paging import Page, page_count
from gateway.schemas.history import HistoryItem, HistoryPage, HistoryTrack
from gateway.timestamps import ISO_DATE_OR_DATETIME, iso_or_none, parse_date_param

router = APIRouter(prefix="/api/v1/history", tags=["history"])


def _item(play: ingestion_pb.Play) -> HistoryItem:
    track = play.track
    return HistoryItem(
        id=play.id,
        user_id=play.user_id,
        track=HistoryTrack(
            spotify_id=track.spotify_id,
            name=track.name,
            artist_name=track.artist_name,
            album_name=track.album_name,
            album_image_url=track.album_image_url if track.HasField("album_image_url") else None,
            duration_ms=track.duration_ms,
        ),
        played_at=iso_or_none(play, "played_at") or "",
        ms_played=play.ms_played,
        source=play.source,
        context_type=play.context_type if play.HasField("context_type") else None,
        context_uri=play.context_uri if play.HasField("context_uri") else None,
    )


@router.get("", response_model=HistoryPage)
async def list_history(
    user: CurrentUser,
    clients: Clients,
    page: Page = 1,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1-100)")] = 50,
    artist: Annotated[str | None, Query(max_length=200, description="Artist name contains")] = None,
    track: Annotated[str | None, Query(max_length=200, description="Track name contains")] = None,
    start_date: Annotated[
        str | None,
        Query(description="ISO 8601 start date", json_schema_extra=ISO_DATE_OR_DATETIME),
    ] = None,
    end_date: Annotated[
        str | None,
        Query(
            description="ISO 8601 end date (a date is inclusive)",
            json_schema_extra=ISO_DATE_OR_DATETIME,
        ),
    ] = None,
) -> HistoryPage:
    """Paginated listening history, newest first, with optional filters."""
    start = parse_date_param(start_date, name="start_date", end_of_day=False)
    end = parse_date_param(end_date, name="end_date", end_of_day=True)
    request = ingestion_pb.ListPlaysRequest(user_id=user.id, page=page, page_size=limit)
    if artist:
        request.artist = artist
    if track:
        request.track = track
    if start is not None:
        request.start_time.CopyFrom(to_timestamp(start))
    if end is not None:
        request.end_time.CopyFrom(to_timestamp(end))
    response = await clients.ingestion.ListPlays(request)
    return HistoryPage(
        items=[_item(play) for play in response.plays],
        total=response.total,
        page=page,
        limit=limit,
        pages=page_count(response.total, limit),
    )
