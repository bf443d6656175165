"""The simulator's own control API under `/_sim` (never under `/v1`).

Tests and `make dev` drive the simulator over HTTP with it: reset, mode switch, faults,
latency, rate limit, token expiry/revocation, minted tokens, users, the clock, the
request log, a catalog summary, each user's ground-truth plays (and how many of them
recently-played can reach) and playlist libraries. Nothing here exists on Spotify; these
routes are not subject to faults, latency, rate limits or the request log.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from echostats_synthetic.history import to_epoch_ms

from .accounts import KNOWN_SCOPES
from .config import Mode
from .play_log import PlayCollision
from .playlist_store import SimPlaylist, control_view, pick_tracks, unknown_tracks
from .state import SimulatorState, get_state
from .users import SimUser, private_user_object

router = APIRouter(prefix="/_sim", tags=["simulator control"])
State = Annotated[SimulatorState, Depends(get_state)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetIn(_Body):
    """`POST /_sim/reset` (body optional)."""

    tokens: bool = Field(False, description="also forget every issued code and token")


class ModeIn(_Body):
    """`PUT /_sim/mode`."""

    mode: Mode


class FaultIn(_Body):
    """`POST /_sim/faults`."""

    path_prefix: str = Field("/", pattern=r"^/")
    method: str | None = Field(None, pattern=r"^[A-Za-z]+$")
    status: int = Field(ge=400, le=599)
    count: int | None = Field(1, ge=1, description="null: every matching request until cleared")
    retry_after: int | None = Field(None, ge=0)
    body: Any = None
    reason: str | None = None
    user_id: str | None = None


class LatencyIn(_Body):
    """`PUT /_sim/latency`; `ms: 0` removes the rule."""

    path_prefix: str = Field("/", pattern=r"^/")
    ms: int = Field(ge=0, le=120_000)
    method: str | None = Field(None, pattern=r"^[A-Za-z]+$")


class RateLimitIn(_Body):
    """`PUT /_sim/rate-limit`; `threshold: null` turns the limiter off."""

    threshold: int | None = Field(None, ge=1)
    window_s: float = Field(30.0, gt=0)
    retry_after: int | None = Field(None, ge=0)


class UserSelector(_Body):
    """Target one user, or everyone when `user_id` is null/absent."""

    user_id: str | None = None


class MintIn(_Body):
    """`POST /_sim/tokens`: tokens without the browser dance."""

    user_id: str
    scope: str | None = Field(None, description="space-separated; null = every known scope")
    client_id: str | None = None
    public: bool = Field(False, description="PKCE-style grant whose refresh token rotates")


class UserIn(_Body):
    """`POST /_sim/users`."""

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    display_name: str | None = None
    product: Literal["premium", "free", "open"] = "premium"
    country: str = Field("SE", pattern=r"^[A-Z]{2}$")
    email: str | None = None
    followers: int = Field(0, ge=0)
    explicit_filter_enabled: bool = False
    has_image: bool = True


class ClockIn(_Body):
    """`POST /_sim/clock`: move simulated time forward."""

    advance_s: float = Field(gt=0)


class PlaysIn(_Body):
    """`POST /_sim/plays`: append plays to a user's ground-truth log."""

    user_id: str
    count: int = Field(1, ge=1, le=10_000)
    end: datetime | None = Field(
        None,
        description="when the last play ends (naive = UTC); null: simulated now, or later if"
        " needed so the batch starts after the newest logged play",
    )
    spacing_seconds: int | None = Field(
        None,
        ge=1,
        description="plays end this far apart and last min(track, spacing); null: back to back",
    )


class RecentWindowIn(_Body):
    """`PUT /_sim/recent-window`: how many newest plays recently-played can reach."""

    recent_window: int | None = Field(None, ge=1, description="null: every logged play")


class PlaylistIn(_Body):
    """`POST /_sim/playlists`: a new playlist at the top of a user's library."""

    user_id: str
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(None, pattern=r"^[0-9A-Za-z]{22}$", description="null: derived")
    description: str = ""
    public: bool | None = Field(None, description="null: true unless collaborative")
    collaborative: bool = False
    owner_id: str | None = Field(None, description="null: the user; else a followed playlist")
    owner_display_name: str | None = None
    track_ids: list[str] | None = None
    track_count: int | None = Field(
        None, ge=0, le=10_000, description="without track_ids: this many tracks the user likes"
    )


