"""The Spotify Web API client every EchoStats service uses (`{spotify_api_url}/v1/...`).

It owns the per-call rules: a Bearer token from the service's `TokenProvider`, one forced
refresh and one retry on 401, bounded retries with backoff on 5xx and network errors,
Retry-After on 429 (see `transport`), the interactive-before-background gate, tolerant
bodies (204, empty and opaque-text 200s give `json=None`), a record of every exchange,
and the error table in `errors`: status < 400 returns a `SpotifyResponse`, anything else
raises a `SpotifyHTTPError` subclass with the status and body attached.

After a `RateLimited` (long Retry-After or QUOTA_EXCEEDED) the client stops sending
background calls until the wait is over, raising `RateLimited` at once instead: Spotify's
limit is per app, so hammering it from other jobs would only extend the penalty.
Interactive calls still go through, so a user sees Spotify's real answer.

Refreshing is the provider's job (the auth service serialises refreshes per user across
replicas); this client only asks for at most one forced refresh per call, and coalesces
concurrent forced refreshes for the same user inside this process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from echostats_platform.errors import InvalidArgument
from echostats_platform.settings import SpotifySettings
from echostats_spotify.capabilities import CapabilityRegistry, capability_for, indicates_closure
from echostats_spotify.errors import (
    RateLimited,
    SpotifyHTTPError,
    SpotifyUnauthorized,
    error_from_response,
    parse_json_body,
    retry_after_seconds,
)
from echostats_spotify.priority import Priority, PriorityGate
from echostats_spotify.recording import CallRecorder
from echostats_spotify.transport import (
    IDEMPOTENT_METHODS,
    RetryPolicy,
    exchange,
    send_with_retries,
)

log = logging.getLogger(__name__)

API_PREFIX = "/v1"


class TokenProvider(Protocol):
    """Gives a valid Spotify access token for a user; replaces one Spotify refused."""

    async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
        """The user's access token; with `rejected_token` (a 401 on it), a different one.

        Naming the refused token lets the provider skip the refresh when another caller
        already replaced it, so callers that saw a 401 at slightly different times share
        one refresh.
        """
        ...


@dataclass(frozen=True, slots=True)
class SpotifyResponse:
    """A successful (status < 400) answer. `json` is None for 204, empty or non-JSON bodies."""

    status: int
    json: Any
    text: str
    headers: httpx.Headers


class SpotifyClient:
    """Calls the Web API for a user with retries, refresh-once, priorities and records."""

    def __init__(
        self,
        settings: SpotifySettings,
        http: httpx.AsyncClient,
        recorder: CallRecorder,
        token_provider: TokenProvider,
        *,
        caller: str,
        policy: RetryPolicy | None = None,
        gate: PriorityGate | None = None,
        capabilities: CapabilityRegistry | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
        self._recorder = recorder
        self._tokens = token_provider
        self._caller = caller
        self._policy = policy or RetryPolicy()
        self._gate = gate or PriorityGate()
        self._capabilities = capabilities
        self._base = httpx.URL(settings.spotify_api_url.rstrip("/"))
        self._refreshing: dict[str, asyncio.Task[str]] = {}
        # time.monotonic() until which background calls are refused after a RateLimited.
        self._background_paused_until = 0.0
        self._pause_is_quota = False

    @property
    def gate(self) -> PriorityGate:
        """The interactive/background gate this client sends through."""
        return self._gate

    @property
    def background_paused_for(self) -> float:
        """Seconds until background calls may go to Spotify again (0 when not paused)."""
        return max(0.0, self._background_paused_until - time.monotonic())

    async def request(
        self,
        method: str,
        path: str,
        *,
        user_id: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        priority: Priority = Priority.INTERACTIVE,
        idempotent: bool | None = None,
    ) -> SpotifyResponse:
        """Call the Web API as the user; return the answer or raise a SpotifyHTTPError.

        `path` is `/v1/...` or `/...` (the /v1 prefix is added), or a full `next`/`previous`
        paging URL on the configured API host. `idempotent` overrides the method's default
        (GET, PUT, DELETE are retried after ambiguous failures; POST is not).
        """
        method = method.upper()
        endpoint, query = self._resolve(path, params)
        if priority == Priority.BACKGROUND:
            self._refuse_while_paused(method, endpoint)
        replayable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        url = str(self._base.copy_with(path=self._base.path.rstrip("/") + endpoint))
        token = await self._tokens.get_token(user_id)
        refreshed = False
        attempt = 0

        async def send_once() -> httpx.Response:
            nonlocal attempt
            attempt += 1
            async with self._gate.slot(priority):
                return await exchange(
                    self._http,
                    self._recorder,
                    settings=self._settings,
                    caller=self._caller,
                    method=method,
                    url=url,
                    endpoint=endpoint,
                    user_id=user_id,
                    attempt=attempt,
                    params=query,
                    json=json,
                    headers={"Authorization": f"Bearer {token}"},
                )

        async def send() -> httpx.Response:
            nonlocal token, refreshed
            response = await send_once()
            if response.status_code != 401:
                return response
            if refreshed:
                raise self._unauthorized(response, method, endpoint)
            # The token expired or was revoked early: refresh once and retry at once.
            refreshed = True
            token = await self._force_refresh(user_id, token)
            response = await send_once()
            if response.status_code == 401:
                raise self._unauthorized(response, method, endpoint)
            return response

        try:
            response = await send_with_retries(
                send,
                settings=self._settings,
                policy=self._policy,
                method=method,
                endpoint=endpoint,
                idempotent=replayable,
            )
        except RateLimited as exc:
            self._pause_background(exc)
            raise
        if response.status_code >= 400:
            raise await self._error(response, method, endpoint)
        return SpotifyResponse(
            status=response.status_code,
            json=parse_json_body(response),
            text=response.text if response.content else "",
            headers=response.headers,
        )

    async def get_json(
        self,
        path: str,
        *,
        user_id: str,
        params: Mapping[str, Any] | None = None,
        priority: Priority = Priority.INTERACTIVE,
    ) -> Any:
        """GET and return the parsed JSON body (None for 204 or a non-JSON body)."""
        response = await self.request(
            "GET", path, user_id=user_id, params=params, priority=priority
        )
        return response.json

    def _resolve(
        self, path: str, params: Mapping[str, Any] | None
    ) -> tuple[str, httpx.QueryParams]:
        """Split a path or paging URL into the /v1 endpoint and its query parameters."""
        url = httpx.URL(path)
        if url.is_absolute_url:
            base_path = self._base.path.rstrip("/")
            same_origin = (url.scheme, url.host, url.port) == (
                self._base.scheme,
                self._base.host,
                self._base.port,
            )
            if not same_origin or not url.path.startswith(base_path + "/"):
                # Never send a user's Bearer token to a host we were not configured for.
                raise InvalidArgument(f"refusing to call a URL outside the Spotify API: {path}")
            relative = url.path[len(base_path) :]
        else:
            relative = url.path
        if not relative.startswith("/"):
            relative = "/" + relative
        if relative != API_PREFIX and not relative.startswith(API_PREFIX + "/"):
            relative = API_PREFIX + relative
        query = url.params.merge(params) if params else url.params
        return relative, query

    def _refuse_while_paused(self, method: str, endpoint: str) -> None:
        left = self.background_paused_for
        if left > 0:
            raise RateLimited(
                f"Spotify rate limit: background calls paused for {math.ceil(left)} s",
                quota_exceeded=self._pause_is_quota,
                retry_after=retry_after_seconds(left),
                status_code=429,
                method=method,
                endpoint=endpoint,
            )

    def _pause_background(self, exc: RateLimited) -> None:
        until = time.monotonic() + (exc.retry_after or 0)
        if until > self._background_paused_until:
            self._background_paused_until = until
            self._pause_is_quota = exc.quota_exceeded
            log.warning(
                "spotify rate limit: pausing background calls",
                extra={"retry_after": exc.retry_after, "quota_exceeded": exc.quota_exceeded},
            )

    async def _force_refresh(self, user_id: str, rejected_token: str) -> str:
        """One forced refresh per user at a time in this process; concurrent 401s share it."""
        task = self._refreshing.get(user_id)
        if task is None:
            task = asyncio.ensure_future(
                self._tokens.get_token(user_id, rejected_token=rejected_token)
            )
            self._refreshing[user_id] = task

            def done(finished: asyncio.Task[str]) -> None:
                self._refreshing.pop(user_id, None)
                # Retrieve the outcome so a failure nobody awaited is not reported as
                # "exception never retrieved"; awaiters still get it.
                if not finished.cancelled():
                    finished.exception()

            task.add_done_callback(done)
        # Shielded: one caller giving up must not cancel the refresh others wait on.
        return await asyncio.shield(task)

    @staticmethod
    def _unauthorized(response: httpx.Response, method: str, endpoint: str) -> SpotifyHTTPError:
        error = error_from_response(response, method=method, endpoint=endpoint)
        assert isinstance(error, SpotifyUnauthorized)
        return error

    async def _error(
        self, response: httpx.Response, method: str, endpoint: str
    ) -> SpotifyHTTPError:
        error = error_from_response(response, method=method, endpoint=endpoint)
        if indicates_closure(endpoint, error.status_code, error.body, error.message):
            error.capability = capability_for(endpoint)
            if self._capabilities is not None and error.capability is not None:
                await self._capabilities.mark_closed(error.capability)
        return error
