"""Reading Spotify's recently-played feed: page parsing and the cursor walk (no I/O here).

Spotify pages `/me/player/recently-played` with Unix-ms cursors, at most 50 items a page,
newest first within a page. How we walk it so that no play is lost:

- **With a stored cursor** (the newest end-of-play time already stored, in ms) we page
  **forward**: `after=<cursor>`, then `after=<that page's cursors.after>`, until a page
  is empty or shorter than the limit. Each page is stored before the cursor moves past
  it, so a crash never leaves a gap; more than 50 new plays between two syncs arrive over
  several pages.
- **Without a cursor** (first sync) we page **backward** from now: no cursor, then
  `before=<that page's cursors.before>`, until a page is empty or short, or after
  `first_sync_max_pages` pages. The cursor is saved only when the walk is over (as the
  newest play seen): a first sync that dies midway starts over from now, and the plays it
  already stored dedupe by id.

Either walk also stops when a page does not move the cursor, so a misbehaving server can
never make it loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ingestion_service.identity import is_track_id, parse_spotify_time, played_at_ms
from ingestion_service.models import Play, PlaySource, PlayTrack

PAGE_LIMIT = 50
ENDPOINT = "/v1/me/player/recently-played"


@dataclass(frozen=True, slots=True)
class RecentlyPlayedPage:
    """One parsed page: the plays we keep, what we skipped, and the page's cursors."""

    plays: list[Play]
    # Items on the page (kept or not): decides whether the page was full.
    item_count: int
    # Items without a Spotify track id (local files, episodes) or without a time.
    skipped: int
    cursor_after: int | None
    cursor_before: int | None
    # Newest and oldest end-of-play times on the page (Unix ms), items we skipped included.
    newest_ms: int | None
    oldest_ms: int | None


def _cursor(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _play_from_item(item: dict[str, Any], *, user_id: str) -> Play | None:
    track = item.get("track") or {}
    track_id = track.get("id")
    if not is_track_id(track_id) or track.get("type", "track") != "track":
        return None
    if not item.get("played_at"):
        return None
    artists = [artist for artist in track.get("artists") or [] if artist]
    album = track.get("album") or {}
    images = album.get("images") or []
    context = item.get("context") or {}
    duration_ms = int(track.get("duration_ms") or 0)
    return Play(
        user_id=user_id,
        track=PlayTrack(
            spotify_id=track_id,
            name=track.get("name") or "",
            # The primary artist, as the privacy exports name it, so a play shows the same
            # whichever source stored it first; every artist id is kept beside it.
            artist_name=(artists[0].get("name") or "") if artists else "",
            album_name=album.get("name") or "",
            duration_ms=duration_ms,
            album_image_url=(images[0].get("url") if images else None),
            artist_ids=tuple(a["id"] for a in artists if a.get("id")),
            album_id=album.get("id"),
        ),
        played_at=parse_spotify_time(item["played_at"]),
        # Recently-played does not report listening time; the play ended, so count the
        # whole track (documented on Play.ms_played).
        ms_played=duration_ms,
        source=PlaySource.API,
        context_type=context.get("type"),
        context_uri=context.get("uri"),
    )


def parse_page(body: Any, *, user_id: str) -> RecentlyPlayedPage:
    """Parse a recently-played cursor page into plays for `user_id`."""
    body = body if isinstance(body, dict) else {}
    items = [item for item in body.get("items") or [] if isinstance(item, dict)]
    plays: list[Play] = []
    times: list[int] = []
    for item in items:
        play = _play_from_item(item, user_id=user_id)
        if play is not None:
            plays.append(play)
            times.append(played_at_ms(play.played_at))
        elif item.get("played_at"):
            # A skipped item still moves the cursor: its time was seen.
            times.append(played_at_ms(parse_spotify_time(item["played_at"])))
    cursors = body.get("cursors") or {}
    return RecentlyPlayedPage(
        plays=plays,
        item_count=len(items),
        skipped=len(items) - len(plays),
        cursor_after=_cursor(cursors.get("after")),
        cursor_before=_cursor(cursors.get("before")),
        newest_ms=max(times) if times else None,
        oldest_ms=min(times) if times else None,
    )


class Direction(StrEnum):
    """Which way a walk pages: forward from a stored cursor, or backward from now."""

    FORWARD = "forward"
    BACKWARD = "backward"


@dataclass
class CursorWalk:
    """Decides each request of one recently-played walk from the pages seen so far."""

    direction: Direction
    # FORWARD: the `after` of the next request. BACKWARD: its `before` (None = from now).
    cursor_ms: int | None
    max_pages: int
    limit: int = PAGE_LIMIT
    pages: int = 0
    done: bool = False
    # Newest end-of-play time seen on any page (what the stored cursor becomes).
    newest_ms: int | None = None
    stop_reason: str = field(default="")

    @classmethod
    def start(
        cls, stored_cursor_ms: int | None, *, first_sync_max_pages: int, max_forward_pages: int
    ) -> CursorWalk:
        """Forward from the stored cursor, or backward from now when there is none."""
        if stored_cursor_ms is None:
            return cls(Direction.BACKWARD, None, max_pages=first_sync_max_pages)
        return cls(
            Direction.FORWARD,
            stored_cursor_ms,
            max_pages=max_forward_pages,
            newest_ms=stored_cursor_ms,
        )

    def params(self) -> dict[str, int]:
        """Query parameters of the next request."""
        params = {"limit": self.limit}
        if self.direction is Direction.FORWARD:
            assert self.cursor_ms is not None
            params["after"] = self.cursor_ms
        elif self.cursor_ms is not None:
            params["before"] = self.cursor_ms
        return params

    def advance(self, page: RecentlyPlayedPage) -> None:
        """Take a page in: move the cursor, or mark the walk done (with the reason)."""
        self.pages += 1
        if page.newest_ms is not None:
            self.newest_ms = max(self.newest_ms or page.newest_ms, page.newest_ms)
        if page.item_count == 0:
            self._stop("empty page")
            return
        if self.direction is Direction.FORWARD:
            nxt = page.cursor_after if page.cursor_after is not None else page.newest_ms
            moved = nxt is not None and self.cursor_ms is not None and nxt > self.cursor_ms
        else:
            nxt = page.cursor_before if page.cursor_before is not None else page.oldest_ms
            moved = nxt is not None and (self.cursor_ms is None or nxt < self.cursor_ms)
        if page.item_count < self.limit:
            self._stop("short page")
        elif not moved:
            self._stop("cursor did not move")
        elif self.pages >= self.max_pages:
            self._stop("page limit reached")
        else:
            self.cursor_ms = nxt

    def _stop(self, reason: str) -> None:
        self.done = True
        self.stop_reason = reason
