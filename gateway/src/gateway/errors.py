"""The gateway's error edge: the one gRPC-status-to-HTTP table and the exception handlers.

Every error leaves the gateway in the spec's shapes: `{"detail": "..."}`, or for 422 a list
of `{"loc", "msg", "type"}`. Services raise canonical gRPC status codes with a stable
reason in trailing metadata (`echostats-reason`); `http_error_for_rpc` is the single place
that turns them into HTTP, and routers that need to catch an RPC error reuse it. Messages
of 4xx statuses are the service's own words (services write them for end users); 5xx
answers never carry internals, only fixed texts (the 502 for a Spotify failure excepted,
whose message the service phrases for the user).

Unhandled exceptions are not handled here but in the timeout middleware, which sits inside
the request-id, security-header and CORS middleware, so the 500 still carries their headers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pymongo.errors
import redis.exceptions
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from echostats_grpc.client import error_reason, error_retry_after
from echostats_grpc.status import STATUS_BY_NAME
from echostats_platform import errors as domain
from gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)

NOT_AUTHENTICATED = "Not authenticated"
SERVICE_UNAVAILABLE = "Service temporarily unavailable"
REQUEST_TIMED_OUT = "Request timed out"
INTERNAL_ERROR = "Internal server error"
UPSTREAM_FALLBACK = "Spotify API error"
DEFAULT_UNAVAILABLE_RETRY_AFTER = 5
# Reasons ingestion attaches to INVALID_ARGUMENT when it refuses an upload.
REASON_UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
REASON_PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"


class ApiError(HTTPException):
    """An HTTP error a router raises on purpose; rendered as `{"detail": detail}`."""

    def __init__(self, status: int, detail: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=dict(headers or {}))


@dataclass(frozen=True, slots=True)
class _Rule:
    """How one gRPC status becomes HTTP."""

    status: int
    # Fixed detail; None means "the service's message", with `fallback` when it is empty.
    detail: str | None
    fallback: str = ""
    # Whether to send Retry-After (the service's, else the configured one).
    retry_after: bool = False


# THE table. Codes not listed become 500 "Internal server error". OUT_OF_RANGE and ABORTED
# follow Google's canonical HTTP mapping (400 and 409).
_RPC_TO_HTTP: dict[grpc.StatusCode, _Rule] = {
    grpc.StatusCode.INVALID_ARGUMENT: _Rule(400, None, "Bad Request"),
    grpc.StatusCode.OUT_OF_RANGE: _Rule(400, None, "Bad Request"),
    grpc.StatusCode.UNAUTHENTICATED: _Rule(401, NOT_AUTHENTICATED),
    grpc.StatusCode.PERMISSION_DENIED: _Rule(403, None, "Forbidden"),
    grpc.StatusCode.NOT_FOUND: _Rule(404, None, "Not Found"),
    grpc.StatusCode.ALREADY_EXISTS: _Rule(409, None, "Conflict"),
    grpc.StatusCode.FAILED_PRECONDITION: _Rule(409, None, "Conflict"),
    grpc.StatusCode.ABORTED: _Rule(409, None, "Conflict"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: _Rule(429, None, "Rate limit exceeded", True),
    grpc.StatusCode.UNIMPLEMENTED: _Rule(501, "Not implemented"),
    grpc.StatusCode.UNAVAILABLE: _Rule(503, SERVICE_UNAVAILABLE, retry_after=True),
    # The call was cancelled under us (the service shutting down, a connection reset): the
    # client did nothing wrong and may retry, so 503 rather than nginx's 499.
    grpc.StatusCode.CANCELLED: _Rule(503, SERVICE_UNAVAILABLE, retry_after=True),
    grpc.StatusCode.DEADLINE_EXCEEDED: _Rule(504, REQUEST_TIMED_OUT),
}
# Rows of the same table where the reason refines the status; checked before the code alone.
_RPC_REASON_TO_HTTP: dict[tuple[grpc.StatusCode, str], _Rule] = {
    # UNAVAILABLE with this reason is Spotify failing, not us: 502, not 503.
    (grpc.StatusCode.UNAVAILABLE, domain.REASON_UPSTREAM_ERROR): _Rule(
        502, None, UPSTREAM_FALLBACK
    ),
    # An upload ingestion refuses by its type or size is the client's fault with its own
    # HTTP statuses (the import endpoint), not a generic 400.
    (grpc.StatusCode.INVALID_ARGUMENT, REASON_UNSUPPORTED_MEDIA_TYPE): _Rule(
        415, None, "Unsupported Media Type"
    ),
    (grpc.StatusCode.INVALID_ARGUMENT, REASON_PAYLOAD_TOO_LARGE): _Rule(
        413, None, "Payload Too Large"
    ),
}
_INTERNAL = _Rule(500, INTERNAL_ERROR)


def _apply(
    rule: _Rule,
    message: str | None,
    *,
    retry_after: int | None,
    unavailable_retry_after: int,
) -> tuple[int, str, dict[str, str]]:
    detail = rule.detail if rule.detail is not None else (message or rule.fallback)
    headers: dict[str, str] = {}
    if rule.retry_after:
        # A throttled client may retry soon; a dependency outage needs longer to heal.
        default = 1 if rule.status == 429 else unavailable_retry_after
        headers["Retry-After"] = str(max(1, retry_after or default))
    return rule.status, detail, headers


def _rule_for(code: grpc.StatusCode | None, reason: str | None) -> _Rule:
    if code is None:
        return _INTERNAL
    if reason is not None and (code, reason) in _RPC_REASON_TO_HTTP:
        return _RPC_REASON_TO_HTTP[(code, reason)]
    return _RPC_TO_HTTP.get(code, _INTERNAL)


def http_error_for_rpc(
    error: grpc.aio.AioRpcError,
    *,
    unavailable_retry_after: int = DEFAULT_UNAVAILABLE_RETRY_AFTER,
) -> tuple[int, str, dict[str, str]]:
    """(HTTP status, detail, headers) for a failed gRPC call, by the one table."""
    rule = _rule_for(error.code(), error_reason(error))
    return _apply(
        rule,
        error.details(),
        retry_after=error_retry_after(error),
        unavailable_retry_after=unavailable_retry_after,
    )


def http_error_for_domain(
    error: domain.DomainError,
    *,
    unavailable_retry_after: int = DEFAULT_UNAVAILABLE_RETRY_AFTER,
) -> tuple[int, str, dict[str, str]]:
    """(HTTP status, detail, headers) for a domain error raised in the gateway itself."""
    rule = _rule_for(STATUS_BY_NAME.get(error.status), error.reason)
    return _apply(
        rule,
        error.message,
        retry_after=error.retry_after,
        unavailable_retry_after=unavailable_retry_after,
    )


def validation_error_items(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The 422 body's items: exactly loc (a list), msg and type."""
    return [
        {
            "loc": list(item.get("loc", ())),
            "msg": str(item.get("msg", "")),
            "type": str(item.get("type", "")),
        }
        for item in exc.errors()
    ]


