"""Absolute URLs that point back at this simulator.

Spotify puts full URLs in `href`, `next` and `previous`, and clients follow them, so the
simulator must answer with its own base URL (whatever host/port the client used), never
with api.spotify.com.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request


def api_base(request: Request) -> str:
    """Scheme, host and port this request reached, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def api_url(request: Request, path: str, params: dict[str, object] | None = None) -> str:
    """An absolute simulator URL for `path` (e.g. `/v1/me`) with optional query params."""
    url = api_base(request) + path
    if params:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        if query:
            url += "?" + query
    return url