class PlaylistPatch(_Body):
    """`PATCH /_sim/playlists/{id}`: change fields; every change bumps the snapshot id."""

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    public: bool | None = None
    collaborative: bool | None = None
    track_ids: list[str] | None = None
    track_count: int | None = Field(None, ge=0, le=10_000)


def _require_user(state: SimulatorState, user_id: str | None) -> None:
    if user_id is not None and state.user(user_id) is None:
        raise HTTPException(404, f"unknown user {user_id!r}")


@router.get("/health")
async def health(state: State) -> dict[str, Any]:
    """Liveness/readiness for fixtures and `make dev`."""
    return {"status": "ok", "mode": state.mode, "client_id": state.config.client_id}


@router.post("/reset")
async def reset(state: State, body: ResetIn | None = None) -> dict[str, Any]:
    """Restore seeded users, plays, playlists, mode and knobs; clear faults, latency, log,
    clock."""
    state.reset(tokens=body.tokens if body else False)
    return {"status": "reset", "mode": state.mode}


@router.get("/mode")
async def get_mode(state: State) -> dict[str, Any]:
    """The current app mode."""
    return {"mode": state.mode}


@router.put("/mode")
async def put_mode(body: ModeIn, state: State) -> dict[str, Any]:
    """Switch between `extended` and `development`."""
    return {"mode": state.set_mode(body.mode)}


@router.get("/faults")
async def list_faults(state: State) -> dict[str, Any]:
    """Faults still armed, with remaining shots."""
    return {"faults": [f.as_dict() for f in state.faults.list()]}


@router.post("/faults", status_code=201)
async def arm_fault(body: FaultIn, state: State) -> dict[str, Any]:
    """Arm a fault for the next `count` matching requests."""
    rule = state.faults.arm(**body.model_dump())
    return rule.as_dict()


@router.delete("/faults")
async def clear_faults(state: State) -> dict[str, Any]:
    """Disarm every fault."""
    return {"cleared": state.faults.clear()}


@router.delete("/faults/{fault_id}", status_code=204)
async def delete_fault(fault_id: str, state: State) -> Response:
    """Disarm one fault."""
    if not state.faults.remove(fault_id):
        raise HTTPException(404, "no such fault")
    return Response(status_code=204)


@router.get("/latency")
async def list_latency(state: State) -> dict[str, Any]:
    """Latency rules in force."""
    return {"rules": [asdict(r) for r in state.latency.list()]}


@router.put("/latency")
async def put_latency(body: LatencyIn, state: State) -> dict[str, Any]:
    """Set the extra latency for a path prefix (0 removes it)."""
    state.latency.put(body.path_prefix, body.ms, body.method)
    return {"rules": [asdict(r) for r in state.latency.list()]}


@router.delete("/latency")
async def clear_latency(state: State) -> dict[str, Any]:
    """Remove every latency rule."""
    state.latency.clear()
    return {"rules": []}


@router.get("/rate-limit")
async def get_rate_limit(state: State) -> dict[str, Any]:
    """The sliding-window limiter's settings and current counts."""
    return state.rate_limiter.as_dict()


@router.put("/rate-limit")
async def put_rate_limit(body: RateLimitIn, state: State) -> dict[str, Any]:
    """Configure the per-app sliding-window limit (threshold null turns it off)."""
    state.rate_limiter.configure(body.threshold, body.window_s, body.retry_after)
    return state.rate_limiter.as_dict()


@router.post("/tokens/expire")
async def expire_tokens(state: State, body: UserSelector | None = None) -> dict[str, Any]:
    """Make the current access tokens of a user (or all) answer `The access token expired`."""
    user_id = body.user_id if body else None
    _require_user(state, user_id)
    return {"expired": state.tokens.expire_access(user_id)}


@router.post("/tokens/revoke")
async def revoke_tokens(state: State, body: UserSelector | None = None) -> dict[str, Any]:
    """Revoke refresh tokens of a user (or all): refresh answers `Refresh token revoked`."""
    user_id = body.user_id if body else None
    _require_user(state, user_id)
    return {"revoked": state.tokens.revoke_refresh(user_id)}


@router.post("/tokens", status_code=201)
async def mint_tokens(body: MintIn, state: State) -> dict[str, Any]:
    """Issue tokens for a user directly, as if they had just authorized the app."""
    _require_user(state, body.user_id)
    client_id = body.client_id or state.config.client_id
    if state.app(client_id) is None:
        raise HTTPException(404, f"unknown client {client_id!r}")
    scopes = sorted(KNOWN_SCOPES) if body.scope is None else body.scope.split()
    issued = state.tokens.mint(
        client_id=client_id,
        user_id=body.user_id,
        scopes=tuple(dict.fromkeys(scopes)),
        public=body.public,
    )
    return {**issued.body(), "user_id": body.user_id}


