"""IngestionService gRPC servicer: protobuf <-> use cases; domain errors map in the kit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC

import grpc

from echostats.ingestion.v1 import ingestion_service_pb2 as pb
from echostats.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from echostats_grpc.timestamps import to_timestamp
from echostats_platform.errors import DomainError, InvalidArgument
from ingestion_service.imports_upload import ImportUploader
from ingestion_service.job_ledger import JobType
from ingestion_service.job_starter import JobStarter
from ingestion_service.models import PlayQuery, StoredPlay
from ingestion_service.repository import PlayRepository

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 100


def play_pb(stored: StoredPlay) -> pb.Play:
    """A stored play as the API message."""
    play, track = stored.play, stored.play.track
    track_pb = pb.PlayTrack(
        spotify_id=track.spotify_id,
        name=track.name,
        artist_name=track.artist_name,
        album_name=track.album_name,
        duration_ms=track.duration_ms,
        artist_ids=list(track.artist_ids),
    )
    if track.album_image_url is not None:
        track_pb.album_image_url = track.album_image_url
    if track.album_id is not None:
        track_pb.album_id = track.album_id
    message = pb.Play(
        id=stored.id,
        user_id=play.user_id,
        track=track_pb,
        played_at=to_timestamp(play.played_at),
        ms_played=play.ms_played,
        source=play.source.value,
    )
    if play.context_type is not None:
        message.context_type = play.context_type
    if play.context_uri is not None:
        message.context_uri = play.context_uri
    return message


def play_query(request: pb.ListPlaysRequest) -> PlayQuery:
    """Validate a ListPlays request (0 means the default) into a query."""
    if not request.user_id:
        raise InvalidArgument("user_id is required")
    page = request.page or 1
    page_size = request.page_size or PAGE_SIZE_DEFAULT
    if page < 1:
        raise InvalidArgument("page must be at least 1")
    if not 1 <= page_size <= PAGE_SIZE_MAX:
        raise InvalidArgument(f"page_size must be between 1 and {PAGE_SIZE_MAX}")
    return PlayQuery(
        user_id=request.user_id,
        page=page,
        page_size=page_size,
        artist=request.artist if request.HasField("artist") and request.artist else None,
        track=request.track if request.HasField("track") and request.track else None,
        start=request.start_time.ToDatetime(tzinfo=UTC) if request.HasField("start_time") else None,
        end=request.end_time.ToDatetime(tzinfo=UTC) if request.HasField("end_time") else None,
    )


def sync_job_type(value: int) -> JobType:
    """The sync kind of a TriggerSync request (unspecified means a manual sync)."""
    if value == obs_pb.JOB_TYPE_UNSPECIFIED:
        return JobType.MANUAL
    try:
        return JobType.from_proto(value)
    except ValueError:
        raise InvalidArgument("job_type must be INITIAL, PERIODIC or MANUAL") from None


class IngestionServicer(pb_grpc.IngestionServiceServicer):
    """The ingestion context's RPCs."""

    def __init__(
        self, *, starter: JobStarter, plays: PlayRepository, uploader: ImportUploader
    ) -> None:
        self._starter = starter
        self._plays = plays
        self._uploader = uploader

    async def TriggerSync(
        self, request: pb.TriggerSyncRequest, context: grpc.aio.ServicerContext
    ) -> pb.TriggerSyncResponse:
        started = await self._starter.start_sync(
            user_id=request.user_id, job_type=sync_job_type(request.job_type)
        )
        return pb.TriggerSyncResponse(started=started.started, job_id=started.job_id)

    async def ListPlays(
        self, request: pb.ListPlaysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPlaysResponse:
        page = await self._plays.list_plays(play_query(request))
        return pb.ListPlaysResponse(plays=[play_pb(play) for play in page.plays], total=page.total)

    async def StreamPlays(
        self, request: pb.StreamPlaysRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.PlaysOfDay]:
        if not request.user_id:
            raise InvalidArgument("user_id is required")
        start = request.start.ToDatetime(tzinfo=UTC) if request.HasField("start") else None
        end = request.end.ToDatetime(tzinfo=UTC) if request.HasField("end") else None
        async for day, plays in self._plays.plays_by_day(request.user_id, start, end):
            yield pb.PlaysOfDay(day=day, plays=[play_pb(play) for play in plays])

    async def SeedDemoHistory(
        self, request: pb.SeedDemoHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.SeedDemoHistoryResponse:
        started = await self._starter.seed_demo_history(user_id=request.user_id)
        return pb.SeedDemoHistoryResponse(started=started.started, job_id=started.job_id)

    async def UploadImport(
        self,
        request_iterator: AsyncIterator[pb.UploadImportRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.UploadImportResponse:
        try:
            result = await self._uploader.upload(request_iterator)
        except DomainError:
            # Answer a refusal only after reading what the client still sends: a status sent
            # while it is writing can reach it as a bare INTERNAL from grpc-core's failed
            # write, losing the reason (413, 415, ...). The gateway caps what it sends.
            async for _ in request_iterator:
                pass
            raise
        return pb.UploadImportResponse(
            started=result.started,
            job_id=result.job_id,
            items_processed=result.items_processed,
            items_total=result.items_total,
        )
