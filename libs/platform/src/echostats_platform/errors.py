"""Domain errors every service raises; translated once at each edge (gRPC status, HTTP code).

Each error carries a canonical gRPC status name and a stable machine-readable `reason`
(Google API design's ErrorInfo.reason), so callers can tell e.g. an upstream Spotify failure
(502) from our own dependency being down (503) without parsing messages.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base class: a failure the caller should see, with a status and a stable reason."""

    status: ClassVar[str] = "INTERNAL"
    default_reason: ClassVar[str] = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.retry_after = retry_after


class NotFound(DomainError):
    status = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class InvalidArgument(DomainError):
    status = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"


class AlreadyExists(DomainError):
    status = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    status = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class Unauthenticated(DomainError):
    status = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    status = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    status = "RESOURCE_EXHAUSTED"
    default_reason = "RATE_LIMITED"


class Unavailable(DomainError):
    """One of our own dependencies (MongoDB, Redis, another service) is unreachable."""

    status = "UNAVAILABLE"
    default_reason = "DEPENDENCY_UNAVAILABLE"


class UpstreamError(DomainError):
    """Spotify (or another third party) failed; the gateway answers 502."""

    status = "UNAVAILABLE"
    default_reason = "UPSTREAM_ERROR"


REASON_DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
REASON_CACHE_UNAVAILABLE = "CACHE_UNAVAILABLE"
REASON_UPSTREAM_ERROR = UpstreamError.default_reason
REASON_REAUTH_REQUIRED = "REAUTH_REQUIRED"
REASON_NO_SPOTIFY_CREDENTIALS = "NO_SPOTIFY_CREDENTIALS"
