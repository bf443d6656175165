"""Errors raised for Spotify's answers, and the one table mapping HTTP status to them.

Every error is a platform `DomainError` (so each service's edge translates it with its
existing table) and also a `SpotifyHTTPError`, which keeps what Spotify said: the HTTP
status, the parsed body, the raw text and Spotify's own `reason`. Callers such as the
player proxy or capability detection inspect those fields instead of parsing messages.

Rule for the Web API: a status below 400 is a `SpotifyResponse`; anything else raises.
  400/413/414/422 -> SpotifyBadRequest (InvalidArgument)
  401 (after the one forced refresh) -> SpotifyUnauthorized (Unauthenticated, SPOTIFY_UNAUTHORIZED)
  403 -> SpotifyPermissionDenied (PermissionDenied, reason = Spotify's reason if any)
  404 -> SpotifyNotFound (NotFound, reason = Spotify's reason if any, e.g. NO_ACTIVE_DEVICE)
  429 -> RateLimited (ResourceExhausted, RATE_LIMITED or QUOTA_EXCEEDED)
  5xx, network errors, other 4xx -> SpotifyUpstreamError (UpstreamError, UPSTREAM_ERROR)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from echostats_platform.errors import (
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    UpstreamError,
)

REASON_SPOTIFY_UNAUTHORIZED = "SPOTIFY_UNAUTHORIZED"
REASON_QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
REASON_RATE_LIMITED = "RATE_LIMITED"
REASON_DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
REASON_INVALID_GRANT = "INVALID_GRANT"
REASON_INVALID_CLIENT = "INVALID_CLIENT"

# Messages and texts are cut so an HTML error page never ends up whole in a log or a reply.
_MAX_MESSAGE_CHARS = 300


class SpotifyHTTPError(DomainError):
    """Spotify refused or failed a call; carries the HTTP status and body for inspection.

    `spotify_reason` is Spotify's machine-readable code: `error.reason` from the Web API
    (e.g. PREMIUM_REQUIRED, NO_ACTIVE_DEVICE, QUOTA_EXCEEDED) or the OAuth `error` code from
    Accounts (e.g. invalid_grant). `status_code` is 0 when no HTTP answer arrived.
    `capability` names the closed endpoint family when the client recognised one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str,
        endpoint: str,
        body: Any = None,
        text: str = "",
        spotify_reason: str | None = None,
        reason: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, reason=reason, retry_after=retry_after)
        self.status_code = status_code
        self.method = method
        self.endpoint = endpoint
        self.body = body
        self.text = text
        self.spotify_reason = spotify_reason
        self.capability: str | None = None


class SpotifyBadRequest(SpotifyHTTPError, InvalidArgument):
    """Spotify answered 400 (bad id, too many ids, invalid limit, ...)."""


class SpotifyUnauthorized(SpotifyHTTPError, Unauthenticated):
    """Spotify rejected the token even after one forced refresh."""

    default_reason = REASON_SPOTIFY_UNAUTHORIZED


class SpotifyPermissionDenied(SpotifyHTTPError, PermissionDenied):
    """Spotify answered 403 (premium required, restriction violated, endpoint closed, ...)."""


class SpotifyNotFound(SpotifyHTTPError, NotFound):
    """Spotify answered 404 (unknown id, no active device, withdrawn endpoint, ...)."""


class SpotifyUpstreamError(SpotifyHTTPError, UpstreamError):
    """Spotify failed (5xx, unreachable, timed out) after bounded retries."""


class RateLimited(SpotifyHTTPError, ResourceExhausted):
    """Spotify asked us to wait longer than we may sleep, or the app's quota is used up.

    Background callers pause their work for `retry_after` seconds; they never retry in a
    loop. `quota_exceeded` marks the daily dev-mode quota (reason QUOTA_EXCEEDED).
    """

    def __init__(self, message: str, *, quota_exceeded: bool, **kwargs: Any) -> None:
        default = REASON_QUOTA_EXCEEDED if quota_exceeded else REASON_RATE_LIMITED
        kwargs["reason"] = kwargs.get("reason") or default
        super().__init__(message, **kwargs)
        self.quota_exceeded = quota_exceeded


