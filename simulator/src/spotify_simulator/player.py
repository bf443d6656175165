"""Spotify Connect: `/v1/me/player*` (ref §2 "Player commands") and its control API.

Reads (scope `user-read-playback-state`; currently-playing also accepts
`user-read-currently-playing`):
- `GET /me/player`: playback state, or **204** with no body when no device is active or
  nothing is loaded; `GET /me/player/currently-playing`: the same without device, shuffle
  and repeat, 204 when nothing is loaded;
- `GET /me/player/devices`: `{"devices": [...]}`;
- `GET /me/player/queue`: `{"currently_playing": Track|null, "queue": [Track…]}` with the
  rest of the loaded context (no cap here; clients cap the list).
Commands (scope `user-modify-playback-state`; Premium only): `PUT /me/player/play`
(query `device_id`; JSON body `context_uri` | `uris`, `offset` {position|uri} only with an
album or playlist context, `position_ms`; an empty body resumes), `PUT /me/player/pause`,
`POST /me/player/next`, `POST /me/player/previous`. Success is 204 by default; the control
API switches it to 200 with an opaque ~27-character text token or to 202, as observed.
The state machine and its refusals live in `player_state.py`.

Control API (`/_sim/player…`): read a user's player state, replace their devices, choose
the success status, and force refusals with any status and reason.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from .auth import AuthContext, State, authenticate, require_scopes
from .browse import featured_playlist
from .errors import WebApiError
from .objects import context_object, track_object
from .player_state import (
    COMMANDS,
    DEVICE_TYPES,
    SUCCESS_STATUSES,
    ForcedRefusal,
    PlayerSession,
    SimDevice,
    no_active_device,
    premium_required,
    restriction_violated,
)
from .state import SimulatorState, get_state
from .urls import api_base

api = APIRouter(prefix="/v1", tags=["player"])
control = APIRouter(prefix="/_sim/player", tags=["simulator control"])

PlaybackReader = Annotated[AuthContext, Depends(require_scopes("user-read-playback-state"))]
PlaybackController = Annotated[AuthContext, Depends(require_scopes("user-modify-playback-state"))]
DeviceQuery = Annotated[str | None, Query(max_length=64)]

ARTIST_CONTEXT_TRACKS = 10


async def currently_playing_reader(request: Request, state: State) -> AuthContext:
    """Either playback-state scope reads the current track."""
    ctx = await authenticate(request, state)
    if not {"user-read-currently-playing", "user-read-playback-state"} & ctx.scopes:
        raise WebApiError(403, "Insufficient client scope")
    return ctx


# --- reads ------------------------------------------------------------------------------


def _state_body(
    state: SimulatorState, session: PlayerSession, base: str, *, with_device: bool
) -> dict[str, Any]:
    track_id = session.track_id
    assert track_id is not None
    duration = state.catalog.tracks[track_id].duration_ms
    body: dict[str, Any] = {
        "timestamp": state.clock.now_ms(),
        "context": context_object(session.context_uri, base),
        "progress_ms": session.progress(state.clock.now_ms(), duration),
        "item": track_object(state.catalog, track_id, base, state.mode),
        "currently_playing_type": "track",
        "actions": {"disallows": {"resuming": True} if session.is_playing else {"pausing": True}},
        "is_playing": session.is_playing,
    }
    if with_device:
        device = session.active_device
        assert device is not None
        body = {
            "device": device.as_json(True),
            "shuffle_state": session.shuffle,
            "repeat_state": session.repeat,
            **body,
        }
    return body


@api.get("/me/player", response_model=None)
async def get_playback_state(
    request: Request, ctx: PlaybackReader, state: State
) -> dict[str, Any] | Response:
    """The playback state, or 204 when no device is active or nothing is loaded."""
    with state.player.lock:
        session = state.player.session(ctx.user.id)
        if session.active_device is None or session.track_id is None:
            return Response(status_code=204)
        return _state_body(state, session, api_base(request), with_device=True)


@api.get("/me/player/currently-playing", response_model=None)
async def get_currently_playing(
    request: Request,
    state: State,
    ctx: Annotated[AuthContext, Depends(currently_playing_reader)],
) -> dict[str, Any] | Response:
    """The current track, or 204 when nothing is loaded."""
    with state.player.lock:
        session = state.player.session(ctx.user.id)
        if session.active_device is None or session.track_id is None:
            return Response(status_code=204)
        return _state_body(state, session, api_base(request), with_device=False)


@api.get("/me/player/devices")
async def get_devices(ctx: PlaybackReader, state: State) -> dict[str, Any]:
    """The user's Connect devices."""
    with state.player.lock:
        session = state.player.session(ctx.user.id)
        return {"devices": [d.as_json(d.id == session.active_device_id) for d in session.devices]}


