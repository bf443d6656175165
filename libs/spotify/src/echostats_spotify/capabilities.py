"""Which Spotify endpoint families are closed to this app, remembered for a while.

Spotify withdrew endpoints from development-mode apps (audio features, recommendations,
featured playlists, batch lookups, ...): they answer 403 or 404 for every call. Retrying
them is pointless, so callers ask `CapabilityRegistry.is_closed` before calling and use
their fallback while a family is closed. The Web API client, when given a registry,
marks a family closed itself when such an endpoint answers a closure-looking 403/404;
callers may also `mark_closed` by hand. Closure expires after a TTL so the app notices
when the endpoint comes back (e.g. after Extended Quota Mode is granted).

Storage is a small async protocol: `InMemoryCapabilityStore` for one process and tests,
`RedisCapabilityStore` to share what one replica learned with all of them. Knowing a
capability is an optimisation, so storage failures are logged and treated as "open".
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)

DEFAULT_CLOSED_TTL_SECONDS = 6 * 3600.0


class Capability(StrEnum):
    """Endpoint families Spotify may close to an app (see reference §4)."""

    AUDIO_FEATURES = "audio-features"
    AUDIO_ANALYSIS = "audio-analysis"
    RECOMMENDATIONS = "recommendations"
    FEATURED_PLAYLISTS = "featured-playlists"
    NEW_RELEASES = "new-releases"
    BROWSE_CATEGORIES = "browse-categories"
    BATCH_TRACKS = "batch-tracks"
    BATCH_ARTISTS = "batch-artists"
    BATCH_ALBUMS = "batch-albums"


# (path pattern under the API base, capability, statuses that mean "closed").
# Single-id forms count only 403: a 404 there usually means an unknown id, not a closed
# endpoint. Related artists and artist top tracks are left out for the same reason.
_FAMILIES: tuple[tuple[re.Pattern[str], Capability, frozenset[int]], ...] = (
    (re.compile(r"/v1/audio-features"), Capability.AUDIO_FEATURES, frozenset({403, 404})),
    (re.compile(r"/v1/audio-features/[^/]+"), Capability.AUDIO_FEATURES, frozenset({403})),
    (re.compile(r"/v1/audio-analysis/[^/]+"), Capability.AUDIO_ANALYSIS, frozenset({403})),
    (
        re.compile(r"/v1/recommendations(/available-genre-seeds)?"),
        Capability.RECOMMENDATIONS,
        frozenset({403, 404}),
    ),
    (
        re.compile(r"/v1/browse/featured-playlists"),
        Capability.FEATURED_PLAYLISTS,
        frozenset({403, 404}),
    ),
    (re.compile(r"/v1/browse/new-releases"), Capability.NEW_RELEASES, frozenset({403, 404})),
    (re.compile(r"/v1/browse/categories"), Capability.BROWSE_CATEGORIES, frozenset({403, 404})),
    (re.compile(r"/v1/tracks"), Capability.BATCH_TRACKS, frozenset({403, 404})),
    (re.compile(r"/v1/artists"), Capability.BATCH_ARTISTS, frozenset({403, 404})),
    (re.compile(r"/v1/albums"), Capability.BATCH_ALBUMS, frozenset({403, 404})),
)

# 403 messages that are about the user, the token or the app owner, not the endpoint.
_NOT_CLOSURE_HINTS = ("scope", "premium", "not registered", "token")


def capability_for(endpoint: str) -> Capability | None:
    """The closable family an endpoint path (e.g. /v1/audio-features) belongs to, if any."""
    for pattern, capability, _ in _FAMILIES:
        if pattern.fullmatch(endpoint):
            return capability
    return None


def indicates_closure(endpoint: str, status_code: int, body: Any, message: str | None) -> bool:
    """Whether an error answer on `endpoint` means its whole family is closed to the app."""
    statuses = next((s for p, _, s in _FAMILIES if p.fullmatch(endpoint)), frozenset[int]())
    if status_code not in statuses:
        return False
    # Closed endpoints answer Spotify's JSON error object ({"error": {"status": 403}},
    # "Forbidden", ...). A plain-text 403 ("User not registered in the Developer
    # Dashboard") is about the user, not the endpoint.
    if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
        return False
    lowered = (message or "").lower()
    return not any(hint in lowered for hint in _NOT_CLOSURE_HINTS)


class CapabilityStore(Protocol):
    """Async storage of closed capabilities with expiry; backends share or keep it local."""

    async def set_closed(self, capability: str, ttl_seconds: float) -> None:
        """Remember the capability as closed for `ttl_seconds`."""
        ...

    async def is_closed(self, capability: str) -> bool:
        """Whether the capability is currently remembered as closed."""
        ...

    async def clear(self, capability: str) -> None:
        """Forget that the capability was closed."""
        ...


class InMemoryCapabilityStore:
    """Closed capabilities in this process's memory (tests, single-replica tools)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._closed_until: dict[str, float] = {}

    async def set_closed(self, capability: str, ttl_seconds: float) -> None:
        """Remember the capability as closed until now + ttl."""
        self._closed_until[capability] = self._clock() + ttl_seconds

    async def is_closed(self, capability: str) -> bool:
        """True while the TTL has not run out."""
        until = self._closed_until.get(capability)
        if until is None:
            return False
        if self._clock() >= until:
            del self._closed_until[capability]
            return False
        return True

    async def clear(self, capability: str) -> None:
        """Forget the capability."""
        self._closed_until.pop(capability, None)


