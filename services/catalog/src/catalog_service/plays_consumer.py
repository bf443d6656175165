"""How catalog learns the track ids of newly stored plays, without ingestion waiting on it.

Ingestion publishes `{user_id, count, first_played_at, last_played_at, source, job_id}` on
the `ingestion:plays-stored` stream after storing plays (live sync, imports, demo
history). Catalog reads it through a consumer group of its own (`catalog`, at-least-once),
reads the plays of that range back with ingestion's `StreamPlays` (one UTC day per
message), notes their tracks (`Enricher.note`: placeholders + the user's enrichment queue)
and acknowledges. Handling is idempotent: noting a known id changes nothing. The fetching
itself happens later, in the drainer, within the user's budget.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from catalog_service.enrichment import Enricher
from catalog_service.models import SeenTrack
from echostats.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from echostats.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from echostats_grpc.timestamps import to_timestamp
from echostats_platform.streams import Delivery

log = logging.getLogger(__name__)

PLAYS_STORED_STREAM = "ingestion:plays-stored"
# Ids noted per write while a long range streams in.
_NOTE_BATCH = 500


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time from the event ('...Z'), or None."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class PlaysReader:
    """Reads a user's plays of a time range from ingestion and notes their tracks."""

    def __init__(
        self, *, ingestion: ingestion_grpc.IngestionServiceStub, enricher: Enricher, timeout: float
    ) -> None:
        self._ingestion = ingestion
        self._enricher = enricher
        self._timeout = timeout

    async def note_range(
        self, user_id: str, start: datetime | None, end: datetime | None
    ) -> tuple[int, int, int]:
        """Note the tracks of the user's plays in [start, end]: (plays read, new, queued)."""
        request = ingestion_pb.StreamPlaysRequest(user_id=user_id)
        if start is not None:
            request.start.CopyFrom(to_timestamp(start))
        if end is not None:
            request.end.CopyFrom(to_timestamp(end))
        plays = new = queued = 0
        pending: dict[str, SeenTrack] = {}
        async for day in self._ingestion.StreamPlays(request, timeout=self._timeout):
            for play in day.plays:
                plays += 1
                track = play.track
                key = track.spotify_id or f"name:{track.artist_name}\x1f{track.name}"
                if key not in pending:
                    pending[key] = SeenTrack(
                        spotify_id=track.spotify_id,
                        name=track.name,
                        artist_name=track.artist_name,
                        album_name=track.album_name,
                        artist_ids=tuple(track.artist_ids),
                        album_id=track.album_id if track.HasField("album_id") else None,
                    )
            if len(pending) >= _NOTE_BATCH:
                added, waiting = await self._enricher.note(user_id, list(pending.values()))
                new, queued, pending = new + added, queued + waiting, {}
        if pending:
            added, waiting = await self._enricher.note(user_id, list(pending.values()))
            new, queued = new + added, queued + waiting
        return plays, new, queued


class PlaysStoredHandler:
    """Handles one plays-stored event (the WorkQueue handler)."""

    def __init__(self, reader: PlaysReader) -> None:
        self._reader = reader

    async def __call__(self, delivery: Delivery) -> None:
        payload = delivery.payload
        user_id = payload.get("user_id", "")
        if not user_id:
            log.error("dropping plays-stored event without user_id", extra={"id": delivery.id})
            return
        try:
            start = parse_time(payload.get("first_played_at"))
            end = parse_time(payload.get("last_played_at"))
        except ValueError:
            log.error("dropping plays-stored event with bad times", extra={"id": delivery.id})
            return
        plays, new, queued = await self._reader.note_range(user_id, start, end)
        log.info(
            "plays-stored event noted",
            extra={"user_id": user_id, "plays": plays, "new_tracks": new, "queued": queued},
        )
