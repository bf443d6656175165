"""Extended Quota Mode vs Development Mode: the switch and the tools routers use for it.

What a Development Mode app loses (ref §4) is declared per endpoint, next to the route:
- `closed_in_development(403)` / `closed_in_development(404)`: a dependency that refuses
  the whole endpoint, with Spotify's body for that case (`Forbidden`, a bare
  `{"error":{"status":403}}` for audio features via `message=None`, or 404
  `Service not found`). It authenticates first, as Spotify does (401 beats 403).
- `strip_dev_fields(kind, obj, mode)`: removes the fields Feb 2026 took from dev-mode
  responses (`DEV_MODE_REMOVED_FIELDS`), e.g. `country`/`email`/`product` from `GET /me`.

Example for a later router::

    @router.get("/audio-features", dependencies=[Depends(closed_in_development(403, None))])
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from .auth import Auth, AuthContext, State
from .config import Mode
from .errors import WebApiError

# Fields removed from dev-mode responses by the Feb 2026 change (ref §4). `genres` is
# only flagged by the OpenAPI file, so it is kept; `external_ids` came back in Mar 2026.
DEV_MODE_REMOVED_FIELDS: dict[str, frozenset[str]] = {
    "user": frozenset({"country", "email", "explicit_content", "followers", "product"}),
    "track": frozenset({"available_markets", "linked_from", "popularity"}),
    "album": frozenset({"album_group", "available_markets", "label", "popularity"}),
    "artist": frozenset({"followers", "popularity"}),
    "show": frozenset({"available_markets", "publisher"}),
    "audiobook": frozenset({"available_markets", "publisher"}),
    "chapter": frozenset({"available_markets"}),
}

_DEFAULT_MESSAGES = {403: "Forbidden", 404: "Service not found"}
_UNSET: Any = object()


def closed_in_development(
    status: int = 403, message: str | None = _UNSET
) -> Callable[..., Coroutine[Any, Any, AuthContext]]:
    """Dependency factory: in Development Mode the endpoint answers `status` instead.

    `message=None` sends the bare `{"error":{"status":403}}` Spotify uses for audio
    features; by default the message is `Forbidden` (403) or `Service not found` (404).
    """
    text = _DEFAULT_MESSAGES.get(status, "Forbidden") if message is _UNSET else message

    async def dependency(ctx: Auth, state: State) -> AuthContext:
        if state.development:
            raise WebApiError(status, text)
        return ctx

    return dependency


def strip_dev_fields(kind: str, obj: dict[str, Any], mode: Mode) -> dict[str, Any]:
    """Return `obj` without the fields a dev-mode app no longer receives for `kind`."""
    if mode is not Mode.DEVELOPMENT:
        return obj
    removed = DEV_MODE_REMOVED_FIELDS.get(kind, frozenset())
    return {k: v for k, v in obj.items() if k not in removed}