class InvalidGrant(SpotifyHTTPError, Unauthenticated):
    """Accounts refused the code or refresh token (`invalid_grant`): the user must log in again."""

    default_reason = REASON_INVALID_GRANT


class InvalidClient(SpotifyHTTPError, Unauthenticated):
    """Accounts refused the app's own credentials (`invalid_client`): a configuration fault."""

    default_reason = REASON_INVALID_CLIENT


class TokenRequestRejected(SpotifyHTTPError, InvalidArgument):
    """Accounts refused a token request for another reason (e.g. unsupported_grant_type)."""


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """What an error answer said: parsed body, human message and machine reason."""

    body: Any
    message: str | None
    reason: str | None


def parse_json_body(response: httpx.Response) -> Any:
    """The body as a JSON object or array, or None when it is empty, opaque text or HTML."""
    if not response.content:
        return None
    try:
        value = response.json()
    except ValueError:
        # Player commands answer 200 with an opaque text token; 5xx pages are often HTML.
        return None
    return value if isinstance(value, dict | list) else None


def error_details(response: httpx.Response) -> ErrorDetails:
    """Read Spotify's error shapes: Web API `{"error": {...}}`, OAuth `{"error": "..."}`, text."""
    body = parse_json_body(response)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            reason = error.get("reason")
            return ErrorDetails(
                body,
                _clip(message) if isinstance(message, str) and message else None,
                reason if isinstance(reason, str) and reason else None,
            )
        if isinstance(error, str):
            description = body.get("error_description")
            message = description if isinstance(description, str) and description else error
            return ErrorDetails(body, _clip(message), error)
        return ErrorDetails(body, None, None)
    text = response.text.strip() if response.content else ""
    # A plain-text body (e.g. "User not registered in the Developer Dashboard") is the
    # message; an HTML error page is noise.
    if text and not text.startswith("<"):
        return ErrorDetails(None, _clip(text), None)
    return ErrorDetails(None, None, None)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 1] + "…"


def retry_after_seconds(value: float) -> int:
    """Round a wait up to whole seconds, as DomainError.retry_after and HTTP expect."""
    return max(0, math.ceil(value))


def error_from_response(
    response: httpx.Response,
    *,
    method: str,
    endpoint: str,
    retry_after: float | None = None,
) -> SpotifyHTTPError:
    """Build the error for a Web API answer with status >= 400 (see the module table)."""
    status = response.status_code
    details = error_details(response)
    message = details.message or f"Spotify answered {status} for {method} {endpoint}"
    common: dict[str, Any] = {
        "status_code": status,
        "method": method,
        "endpoint": endpoint,
        "body": details.body,
        "text": _clip(response.text) if response.content else "",
        "spotify_reason": details.reason,
    }
    if status == 429:
        quota = details.reason == REASON_QUOTA_EXCEEDED
        return RateLimited(
            f"Spotify rate limit: {message}",
            quota_exceeded=quota,
            retry_after=retry_after_seconds(retry_after if retry_after is not None else 1.0),
            **common,
        )
    if status == 401:
        return SpotifyUnauthorized(message, **common)
    if status == 403:
        return SpotifyPermissionDenied(message, reason=details.reason, **common)
    if status == 404:
        return SpotifyNotFound(message, reason=details.reason, **common)
    if status in (400, 413, 414, 422):
        return SpotifyBadRequest(message, **common)
    # 5xx, and 4xx we do not model (405, 409, ...): Spotify did not do what we asked and
    # the end user cannot fix it, so it is an upstream failure (502 at the gateway).
    return SpotifyUpstreamError(message, **common)