@api.get("/me/player/queue")
async def get_queue(request: Request, ctx: PlaybackReader, state: State) -> dict[str, Any]:
    """What plays now and what comes next in the loaded context."""
    base = api_base(request)
    with state.player.lock:
        session = state.player.session(ctx.user.id)
        current = session.track_id if session.active_device is not None else None
        upcoming = session.track_ids[session.index + 1 :] if current else []
    return {
        "currently_playing": track_object(state.catalog, current, base, state.mode)
        if current
        else None,
        "queue": [track_object(state.catalog, t, base, state.mode) for t in upcoming],
    }


# --- commands ---------------------------------------------------------------------------


def _success(state: SimulatorState) -> Response:
    status = state.player.success_status
    if status == 200:
        # Observed 2024-2025: a short opaque token, not JSON (clients that parse it crash).
        return PlainTextResponse(secrets.token_urlsafe(20)[:27], status_code=200)
    return Response(status_code=status)


def _check(state: SimulatorState, ctx: AuthContext, command: str) -> None:
    forced = state.player.take_refusal(command, ctx.user.id)
    if forced is not None:
        raise forced
    if not ctx.user.is_premium:
        raise premium_required()


def _target(session: PlayerSession, device_id: str | None) -> None:
    """Make `device_id` active (404 if unknown), or require an active device."""
    if device_id is not None:
        if session.device(device_id) is None:
            raise WebApiError(404, "Device not found")
        session.active_device_id = device_id
    elif session.active_device is None:
        raise no_active_device()


def _context_tracks(state: SimulatorState, context_uri: str) -> list[str]:
    parts = context_uri.split(":")
    if len(parts) != 3 or parts[0] != "spotify":
        raise WebApiError(400, "Invalid context uri")
    kind, entity_id = parts[1], parts[2]
    catalog = state.catalog
    if kind == "album":
        album = catalog.albums.get(entity_id)
        if album is not None:
            return list(album.track_ids)
    elif kind == "artist":
        if entity_id in catalog.artists:
            ids = catalog.artist_track_ids.get(entity_id, ())
            ranked = sorted(ids, key=lambda t: (-catalog.tracks[t].popularity, t))
            return ranked[:ARTIST_CONTEXT_TRACKS]
    elif kind == "playlist":
        playlist = state.playlists.get(entity_id) or featured_playlist(catalog, entity_id)
        if playlist is not None:
            return list(playlist.track_ids)
    else:
        raise WebApiError(400, "Invalid context uri")
    raise WebApiError(404, "Context not found")


def _track_ids(state: SimulatorState, uris: Any) -> list[str]:
    if not isinstance(uris, list) or not uris:
        raise WebApiError(400, "Invalid uris")
    ids = []
    for uri in uris:
        parts = uri.split(":") if isinstance(uri, str) else []
        if len(parts) != 3 or parts[:2] != ["spotify", "track"]:
            raise WebApiError(400, f"Invalid track uri: {uri}")
        if parts[2] not in state.catalog.tracks:
            raise WebApiError(404, "Not found.")
        ids.append(parts[2])
    return ids


def _start_index(body: dict[str, Any], tracks: list[str]) -> int:
    offset = body.get("offset")
    if offset is None:
        return 0
    context = body.get("context_uri") or ""
    if not context.startswith(("spotify:album:", "spotify:playlist:")):
        raise WebApiError(400, "Offset is only valid with an album or playlist context")
    if isinstance(offset, dict) and isinstance(offset.get("position"), int):
        position = offset["position"]
        if 0 <= position < len(tracks):
            return position
    elif isinstance(offset, dict) and isinstance(offset.get("uri"), str):
        track_id = offset["uri"].rpartition(":")[2]
        if track_id in tracks:
            return tracks.index(track_id)
    raise WebApiError(400, "Invalid offset")


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise WebApiError(400, "Malformed json") from None
    if not isinstance(body, dict):
        raise WebApiError(400, "Malformed json")
    return body


def _play_at(session: PlayerSession, now_ms: int, position_ms: int = 0) -> None:
    session.is_playing = True
    session.position_ms = position_ms
    session.since_ms = now_ms


