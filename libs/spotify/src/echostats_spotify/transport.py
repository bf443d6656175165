"""One timed, deadline-bounded, recorded HTTP exchange with Spotify, and the retry loop around it.

Shared by the Accounts and Web API clients so both follow the same rules:
- every exchange is recorded (status 0 when no answer arrived);
- each exchange's timeout is min(spotify_timeout_seconds, the request's remaining budget);
- 5xx and network failures are retried with exponential backoff and jitter, at most
  `spotify_max_retries` times, then raise `SpotifyUpstreamError`. Methods that are not
  idempotent (POST, PATCH) are only retried when the request certainly never left
  (connection refused, connect or pool timeout): replaying `POST /me/player/next` after a
  read timeout could skip two tracks;
- 429 sleeps Retry-After (+ jitter) when it is at most `spotify_max_retry_after_seconds`
  and fits in the remaining budget; a longer one, `QUOTA_EXCEEDED`, or running out of
  retries raises `RateLimited` at once, so background work pauses instead of looping;
- no sleep is started that would outlast the request's deadline.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from echostats_platform.context import remaining_budget, request_id_var
from echostats_platform.settings import SpotifySettings
from echostats_spotify.errors import (
    REASON_DEADLINE_EXCEEDED,
    REASON_QUOTA_EXCEEDED,
    SpotifyUpstreamError,
    error_details,
    error_from_response,
)
from echostats_spotify.recording import ApiCallRecord, CallRecorder, safe_record, utc_now

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# Failures where the request never reached Spotify, so replaying it is safe for any method.
_NOT_SENT: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Failures that are worth another try for idempotent methods. asyncio's TimeoutError comes
# from the hard per-exchange bound that wraps httpx's per-phase timeouts.
_TRANSIENT: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    TimeoutError,
)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait between attempts; the counts and limits come from SpotifySettings.

    Backoff before retry n (1-based) is min(backoff_max, backoff_base * 2**(n-1)) plus
    uniform(0, backoff_jitter). A short 429 waits Retry-After plus uniform(0,
    rate_limit_jitter), so replicas told the same Retry-After do not return in lockstep.
    Tests pass a fake `sleep` and zero waits.
    """

    backoff_base: float = 0.25
    backoff_max: float = 4.0
    backoff_jitter: float = 0.25
    rate_limit_jitter: float = 1.0
    sleep: Sleep = asyncio.sleep


def parse_retry_after(value: str | None, *, default: float = 1.0) -> float:
    """Seconds to wait from a Retry-After header (integer seconds or HTTP date; missing => 1)."""
    if value is None or not value.strip():
        return default
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return default
    return max(0.0, seconds)