@router.get("/requests")
async def list_requests(
    state: State,
    path_prefix: Annotated[str, Query()] = "",
    method: Annotated[str | None, Query()] = None,
    user_id: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Requests received (oldest first), filtered by path prefix, method and user."""
    records = state.requests.list(path_prefix, method, user_id)
    return {"count": len(records), "requests": [r.as_dict() for r in records]}


@router.delete("/requests")
async def clear_requests(state: State) -> dict[str, Any]:
    """Forget the request log."""
    return {"cleared": state.requests.clear()}


@router.get("/users")
async def list_users(request: Request, state: State) -> dict[str, Any]:
    """Every simulated user with all private fields."""
    base = str(request.base_url).rstrip("/")
    every_scope = frozenset(KNOWN_SCOPES)
    return {"users": [private_user_object(u, base, every_scope) for u in state.users()]}


@router.post("/users", status_code=201)
async def add_user(body: UserIn, request: Request, state: State) -> dict[str, Any]:
    """Add a user who can then sign in with `/authorize?sim_user=<id>`."""
    user = SimUser(**body.model_dump())
    if not state.add_user(user):
        raise HTTPException(409, f"user {body.id!r} exists")
    base = str(request.base_url).rstrip("/")
    return private_user_object(user, base, frozenset(KNOWN_SCOPES))


@router.get("/clock")
async def get_clock(state: State) -> dict[str, Any]:
    """Simulated time and its offset from wall time."""
    return {"now": state.clock.now(), "offset_s": state.clock.offset}


@router.post("/clock")
async def advance_clock(body: ClockIn, state: State) -> dict[str, Any]:
    """Move simulated time forward (expires codes and tokens without sleeping)."""
    offset = state.clock.advance(body.advance_s)
    return {"now": state.clock.now(), "offset_s": offset}


@router.get("/catalog")
async def catalog_summary(
    state: State, sample: Annotated[int, Query(ge=0, le=1000)] = 10
) -> dict[str, Any]:
    """Catalog sizes, genres and the first `sample` ids of each kind."""
    cat = state.catalog
    return {
        "seed": cat.seed,
        "counts": {
            "artists": len(cat.artists),
            "albums": len(cat.albums),
            "tracks": len(cat.tracks),
        },
        "genres": list(cat.genres),
        "sample": {
            "artists": list(cat.artists)[:sample],
            "albums": list(cat.albums)[:sample],
            "tracks": list(cat.tracks)[:sample],
        },
    }


# --- plays ----------------------------------------------------------------------------------


@router.post("/plays", status_code=201)
async def append_plays(body: PlaysIn, state: State) -> dict[str, Any]:
    """Append `count` plays ending at `end` to a user's log; returns them oldest first."""
    _require_user(state, body.user_id)
    end_ms = None
    if body.end is not None:
        end = body.end if body.end.tzinfo else body.end.replace(tzinfo=UTC)
        end_ms = to_epoch_ms(end)
    spacing_ms = None if body.spacing_seconds is None else body.spacing_seconds * 1000
    try:
        plays = state.plays.append(
            body.user_id,
            count=body.count,
            now_ms=state.clock.now_ms(),
            end_ms=end_ms,
            spacing_ms=spacing_ms,
        )
    except PlayCollision as exc:
        raise HTTPException(409, str(exc)) from exc
    return {"count": len(plays), "plays": [p.as_dict() for p in plays]}


@router.get("/plays")
async def list_plays(state: State, user_id: Annotated[str, Query()]) -> dict[str, Any]:
    """The user's whole ground-truth log, oldest first (ignores `recent_window`)."""
    _require_user(state, user_id)
    plays = state.plays.plays(user_id)
    return {"user_id": user_id, "count": len(plays), "plays": [p.as_dict() for p in plays]}


@router.delete("/plays")
async def clear_plays(
    state: State, user_id: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    """Empty one user's log (or everyone's without `user_id`)."""
    _require_user(state, user_id)
    return {"cleared": state.plays.clear(user_id)}


@router.get("/recent-window")
async def get_recent_window(state: State) -> dict[str, Any]:
    """How many of the newest plays recently-played can reach (null: all)."""
    return {"recent_window": state.plays.recent_window}


@router.put("/recent-window")
async def put_recent_window(body: RecentWindowIn, state: State) -> dict[str, Any]:
    """Limit recently-played to the newest N plays (Spotify: 50); null lifts the limit."""
    return {"recent_window": state.plays.set_recent_window(body.recent_window)}


# --- playlists ------------------------------------------------------------------------------


# A playlist created without tracks or a count gets this many tracks the user likes.
NEW_PLAYLIST_TRACKS = 20


def _playlist_tracks(
    state: SimulatorState,
    user_id: str,
    seed_key: str,
    track_ids: list[str] | None,
    track_count: int | None,
) -> tuple[str, ...] | None:
    """Tracks given by id, or `track_count` picks from the user's taste; None: neither."""
    if track_ids is not None and track_count is not None:
        raise HTTPException(422, "give track_ids or track_count, not both")
    if track_ids is not None:
        if unknown := unknown_tracks(state.catalog, track_ids):
            raise HTTPException(422, f"unknown track ids: {unknown[:5]}")
        return tuple(track_ids)
    if track_count is not None:
        taste = state.plays.taste(user_id)
        return pick_tracks(taste, seed_key=seed_key, count=track_count)
    return None


@router.get("/playlists")
async def list_playlists(state: State, user_id: Annotated[str, Query()]) -> dict[str, Any]:
    """The user's library, in the order `GET /v1/me/playlists` lists it."""
    _require_user(state, user_id)
    library = state.playlists.library(user_id)
    views = [control_view(p, state.playlists.holders(p.id)) for p in library]
    return {"user_id": user_id, "count": len(views), "playlists": views}


@router.post("/playlists", status_code=201)
async def create_playlist(body: PlaylistIn, state: State) -> dict[str, Any]:
    """Add a playlist at the top of a user's library (409 if the id exists)."""
    _require_user(state, body.user_id)
    collaborative = body.collaborative
    public = (not collaborative) if body.public is None else body.public
    if collaborative and public:
        raise HTTPException(422, "a collaborative playlist cannot be public")
    if body.track_ids is not None and body.track_count is not None:
        raise HTTPException(422, "give track_ids or track_count, not both")
    owner_id = body.owner_id or body.user_id
    owner = state.user(owner_id)
    display_name = body.owner_display_name or (owner.display_name if owner else owner_id)
    playlist_id = body.id or state.playlists.next_id(body.user_id)
    count = body.track_count
    if body.track_ids is None and count is None:
        count = NEW_PLAYLIST_TRACKS
    tracks = _playlist_tracks(state, body.user_id, playlist_id, body.track_ids, count)
    playlist = SimPlaylist(
        id=playlist_id,
        name=body.name,
        owner_id=owner_id,
        owner_display_name=display_name,
        description=body.description,
        public=public,
        collaborative=collaborative,
        track_ids=tracks or (),
    )
    if not state.playlists.create(body.user_id, playlist):
        raise HTTPException(409, f"playlist {playlist_id!r} exists")
    return control_view(playlist, state.playlists.holders(playlist_id))


@router.patch("/playlists/{playlist_id}")
async def update_playlist(playlist_id: str, body: PlaylistPatch, state: State) -> dict[str, Any]:
    """Change a playlist's fields or tracks; its snapshot id changes."""
    current = state.playlists.get(playlist_id)
    if current is None:
        raise HTTPException(404, "no such playlist")
    changes = body.model_dump(exclude_none=True, exclude={"track_ids", "track_count"})
    holder = (state.playlists.holders(playlist_id) or [current.owner_id])[0]
    tracks = _playlist_tracks(
        state, holder, f"{playlist_id}:{current.version}", body.track_ids, body.track_count
    )
    if tracks is not None:
        changes["track_ids"] = tracks
    if changes.get("collaborative", current.collaborative) and changes.get(
        "public", current.public
    ):
        raise HTTPException(422, "a collaborative playlist cannot be public")
    updated = state.playlists.update(playlist_id, **changes)
    if updated is None:
        raise HTTPException(404, "no such playlist")
    return control_view(updated, state.playlists.holders(playlist_id))


@router.delete("/playlists/{playlist_id}", status_code=204)
async def delete_playlist(playlist_id: str, state: State) -> Response:
    """Delete a playlist from every library."""
    if not state.playlists.delete(playlist_id):
        raise HTTPException(404, "no such playlist")
    return Response(status_code=204)