@api.put("/me/player/play", response_model=None)
async def start_playback(
    request: Request, ctx: PlaybackController, state: State, device_id: DeviceQuery = None
) -> Response:
    """Load a context or track list and play it, or resume what is loaded."""
    body = await _json_body(request)
    _check(state, ctx, "play")
    catalog = state.catalog
    with state.player.lock:
        session = state.player.session(ctx.user.id)
        # Validate everything before changing anything.
        if body.get("context_uri") is not None and body.get("uris") is not None:
            raise WebApiError(400, "Only one of context_uri and uris may be given")
        new_tracks: list[str] | None = None
        context_uri = None
        if body.get("context_uri") is not None:
            context_uri = str(body["context_uri"])
            new_tracks = _context_tracks(state, context_uri)
        elif body.get("uris") is not None:
            new_tracks = _track_ids(state, body["uris"])
        index = _start_index(body, new_tracks) if new_tracks is not None else None
        position = body.get("position_ms", 0)
        if not isinstance(position, int) or position < 0:
            raise WebApiError(400, "Invalid position_ms")
        _target(session, device_id)
        now_ms = state.clock.now_ms()
        if new_tracks is not None:
            if not new_tracks:
                raise restriction_violated("NO_SPECIFIC_TRACK")
            session.context_uri = context_uri
            session.track_ids = new_tracks
            session.index = index or 0
            duration = catalog.tracks[session.track_ids[session.index]].duration_ms
            _play_at(session, now_ms, min(position, duration))
        elif session.track_id is None:
            # Nothing loaded: Spotify resumes the user's last session; start their favourites.
            session.context_uri = None
            session.track_ids = state.plays.taste(ctx.user.id).favourite_track_ids(30)
            session.index = 0
            _play_at(session, now_ms)
        elif session.is_playing and "position_ms" not in body:
            raise restriction_violated()
        else:
            duration = catalog.tracks[session.track_ids[session.index]].duration_ms
            resume_at = session.progress(now_ms, duration)
            _play_at(session, now_ms, min(body.get("position_ms", resume_at), duration))
    return _success(state)


@api.put("/me/player/pause", response_model=None)
async def pause_playback(
    ctx: PlaybackController, state: State, device_id: DeviceQuery = None
) -> Response:
    """Pause; 403 Restriction violated when nothing plays."""
    _check(state, ctx, "pause")
    with state.player.lock:
        session = state.player.session(ctx.user.id)
        _target(session, device_id)
        if not session.is_playing or session.track_id is None:
            raise restriction_violated()
        now_ms = state.clock.now_ms()
        duration = state.catalog.tracks[session.track_ids[session.index]].duration_ms
        session.position_ms = session.progress(now_ms, duration)
        session.since_ms = now_ms
        session.is_playing = False
    return _success(state)


def _skip(state: SimulatorState, ctx: AuthContext, device_id: str | None, step: int) -> None:
    command = "next" if step > 0 else "previous"
    _check(state, ctx, command)
    with state.player.lock:
        session = state.player.session(ctx.user.id)
        _target(session, device_id)
        if session.track_id is None:
            raise restriction_violated()
        target = session.index + step
        if not 0 <= target < len(session.track_ids):
            raise restriction_violated("NO_NEXT_TRACK" if step > 0 else "NO_PREV_TRACK")
        session.index = target
        _play_at(session, state.clock.now_ms())


@api.post("/me/player/next", response_model=None)
async def skip_to_next(
    ctx: PlaybackController, state: State, device_id: DeviceQuery = None
) -> Response:
    """Play the next track of the loaded context."""
    _skip(state, ctx, device_id, +1)
    return _success(state)


@api.post("/me/player/previous", response_model=None)
async def skip_to_previous(
    ctx: PlaybackController, state: State, device_id: DeviceQuery = None
) -> Response:
    """Play the previous track of the loaded context."""
    _skip(state, ctx, device_id, -1)
    return _success(state)


# --- control API ------------------------------------------------------------------------