def describe_exception(exc: BaseException) -> str:
    """A short `Type: message` for records and errors (no headers, so no tokens)."""
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _record_error(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    details = error_details(response)
    reason = f" [{details.reason}]" if details.reason else ""
    return f"HTTP {response.status_code}{reason}: {details.message or response.reason_phrase}"


async def exchange(
    http: httpx.AsyncClient,
    recorder: CallRecorder,
    *,
    settings: SpotifySettings,
    caller: str,
    method: str,
    url: str,
    endpoint: str,
    user_id: str | None,
    attempt: int,
    **request_kwargs: Any,
) -> httpx.Response:
    """Send one request within the remaining budget and record it, whatever happens."""
    timeout = remaining_budget(settings.spotify_timeout_seconds)
    if timeout <= 0:
        # Nothing was sent, so nothing is recorded: the caller's deadline has passed.
        raise SpotifyUpstreamError(
            f"no time left to call Spotify ({method} {endpoint})",
            reason=REASON_DEADLINE_EXCEEDED,
            status_code=0,
            method=method,
            endpoint=endpoint,
        )
    started = time.perf_counter()

    def record(status_code: int, error: str | None) -> None:
        safe_record(
            recorder,
            ApiCallRecord(
                caller=caller,
                method=method,
                endpoint=endpoint,
                status_code=status_code,
                latency_ms=round((time.perf_counter() - started) * 1000.0, 3),
                error=error,
                request_id=request_id_var.get(),
                user_id=user_id,
                timestamp=utc_now(),
                attempt=attempt,
            ),
        )

    try:
        # httpx's timeout bounds each phase (connect, read, ...); asyncio.timeout bounds
        # the whole exchange so a slowly dripping body cannot outlast the budget.
        async with asyncio.timeout(timeout):
            response = await http.request(method, url, timeout=timeout, **request_kwargs)
    except asyncio.CancelledError:
        record(0, "cancelled")
        raise
    except TimeoutError as exc:
        record(0, f"TimeoutError: no complete answer within {timeout:.3g} s")
        raise TimeoutError(f"no complete answer within {timeout:.3g} s") from exc
    except Exception as exc:
        record(0, describe_exception(exc))
        raise
    record(response.status_code, _record_error(response))
    return response


class _StopBeforeDeadline(stop_base):
    """Stop retrying when the next sleep would outlast the request's deadline."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        # Sleeping past the caller's deadline only to be cancelled helps nobody.
        return bool(retry_state.upcoming_sleep >= remaining_budget(math.inf))


class _Retryable(Exception):
    """Internal: a 5xx answer or a transient network failure worth another attempt."""

    def __init__(
        self, *, response: httpx.Response | None = None, error: BaseException | None = None
    ) -> None:
        super().__init__("retryable Spotify failure")
        self.response = response
        self.error = error


class _Throttled(Exception):
    """Internal: a 429 whose Retry-After we may sleep through."""

    def __init__(self, response: httpx.Response, delay: float, retry_after: float) -> None:
        super().__init__("Spotify asked us to slow down")
        self.response = response
        self.delay = delay
        self.retry_after = retry_after


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    settings: SpotifySettings,
    policy: RetryPolicy,
    method: str,
    endpoint: str,
    idempotent: bool,
) -> httpx.Response:
    """Run `send` until it gives a final answer; raise RateLimited/SpotifyUpstreamError.

    Returns the last response, whose status may still be an error (4xx, or a 5xx for a
    method that is not retried); the caller maps it with its own error table.
    """
    backoff = wait_exponential(multiplier=policy.backoff_base, max=policy.backoff_max) + (
        wait_random(0, policy.backoff_jitter)
    )

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Throttled):
            return exc.delay
        return float(backoff(state))

    async def attempt_once() -> httpx.Response:
        try:
            response = await send()
        except _NOT_SENT as exc:
            raise _Retryable(error=exc) from exc
        except _TRANSIENT as exc:
            if idempotent:
                raise _Retryable(error=exc) from exc
            raise _unreachable(exc, method, endpoint) from exc
        except httpx.TransportError as exc:
            # Protocol or URL problems that another try will not fix.
            raise _unreachable(exc, method, endpoint) from exc
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            details = error_details(response)
            if (
                details.reason == REASON_QUOTA_EXCEEDED
                or retry_after > settings.spotify_max_retry_after_seconds
            ):
                raise error_from_response(
                    response, method=method, endpoint=endpoint, retry_after=retry_after
                )
            delay = retry_after + random.uniform(0, policy.rate_limit_jitter)
            raise _Throttled(response, delay, retry_after)
        if status >= 500 and idempotent:
            raise _Retryable(response=response)
        return response

    retrying = AsyncRetrying(
        retry=retry_if_exception_type((_Retryable, _Throttled)),
        stop=stop_after_attempt(settings.spotify_max_retries + 1) | _StopBeforeDeadline(),
        wait=wait,
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await attempt_once()
    except _Throttled as exc:
        raise error_from_response(
            exc.response, method=method, endpoint=endpoint, retry_after=exc.retry_after
        ) from None
    except _Retryable as exc:
        if exc.response is not None:
            return exc.response
        assert exc.error is not None
        raise _unreachable(exc.error, method, endpoint) from exc.error
    raise AssertionError("tenacity ended without an outcome")  # pragma: no cover


def _unreachable(exc: BaseException, method: str, endpoint: str) -> SpotifyUpstreamError:
    return SpotifyUpstreamError(
        f"Spotify unreachable for {method} {endpoint}: {describe_exception(exc)}",
        status_code=0,
        method=method,
        endpoint=endpoint,
    )
