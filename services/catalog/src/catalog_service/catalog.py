"""Use cases of single lookups: a track or artist from the catalog, or from Spotify on a miss.

A stored document is served as it is. On a miss (or a document that holds only what plays
said), and only when the caller names a user whose token can be used, the single lookup
(`/v1/tracks/{id}`, `/v1/artists/{id}`, open to every app) is made at interactive
priority and its answer stored. Ids that are not Spotify ids (22 base62 characters) are
answered NOT_FOUND without calling Spotify.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import grpc

from catalog_service.enrichment import Enricher
from catalog_service.repository import CatalogRepository
from echostats_platform.errors import NotFound
from echostats_spotify import Priority, SpotifyBadRequest, SpotifyClient, SpotifyNotFound

log = logging.getLogger(__name__)

_SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{22}")
TRACK_NOT_FOUND = "TRACK_NOT_FOUND"
ARTIST_NOT_FOUND = "ARTIST_NOT_FOUND"


def is_spotify_id(value: str) -> bool:
    """Whether `value` is shaped like a Spotify id."""
    return bool(_SPOTIFY_ID.fullmatch(value))


class CatalogLookups:
    """GetTrack / GetArtist."""

    def __init__(
        self, *, catalog: CatalogRepository, enricher: Enricher, spotify: SpotifyClient
    ) -> None:
        self._catalog = catalog
        self._enricher = enricher
        self._spotify = spotify

    async def track(self, spotify_id: str, user_id: str | None) -> dict[str, Any]:
        """The track, fetched on a miss when a user's token is available."""
        if not is_spotify_id(spotify_id):
            raise NotFound("Track not found", reason=TRACK_NOT_FOUND)
        stored = (await self._catalog.get_tracks([spotify_id])).get(spotify_id)
        if stored is not None and stored.get("enriched"):
            return stored
        if user_id:
            body = await self._fetch(f"/v1/tracks/{spotify_id}", user_id)
            if body is not None:
                await self._enricher.store_tracks(user_id, [body])
                stored = (await self._catalog.get_tracks([spotify_id])).get(spotify_id)
        # A placeholder (names from plays) is served; an id Spotify called unknown is not.
        if stored is None or stored.get("missing"):
            raise NotFound("Track not found", reason=TRACK_NOT_FOUND)
        return stored

    async def artist(self, spotify_id: str, user_id: str | None) -> dict[str, Any]:
        """The artist, fetched on a miss when a user's token is available."""
        if not is_spotify_id(spotify_id):
            raise NotFound("Artist not found", reason=ARTIST_NOT_FOUND)
        stored = (await self._catalog.get_artists([spotify_id])).get(spotify_id)
        if stored is None and user_id:
            body = await self._fetch(f"/v1/artists/{spotify_id}", user_id)
            if body is not None:
                await self._enricher.store_artists([body])
                stored = (await self._catalog.get_artists([spotify_id])).get(spotify_id)
        if stored is None:
            raise NotFound("Artist not found", reason=ARTIST_NOT_FOUND)
        return stored

    async def _fetch(self, path: str, user_id: str) -> dict[str, Any] | None:
        """The object, or None when Spotify does not know it or no token can be had."""
        try:
            body = await self._spotify.get_json(
                path, user_id=user_id, priority=Priority.INTERACTIVE
            )
        except (SpotifyNotFound, SpotifyBadRequest):
            return None
        except grpc.aio.AioRpcError as exc:
            # No token for this user (no Spotify account linked, sign-in needed): the
            # request is still answered from what is stored.
            log.info("no token for lookup", extra={"user_id": user_id, "code": exc.code().name})
            return None
        return body if isinstance(body, dict) and body.get("id") else None