ControlState = Annotated[SimulatorState, Depends(get_state)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceIn(_Body):
    """One device for `PUT /_sim/player/devices`."""

    id: str | None = Field(None, min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    type: str = Field("Computer", description=f"one of {', '.join(DEVICE_TYPES)}")
    volume_percent: int | None = Field(50, ge=0, le=100)


class DevicesIn(_Body):
    """`PUT /_sim/player/devices`: replace a user's devices (optionally make one active)."""

    user_id: str
    devices: list[DeviceIn]
    active_device_id: str | None = None


class SuccessIn(_Body):
    """`PUT /_sim/player/success`: how successful commands answer."""

    status: int = Field(description="204 (default), 200 with an opaque text body, or 202")


class RefusalIn(_Body):
    """`POST /_sim/player/refusals`: the next `count` matching commands fail."""

    status: int = Field(403, ge=400, le=599)
    reason: str = Field("UNKNOWN", min_length=1, max_length=64)
    message: str | None = None
    command: str | None = Field(None, description=f"one of {', '.join(COMMANDS)}; null: any")
    user_id: str | None = None
    count: int | None = Field(1, ge=1, description="null: until cleared")


def _known_user(state: SimulatorState, user_id: str) -> None:
    if state.user(user_id) is None:
        raise HTTPException(404, f"unknown user {user_id}")


@control.get("")
async def read_player(state: ControlState, user_id: str) -> dict[str, Any]:
    """The user's player as ground truth: devices, active device, loaded tracks, position."""
    _known_user(state, user_id)
    with state.player.lock:
        session = state.player.session(user_id)
        track_id = session.track_id
        duration = state.catalog.tracks[track_id].duration_ms if track_id else 0
        return {
            "user_id": user_id,
            "is_playing": session.is_playing,
            "active_device_id": session.active_device_id,
            "context_uri": session.context_uri,
            "track_id": track_id,
            "index": session.index,
            "track_ids": list(session.track_ids),
            "progress_ms": session.progress(state.clock.now_ms(), duration),
            "devices": [d.as_json(d.id == session.active_device_id) for d in session.devices],
            "success_status": state.player.success_status,
        }


@control.put("/devices")
async def put_devices(body: DevicesIn, state: ControlState) -> dict[str, Any]:
    """Replace the user's devices; an empty list takes every device offline."""
    _known_user(state, body.user_id)
    devices = []
    for n, device in enumerate(body.devices):
        if device.type not in DEVICE_TYPES:
            raise HTTPException(422, f"type must be one of {DEVICE_TYPES}")
        devices.append(
            SimDevice(
                id=device.id or f"{body.user_id}-device-{n}",
                name=device.name,
                type=device.type,
                volume_percent=device.volume_percent,
            )
        )
    ids = [d.id for d in devices]
    if len(set(ids)) != len(ids):
        raise HTTPException(422, "device ids must be unique")
    if body.active_device_id is not None and body.active_device_id not in ids:
        raise HTTPException(422, "active_device_id must name one of the devices")
    state.player.set_devices(body.user_id, devices, body.active_device_id)
    return await read_player(state, body.user_id)


@control.get("/success")
async def get_success(state: ControlState) -> dict[str, int]:
    """How successful commands answer."""
    return {"status": state.player.success_status}


@control.put("/success")
async def put_success(body: SuccessIn, state: ControlState) -> dict[str, int]:
    """204 (Spotify's documented answer), 200 with an opaque text token, or 202."""
    if body.status not in SUCCESS_STATUSES:
        raise HTTPException(422, f"status must be one of {SUCCESS_STATUSES}")
    state.player.set_success_status(body.status)
    return {"status": body.status}


@control.get("/refusals")
async def get_refusals(state: ControlState) -> dict[str, Any]:
    """Forced refusals still armed."""
    return {"refusals": [r.as_dict() for r in state.player.refusals()]}


@control.post("/refusals", status_code=201)
async def post_refusal(body: RefusalIn, state: ControlState) -> dict[str, Any]:
    """Make the next `count` matching commands fail with `status` and `reason`."""
    if body.command is not None and body.command not in COMMANDS:
        raise HTTPException(422, f"command must be one of {COMMANDS}")
    rule = ForcedRefusal(
        status=body.status,
        reason=body.reason,
        message=body.message
        or f"Player command failed: {body.reason.replace('_', ' ').capitalize()}",
        command=body.command,
        user_id=body.user_id,
        remaining=body.count,
    )
    state.player.arm_refusal(rule)
    return rule.as_dict()


@control.delete("/refusals")
async def delete_refusals(state: ControlState) -> dict[str, int]:
    """Disarm every forced refusal."""
    return {"cleared": state.player.clear_refusals()}


router = APIRouter()
router.include_router(api)
router.include_router(control)
