"""/api/v1/player: Spotify playback for the signed-in user (served by player-proxy).

Spotify's refusals arrive as gRPC statuses with reasons and leave through the one table in
`gateway.errors`: NO_ACTIVE_DEVICE 404, PREMIUM_REQUIRED 403, other refusals 409 (or 403)
with Spotify's reason in `detail`, 429 with Retry-After, 401, 502.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from echostats.player_proxy.v1 import player_proxy_service_pb2 as pb
from gateway.dependencies import Clients, CurrentUser
from gateway.schemas.player import (
    CurrentPlayback,
    DeviceOut,
    DevicesOut,
    PlayerStatus,
    PlayRequest,
    QueueItemOut,
    QueueOut,
)

# What Spotify's refusals map to (README "Player, browse and library"), for the document.
SPOTIFY_REFUSALS: dict[int | str, dict[str, str]] = {
    400: {"description": "A body that is not JSON"},
    403: {"description": "PREMIUM_REQUIRED or another refusal of the account or device"},
    404: {"description": "NO_ACTIVE_DEVICE"},
    409: {"description": "Any other player refusal, with Spotify's reason in `detail`"},
    502: {"description": "Spotify failed (5xx after bounded retries)"},
}
router = APIRouter(prefix="/api/v1/player", tags=["player"], responses=SPOTIFY_REFUSALS)

QUEUE_MAX_ITEMS = 20


def _queue_item(item: pb.QueueItem) -> QueueItemOut:
    return QueueItemOut(
        id=item.id,
        name=item.name,
        artist=item.artist,
        album=item.album,
        image=item.image if item.HasField("image") else None,
        duration_ms=item.duration_ms,
    )


@router.get("/current", response_model=CurrentPlayback, response_model_exclude_unset=True)
async def current_playback(user: CurrentUser, clients: Clients) -> CurrentPlayback:
    """The current track, or `{"is_playing": false}` when nothing is loaded."""
    response = await clients.player_proxy.GetPlayback(pb.GetPlaybackRequest(user_id=user.id))
    if not response.HasField("playback"):
        return CurrentPlayback(is_playing=False)
    now = response.playback
    return CurrentPlayback(
        is_playing=now.is_playing,
        track_name=now.track_name,
        artist_name=now.artist_name,
        album_name=now.album_name,
        album_image=now.album_image if now.HasField("album_image") else None,
        track_id=now.track_id,
        duration_ms=now.duration_ms,
        progress_ms=now.progress_ms,
        device=now.device,
        shuffle=now.shuffle,
        repeat=now.repeat,
    )


@router.get("/devices", response_model=DevicesOut)
async def list_devices(user: CurrentUser, clients: Clients) -> DevicesOut:
    """The user's Spotify Connect devices."""
    response = await clients.player_proxy.ListDevices(pb.ListDevicesRequest(user_id=user.id))
    return DevicesOut(
        devices=[
            DeviceOut(
                id=d.id if d.HasField("id") else None,
                name=d.name,
                type=d.type,
                is_active=d.is_active,
                volume_percent=d.volume_percent if d.HasField("volume_percent") else None,
            )
            for d in response.devices
        ]
    )


@router.get("/queue", response_model=QueueOut)
async def get_queue(user: CurrentUser, clients: Clients) -> QueueOut:
    """What plays now and up to 20 items after it."""
    response = await clients.player_proxy.GetQueue(
        pb.GetQueueRequest(user_id=user.id, max_items=QUEUE_MAX_ITEMS)
    )
    current = response.currently_playing if response.HasField("currently_playing") else None
    return QueueOut(
        currently_playing=_queue_item(current) if current is not None else None,
        queue=[_queue_item(i) for i in response.queue[:QUEUE_MAX_ITEMS]],
    )


@router.post("/play", response_model=PlayerStatus)
async def play(
    user: CurrentUser,
    clients: Clients,
    body: Annotated[PlayRequest | None, Body()] = None,
) -> PlayerStatus:
    """Start or resume playback (context_uri or uris, on device_id if given)."""
    request = pb.StartPlaybackRequest(user_id=user.id)
    if body is not None:
        if body.device_id is not None:
            request.device_id = body.device_id
        if body.context_uri is not None:
            request.context_uri = body.context_uri
        if body.uris:
            request.uris.extend(body.uris)
        if body.offset is not None:
            if body.offset.position is not None:
                request.offset.position = body.offset.position
            else:
                request.offset.uri = body.offset.uri or ""
        if body.position_ms is not None:
            request.position_ms = body.position_ms
    await clients.player_proxy.StartPlayback(request)
    return PlayerStatus(status="playing")


@router.post("/pause", response_model=PlayerStatus)
async def pause(user: CurrentUser, clients: Clients) -> PlayerStatus:
    """Pause playback."""
    await clients.player_proxy.PausePlayback(pb.PausePlaybackRequest(user_id=user.id))
    return PlayerStatus(status="paused")


@router.post("/next", response_model=PlayerStatus)
async def next_track(user: CurrentUser, clients: Clients) -> PlayerStatus:
    """Skip to the next track."""
    await clients.player_proxy.SkipToNext(pb.SkipToNextRequest(user_id=user.id))
    return PlayerStatus(status="skipped")


@router.post("/previous", response_model=PlayerStatus)
async def previous_track(user: CurrentUser, clients: Clients) -> PlayerStatus:
    """Skip to the previous track."""
    await clients.player_proxy.SkipToPrevious(pb.SkipToPreviousRequest(user_id=user.id))
    return PlayerStatus(status="skipped_back")
