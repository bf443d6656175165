"""`GET /v1/me/top/artists` and `/v1/me/top/tracks`: the user's top items (ref §2).

Scope `user-top-read`. `time_range` is `short_term` (4 weeks), `medium_term` (6 months,
the default) or `long_term` (1 year), anything else 400 `Invalid time_range`; `limit`
1-50 (default 20); `offset` 0 or more. The answer is an offset page of full Artist or
Track objects (dev mode strips artist `followers`/`popularity` and track `popularity`).

The ranking comes from the user's play log: plays that ended within the range before the
simulated now, counted per track (or per credited artist), most played first, ties to the
more recently played. When that gives fewer than 50 items the user's synthetic favourites
(`echostats_synthetic.ListenerTaste`) fill the list up to 50, so a new account still has
top items, as on Spotify.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from .auth import AuthContext, State, require_scopes
from .objects import artist_object, track_object
from .paging import offset_page
from .state import SimulatorState
from .urls import api_base

router = APIRouter(prefix="/v1", tags=["top items"])

TopReader = Annotated[AuthContext, Depends(require_scopes("user-top-read"))]

# A page of 50 is always full: the most Spotify lets a client ask for at once.
TOP_MINIMUM = 50
_DAY_MS = 86_400_000


class TimeRange(StrEnum):
    """How far back top items look."""

    SHORT_TERM = "short_term"
    MEDIUM_TERM = "medium_term"
    LONG_TERM = "long_term"


RANGE_DAYS = {TimeRange.SHORT_TERM: 28, TimeRange.MEDIUM_TERM: 182, TimeRange.LONG_TERM: 365}


TimeRangeQuery = Annotated[TimeRange, Query()]
LimitQuery = Annotated[int, Query(ge=1, le=50)]
OffsetQuery = Annotated[int, Query(ge=0, le=100_000)]


@router.get("/me/top/artists")
async def get_top_artists(
    request: Request,
    ctx: TopReader,
    state: State,
    time_range: TimeRangeQuery = TimeRange.MEDIUM_TERM,
    limit: LimitQuery = 20,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    """An offset page of the user's top artists for `time_range`."""
    ranking = _ranking(state, ctx, "artists", time_range)
    base = api_base(request)
    items = [
        artist_object(state.catalog.artists[a], base, state.mode)
        for a in ranking[offset : offset + limit]
    ]
    return _page(request, items, ranking, limit, offset, time_range)


@router.get("/me/top/tracks")
async def get_top_tracks(
    request: Request,
    ctx: TopReader,
    state: State,
    time_range: TimeRangeQuery = TimeRange.MEDIUM_TERM,
    limit: LimitQuery = 20,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    """An offset page of the user's top tracks for `time_range`."""
    ranking = _ranking(state, ctx, "tracks", time_range)
    base = api_base(request)
    items = [
        track_object(state.catalog, t, base, state.mode) for t in ranking[offset : offset + limit]
    ]
    return _page(request, items, ranking, limit, offset, time_range)


def _ranking(
    state: SimulatorState, ctx: AuthContext, kind: str, time_range: TimeRange
) -> list[str]:
    since_ms = state.clock.now_ms() - RANGE_DAYS[time_range] * _DAY_MS
    return state.plays.ranked(ctx.user.id, kind=kind, since_ms=since_ms, minimum=TOP_MINIMUM)


def _page(
    request: Request,
    items: list[dict[str, Any]],
    ranking: list[str],
    limit: int,
    offset: int,
    time_range: TimeRange,
) -> dict[str, Any]:
    return offset_page(
        request,
        items,
        total=len(ranking),
        limit=limit,
        offset=offset,
        params={"time_range": time_range.value},
    )
