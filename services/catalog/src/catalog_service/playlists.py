"""Syncing a user's playlists from Spotify (`GET /v1/me/playlists`) and listing them.

A sync reads the whole library (50 per page, following `next`), then writes the
difference: playlists not stored yet are added, stored ones whose fields changed (name,
description, image, count, owner, visibility, `snapshot_id`) are updated, and stored ones
no longer in the library are deleted. Deletion happens only after the listing was read to
the end, so an error halfway never removes anything. The count block is `tracks` before and
`items` after Spotify's Feb 2026 rename; both are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalog_service.models import external_url, first_image
from catalog_service.repository import PlaylistRepository
from echostats_spotify import Priority, SpotifyClient

PAGE_SIZE = 50
# Fields compared to decide whether a stored playlist changed.
_COMPARED = (
    "name",
    "description",
    "image_url",
    "tracks_total",
    "owner",
    "public",
    "collaborative",
    "snapshot_id",
    "position",
)


@dataclass(frozen=True, slots=True)
class PlaylistSyncReport:
    """What one playlist sync did."""

    total: int
    added: int
    changed: int
    removed: int


def playlist_fields(item: dict[str, Any], position: int) -> dict[str, Any] | None:
    """Our playlist fields from Spotify's simplified playlist (None for a malformed item)."""
    spotify_id = item.get("id")
    if not spotify_id:
        return None
    block = item.get("items") if isinstance(item.get("items"), dict) else item.get("tracks")
    total = block.get("total") if isinstance(block, dict) else None
    owner = item.get("owner") if isinstance(item.get("owner"), dict) else {}
    description = item.get("description") or None
    return {
        "spotify_id": str(spotify_id),
        "name": str(item.get("name") or ""),
        "description": description,
        "image_url": first_image(item),
        "tracks_total": int(total or 0),
        "owner": owner.get("display_name") or owner.get("id"),
        "public": item.get("public"),
        "collaborative": bool(item.get("collaborative")),
        "external_url": external_url("playlist", str(spotify_id), item),
        "snapshot_id": item.get("snapshot_id"),
        "position": position,
    }


class PlaylistSync:
    """Reads a user's playlists from Spotify and keeps the stored copy equal to it."""

    def __init__(self, *, spotify: SpotifyClient, playlists: PlaylistRepository) -> None:
        self._spotify = spotify
        self._playlists = playlists

    async def sync(self, user_id: str) -> PlaylistSyncReport:
        """Fetch the whole library, then add, update and delete to match it."""
        fetched: dict[str, dict[str, Any]] = {}
        url: str | None = "/v1/me/playlists"
        params: dict[str, Any] | None = {"limit": PAGE_SIZE}
        while url:
            page = await self._spotify.get_json(
                url, user_id=user_id, params=params, priority=Priority.BACKGROUND
            )
            params = None  # `next` carries its own query
            page = page if isinstance(page, dict) else {}
            for item in page.get("items") or ():
                fields = playlist_fields(item, len(fetched)) if isinstance(item, dict) else None
                if fields is not None and fields["spotify_id"] not in fetched:
                    fetched[fields["spotify_id"]] = fields
            url = page.get("next")
        stored = {doc["spotify_id"]: doc for doc in await self._playlists.list_for_user(user_id)}
        added = [p for i, p in fetched.items() if i not in stored]
        changed = [
            p
            for i, p in fetched.items()
            if i in stored and any(stored[i].get(f) != p.get(f) for f in _COMPARED)
        ]
        now = datetime.now(UTC)
        await self._playlists.upsert(user_id, [*added, *changed], now)
        removed = await self._playlists.delete(user_id, [i for i in stored if i not in fetched])
        return PlaylistSyncReport(len(fetched), len(added), len(changed), removed)
