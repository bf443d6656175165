"""`GET /v1/me/player/recently-played`: the user's play history as a cursor page (ref §2, §3).

Scope `user-read-recently-played`. `limit` is 1-50 (default 20, anything else 400
`Invalid limit`); `after` and `before` are Unix ms and exclusive, and sending both is a 400.

Which plays a page holds (played_at = when the play ended, unique per user):
- no cursor: the `limit` most recent plays;
- `before=T`: the `limit` most recent plays with played_at < T;
- `after=T`: the `limit` plays immediately after T, i.e. the OLDEST plays with
  played_at > T. A client that polls with the last `cursors.after` it saw therefore gets
  every newer play exactly once, however many arrived between polls.
Items are always newest first. `cursors.after` is the newest played_at in the page and
`cursors.before` the oldest (Unix-ms strings); `cursors` is null for an empty page. `next`
pages back in time (`before=<cursors.before>`) and is null when no older play is reachable.
There is no `total`: Spotify's recently-played pages do not carry one.

Unlike Spotify, which keeps only the last 50 plays reachable, the simulator serves the whole
log unless `recent_window` (config, or `PUT /_sim/recent-window`) limits it. The log holds
the ground truth (`GET /_sim/plays`); every logged play is listed, including any shorter
than the 30 s Spotify requires, which only appear if a test asked for them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from .auth import AuthContext, State, require_scopes
from .clock import iso_utc_ms
from .errors import WebApiError
from .objects import context_object, track_object
from .urls import api_base, api_url

router = APIRouter(prefix="/v1", tags=["player"])

RecentlyPlayedReader = Annotated[AuthContext, Depends(require_scopes("user-read-recently-played"))]


@router.get("/me/player/recently-played")
async def get_recently_played(
    request: Request,
    ctx: RecentlyPlayedReader,
    state: State,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    after: Annotated[int | None, Query(ge=0)] = None,
    before: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """A cursor page of the user's recently played tracks, newest first."""
    if after is not None and before is not None:
        raise WebApiError(400, "Only one of after or before may be specified")
    plays, has_older = state.plays.recently_played(
        ctx.user.id, limit=limit, after=after, before=before
    )
    base = api_base(request)
    path = request.url.path
    items = [
        {
            "track": track_object(state.catalog, play.track_id, base, state.mode),
            "played_at": iso_utc_ms(play.played_at_ms),
            "context": context_object(play.context_uri, base),
        }
        for play in plays
    ]
    cursors = None
    next_url = None
    if plays:
        newest, oldest = plays[0].played_at_ms, plays[-1].played_at_ms
        cursors = {"after": str(newest), "before": str(oldest)}
        if has_older:
            next_url = api_url(request, path, {"before": oldest, "limit": limit})
    return {
        "href": api_url(request, path, {"after": after, "before": before, "limit": limit}),
        "items": items,
        "limit": limit,
        "next": next_url,
        "cursors": cursors,
    }