class RedisCapabilityStore:
    """Closed capabilities as Redis keys with a TTL, shared by every replica.

    Keys are `{key_prefix}{capability}`, e.g. prefix "catalog:spotify-closed:" gives
    "catalog:spotify-closed:audio-features"; services sharing a prefix share what they learn.
    """

    def __init__(self, redis: Redis, *, key_prefix: str) -> None:
        if not key_prefix:
            raise ValueError("key_prefix is required: services share one Redis")
        self._redis = redis
        self._prefix = key_prefix

    def key(self, capability: str) -> str:
        """The Redis key that marks the capability closed."""
        return f"{self._prefix}{capability}"

    async def set_closed(self, capability: str, ttl_seconds: float) -> None:
        """SET the key with a millisecond expiry (at least 1 ms)."""
        await self._redis.set(self.key(capability), "1", px=max(1, round(ttl_seconds * 1000)))

    async def is_closed(self, capability: str) -> bool:
        """True while the key exists."""
        return bool(await self._redis.exists(self.key(capability)))

    async def clear(self, capability: str) -> None:
        """DELETE the key."""
        await self._redis.delete(self.key(capability))


class CapabilityRegistry:
    """Answers "is this endpoint family closed to the app?" and remembers closures."""

    def __init__(
        self, store: CapabilityStore, *, default_ttl: float = DEFAULT_CLOSED_TTL_SECONDS
    ) -> None:
        if default_ttl <= 0:
            raise ValueError("default_ttl must be positive")
        self._store = store
        self._default_ttl = default_ttl

    async def is_closed(self, capability: str) -> bool:
        """Whether to skip the capability's endpoints (False when storage is unreachable)."""
        try:
            return await self._store.is_closed(capability)
        except Exception:
            # Treating it as open costs at most one more refused call; failing the
            # caller's work because a cache is down would cost far more.
            log.warning("capability store unreachable", exc_info=True)
            return False

    async def mark_closed(self, capability: str, ttl: float | None = None) -> None:
        """Remember the capability as closed for `ttl` seconds (default: the registry's)."""
        ttl_seconds = self._default_ttl if ttl is None else ttl
        if ttl_seconds <= 0:
            raise ValueError("ttl must be positive")
        try:
            await self._store.set_closed(capability, ttl_seconds)
        except Exception:
            log.warning("capability store unreachable", exc_info=True)
            return
        log.info("spotify capability closed", extra={"capability": capability, "ttl": ttl_seconds})

    async def mark_open(self, capability: str) -> None:
        """Forget a closure (e.g. after an operator knows the endpoint is back)."""
        try:
            await self._store.clear(capability)
        except Exception:
            log.warning("capability store unreachable", exc_info=True)
