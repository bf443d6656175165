"""The release check behind /api/health/update: latest GitHub release vs the running version.

The answer is cached in Redis for an hour so a busy dashboard never hammers GitHub; when
GitHub is unreachable the check degrades to "no update known" (cached briefly) instead of
failing the request.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass

import httpx
from redis.asyncio import Redis

log = logging.getLogger(__name__)

_CACHE_KEY = "observability:latest-release"
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class ReleaseInfo:
    """What /api/health/update reports."""

    current_version: str
    latest_version: str | None
    update_available: bool
    release_url: str | None
    release_notes: str | None
    published_at: str | None


def _version_key(version: str) -> tuple[int, int, int] | None:
    match = _VERSION_RE.match(version.strip())
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def is_newer(latest: str, current: str) -> bool:
    """True when `latest` is a higher semantic version than `current`."""
    latest_key, current_key = _version_key(latest), _version_key(current)
    return latest_key is not None and current_key is not None and latest_key > current_key


class ReleaseChecker:
    """Fetches GitHub's latest release for the configured repository, cached in Redis."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        redis: Redis,
        api_url: str,
        repository: str,
        current_version: str,
        cache_seconds: int,
        failure_cache_seconds: int,
    ) -> None:
        self._http = http
        self._redis = redis
        self._url = f"{api_url.rstrip('/')}/repos/{repository}/releases/latest"
        self._current = current_version
        self._cache_seconds = cache_seconds
        self._failure_cache_seconds = failure_cache_seconds

    async def check(self) -> ReleaseInfo:
        """The cached answer, or a fresh one from GitHub."""
        cached = await self._cached()
        if cached is not None:
            return cached
        info, ok = await self._fetch()
        ttl = self._cache_seconds if ok else self._failure_cache_seconds
        try:
            await self._redis.set(_CACHE_KEY, json.dumps(asdict(info)), ex=ttl)
        except Exception:
            log.warning("release check cache unavailable")
        return info

    async def _cached(self) -> ReleaseInfo | None:
        try:
            raw = await self._redis.get(_CACHE_KEY)
        except Exception:
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        if data.get("current_version") != self._current:
            return None
        return ReleaseInfo(**data)

    def _unknown(self) -> ReleaseInfo:
        return ReleaseInfo(
            current_version=self._current,
            latest_version=None,
            update_available=False,
            release_url=None,
            release_notes=None,
            published_at=None,
        )

    async def _fetch(self) -> tuple[ReleaseInfo, bool]:
        try:
            response = await self._http.get(
                self._url, headers={"Accept": "application/vnd.github+json"}
            )
            response.raise_for_status()
            release = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("release check failed", extra={"error": str(exc)[:200]})
            return self._unknown(), False
        tag = str(release.get("tag_name") or "")
        latest = tag.lstrip("v") or None
        return (
            ReleaseInfo(
                current_version=self._current,
                latest_version=latest,
                update_available=bool(latest) and is_newer(tag, self._current),
                release_url=release.get("html_url"),
                release_notes=release.get("body"),
                published_at=release.get("published_at"),
            ),
            True,
        )
