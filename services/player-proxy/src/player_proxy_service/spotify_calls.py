"""The Spotify calls this context makes, through the one shared client at INTERACTIVE priority.

Each method is one logical call for one user: it returns Spotify's JSON (None for a 204)
or raises a domain error. Player refusals are translated by `errors.player_error`; browse
endpoints Spotify closed to the app (featured playlists 404 since Nov 2024, new releases
and categories 403 in development mode since 2026) come back as `Closed` instead of an
error, so the caller can answer with an empty list and a reason. The proxy always asks
Spotify rather than trusting a remembered closure: the call is cheap, a user is waiting,
and the answer changes the moment the app gains Extended Quota Mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from echostats_spotify.client import SpotifyClient
from echostats_spotify.errors import SpotifyHTTPError
from echostats_spotify.priority import Priority
from player_proxy_service.errors import player_error

PLAYER = "/v1/me/player"


@dataclass(frozen=True, slots=True)
class Closed:
    """Spotify closed this endpoint to the app; `reason` says so in the user's words."""

    reason: str


CLOSED_REASONS = {
    "/v1/browse/featured-playlists": (
        "Spotify no longer offers featured playlists to this app (withdrawn in November 2024)"
    ),
    "/v1/browse/new-releases": ("Spotify does not offer new releases to development-mode apps"),
    "/v1/browse/categories": ("Spotify does not offer browse categories to development-mode apps"),
}


class SpotifyPlayerCalls:
    """Player, browse and library calls as one user, interactive priority."""

    def __init__(self, api: SpotifyClient) -> None:
        self._api = api

    async def _get(self, user_id: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._api.get_json(
            path, user_id=user_id, params=params, priority=Priority.INTERACTIVE
        )

    async def _player_get(self, user_id: str, path: str) -> Any:
        try:
            return await self._get(user_id, path)
        except SpotifyHTTPError as exc:
            translated = player_error(exc)
            if translated is exc:
                raise
            raise translated from exc

    async def playback(self, user_id: str) -> dict[str, Any] | None:
        """GET /me/player: the playback state, None when Spotify answered 204."""
        body = await self._player_get(user_id, PLAYER)
        return body if isinstance(body, dict) else None

    async def devices(self, user_id: str) -> list[dict[str, Any]]:
        """GET /me/player/devices."""
        body = await self._player_get(user_id, f"{PLAYER}/devices")
        return list((body or {}).get("devices") or [])

    async def queue(self, user_id: str) -> dict[str, Any]:
        """GET /me/player/queue (an empty queue when Spotify sent no body)."""
        body = await self._player_get(user_id, f"{PLAYER}/queue")
        return body if isinstance(body, dict) else {}

    async def command(
        self,
        user_id: str,
        method: str,
        action: str,
        *,
        device_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> int:
        """Send a player command; returns Spotify's success status (204, 200 or 202).

        Spotify has answered success as 204 (documented), 200 with an opaque text token
        (observed 2024-2025) and 202 (a device waking up); any status below 300 counts,
        and the body is never parsed.
        """
        params = {"device_id": device_id} if device_id else None
        try:
            response = await self._api.request(
                method,
                f"{PLAYER}/{action}",
                user_id=user_id,
                params=params,
                json=body or None,
                priority=Priority.INTERACTIVE,
            )
        except SpotifyHTTPError as exc:
            translated = player_error(exc)
            if translated is exc:
                raise
            raise translated from exc
        return response.status

    async def browse(self, user_id: str, path: str, *, limit: int) -> dict[str, Any] | Closed:
        """GET a /browse endpoint, or `Closed` when Spotify closed it to the app."""
        try:
            body = await self._get(user_id, path, {"limit": limit})
        except SpotifyHTTPError as exc:
            if exc.capability is not None and path in CLOSED_REASONS:
                return Closed(CLOSED_REASONS[path])
            raise
        return body if isinstance(body, dict) else {}

    async def followed_artists(
        self, user_id: str, *, limit: int, max_pages: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Up to `limit` followed artists and Spotify's total, following the `after` cursor."""
        items: list[dict[str, Any]] = []
        total = 0
        path: str = "/v1/me/following"
        params: dict[str, Any] | None = {"type": "artist", "limit": limit}
        for _ in range(max_pages):
            body = await self._get(user_id, path, params)
            page = (body or {}).get("artists") or {}
            total = int(page.get("total") or 0)
            items += page.get("items") or []
            after = (page.get("cursors") or {}).get("after")
            if len(items) >= limit or not page.get("next") or not after:
                break
            # Spotify may hand out fewer than asked; ask for the rest after the cursor.
            params = {"type": "artist", "limit": limit - len(items), "after": after}
        return items[:limit], max(total, len(items))

    async def saved_albums(self, user_id: str, *, limit: int, offset: int) -> dict[str, Any]:
        """GET /me/albums: an offset page of {added_at, album}."""
        body = await self._get(user_id, "/v1/me/albums", {"limit": limit, "offset": offset})
        return body if isinstance(body, dict) else {}
