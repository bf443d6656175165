"""Shared rules of the catalog lookups: parsing `ids=` lists and single ids (ref §2, §3).

A batch takes a comma-separated `ids` list of at most `limit` ids (more: 400 `too many ids
requested`, observed); an empty or malformed list is 400 `invalid id`. Unknown ids come back
as `null` in request order. A single lookup answers 400 `invalid id` or 404 `non existing id`.
"""

from __future__ import annotations

from echostats_synthetic.ids import is_spotify_id

from .errors import WebApiError


def parse_batch_ids(ids: str, limit: int) -> list[str]:
    """The requested ids in order, or the 400 Spotify answers for a bad list."""
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    if not wanted:
        raise WebApiError(400, "invalid id")
    if len(wanted) > limit:
        raise WebApiError(400, "too many ids requested")
    if not all(is_spotify_id(i) for i in wanted):
        raise WebApiError(400, "invalid id")
    return wanted


def check_single_id(entity_id: str, known: bool) -> None:
    """400 for a malformed id, 404 `non existing id` for one the catalog does not know."""
    if not is_spotify_id(entity_id):
        raise WebApiError(400, "invalid id")
    if not known:
        raise WebApiError(404, "non existing id")
