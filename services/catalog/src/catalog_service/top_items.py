"""Syncing a user's top tracks and artists (`GET /v1/me/top/{tracks|artists}`).

Three time ranges by two kinds, 50 items each: six calls. The full track and artist objects
in the answers are stored in the catalog (so top items are enriched without further calls;
their artists and audio features are queued like any other track's), and the ranked ids
per range are kept in `top_items`. Spotify recomputes top items about once a day, so a sync
refreshes them at most every `top_items_min_interval_seconds` (6 h by default); periodic
syncs in between report the step as skipped with the time of the last refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from catalog_service.enrichment import Enricher
from catalog_service.repository import PlaylistRepository
from echostats_spotify import Priority, SpotifyClient

TIME_RANGES = ("short_term", "medium_term", "long_term")
LIMIT = 50


@dataclass(frozen=True, slots=True)
class TopItemsReport:
    """Distinct tracks and artists stored, or when they were last synced if not now."""

    tracks: int
    artists: int
    # Set when the rankings were fresh enough and nothing was fetched.
    fresh_since: datetime | None = None


class TopItemsSync:
    """Reads the user's top items and stores them."""

    def __init__(
        self,
        *,
        spotify: SpotifyClient,
        enricher: Enricher,
        store: PlaylistRepository,
        min_interval_seconds: float,
    ) -> None:
        self._spotify = spotify
        self._enricher = enricher
        self._store = store
        self._min_interval = timedelta(seconds=min_interval_seconds)

    async def sync(self, user_id: str) -> TopItemsReport:
        """Fetch both kinds for every range; store new objects once, and the rankings."""
        last = await self._store.top_synced_at(user_id)
        if last is not None and datetime.now(UTC) - last < self._min_interval:
            return TopItemsReport(0, 0, fresh_since=last)
        tracks: dict[str, dict] = {}
        artists: dict[str, dict] = {}
        rankings: dict[str, list[str]] = {}
        for time_range in TIME_RANGES:
            for kind, seen in (("tracks", tracks), ("artists", artists)):
                page = await self._spotify.get_json(
                    f"/v1/me/top/{kind}",
                    user_id=user_id,
                    params={"time_range": time_range, "limit": LIMIT},
                    priority=Priority.BACKGROUND,
                )
                items = [
                    i
                    for i in ((page or {}).get("items") or ())
                    if isinstance(i, dict) and i.get("id")
                ]
                for item in items:
                    seen.setdefault(str(item["id"]), item)
                rankings[f"{kind}:{time_range}"] = [str(i["id"]) for i in items]
        # Objects already enriched are left as they are: one write per new object keeps a
        # periodic sync cheap on the database.
        await self._enricher.store_tracks(
            user_id, await self._enricher.not_enriched("tracks", tracks)
        )
        await self._enricher.store_artists(await self._enricher.not_enriched("artists", artists))
        await self._store.store_top(user_id, rankings, datetime.now(UTC))
        return TopItemsReport(len(tracks), len(artists))
