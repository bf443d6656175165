"""Spotify's offset paging object (ref §3), with links that point back at the simulator."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from .urls import api_url


def offset_page(
    request: Request,
    items: list[Any],
    *,
    total: int,
    limit: int,
    offset: int,
    params: dict[str, object] | None = None,
) -> dict[str, Any]:
    """`{"href","items","limit","next","offset","previous","total"}` for one page.

    `params` are extra query parameters (e.g. `time_range`) repeated in every link.
    """
    path = request.url.path
    extra = params or {}

    def link(at: int) -> str:
        return api_url(request, path, {**extra, "offset": at, "limit": limit})

    return {
        "href": link(offset),
        "items": items,
        "limit": limit,
        "next": link(offset + limit) if offset + limit < total else None,
        "offset": offset,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
        "total": total,
    }