def _json_error(status: int, detail: Any, headers: Mapping[str, str] | None = None) -> Response:
    if status in (204, 304) or status < 200:
        # These statuses must not have a body.
        return Response(status_code=status, headers=dict(headers or {}))
    return JSONResponse({"detail": detail}, status_code=status, headers=dict(headers or {}))


def install_error_handlers(app: Starlette, settings: GatewaySettings) -> None:
    """Register the gateway's exception handlers on `app`."""
    retry_after = settings.unavailable_retry_after_seconds

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        items = validation_error_items(cast(RequestValidationError, exc))
        return JSONResponse({"detail": items}, status_code=422)

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        exc = cast(StarletteHTTPException, exc)
        # The spec allows exactly one 401 body, whoever raised it (FastAPI's security
        # helpers included).
        detail = NOT_AUTHENTICATED if exc.status_code == 401 else exc.detail
        return _json_error(exc.status_code, detail, exc.headers)

    async def on_rpc_error(request: Request, exc: Exception) -> Response:
        exc = cast(grpc.aio.AioRpcError, exc)
        status, detail, headers = http_error_for_rpc(exc, unavailable_retry_after=retry_after)
        if status >= 500:
            # The client gets a fixed text; the log keeps what actually happened.
            logger.warning(
                "rpc failed: %s %s -> %s (%s, reason=%s): %s",
                request.method,
                request.url.path,
                status,
                exc.code().name,
                error_reason(exc),
                exc.details(),
            )
        return _json_error(status, detail, headers)

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        exc = cast(domain.DomainError, exc)
        status, detail, headers = http_error_for_domain(exc, unavailable_retry_after=retry_after)
        if status >= 500:
            logger.warning(
                "domain error: %s %s -> %s (reason=%s): %s",
                request.method,
                request.url.path,
                status,
                exc.reason,
                exc.message,
            )
        return _json_error(status, detail, headers)

    async def on_dependency_down(request: Request, exc: Exception) -> Response:
        # MongoDB or Redis used by the gateway itself (sessions, caches) is unreachable.
        logger.warning("dependency unavailable: %s %s: %r", request.method, request.url.path, exc)
        return _json_error(503, SERVICE_UNAVAILABLE, {"Retry-After": str(retry_after)})

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(grpc.aio.AioRpcError, on_rpc_error)
    app.add_exception_handler(domain.DomainError, on_domain_error)
    for dependency_error in (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        pymongo.errors.ConnectionFailure,
    ):
        app.add_exception_handler(dependency_error, on_dependency_down)
