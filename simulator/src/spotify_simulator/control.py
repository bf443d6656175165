"""The simulator's own control API under `/_sim` (never under `/v1`).

Tests and `make dev` drive the simulator over HTTP with it: reset, mode switch, faults,
latency, rate limit, token expiry/revocation, minted tokens, users, the clock, the
request log and a catalog summary. Nothing here exists on Spotify; these routes are not
subject to faults, latency, rate limits or the request log.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .accounts import KNOWN_SCOPES
from .config import Mode
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


def _require_user(state: SimulatorState, user_id: str | None) -> None:
    if user_id is not None and state.user(user_id) is None:
        raise HTTPException(404, f"unknown user {user_id!r}")


@router.get("/health")
async def health(state: State) -> dict[str, Any]:
    """Liveness/readiness for fixtures and `make dev`."""
    return {"status": "ok", "mode": state.mode, "client_id": state.config.client_id}


@router.post("/reset")
async def reset(state: State, body: ResetIn | None = None) -> dict[str, Any]:
    """Restore seeded users and the configured mode; clear faults, latency, log, clock."""
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
