"""The gateway's HTTP middleware stack and `install_middleware`, which wires it in order.

Outermost first: request id -> security headers -> CORS -> rate limit -> timeout -> GZip
-> the app. The order is the point: everything the inner layers answer on their own (429,
504, 500) still passes through the outer ones, so every response carries X-Request-ID, the
security headers and CORS headers (a browser cannot even read a 429 without the latter).
CORS preflights are answered before the rate limiter, so they do not use up a client's
budget.

Every middleware here is pure ASGI: BaseHTTPMiddleware would break streaming responses and
run the endpoint in another context, losing the request-id and deadline context variables.

The timeout middleware doubles as the catch-all for unhandled exceptions (500 without
internals). Starlette's own ServerErrorMiddleware sits outside all user middleware, so a
500 it produced would lack the headers above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Collection, Sequence

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from echostats_platform.context import (
    REQUEST_ID_HEADER,
    deadline_var,
    new_request_id,
    request_id_var,
)
from gateway.ratelimit import (
    IPNetwork,
    RateLimiter,
    client_address,
    is_trusted_proxy,
    parse_ip,
)
from gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)

# Accept a caller's id only if it is short and cannot smuggle anything into headers or
# log lines (no spaces, quotes, CR/LF, ...).
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")

# Routes that do heavy work synchronously and get the slow budget (method, path).
SLOW_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/api/v1/history/import"),
        ("POST", "/api/v1/analytics/refresh"),
        ("POST", "/api/v1/analytics/rollup-build"),
        ("POST", "/api/v1/sync-jobs/trigger"),
    }
)

# The API only ever returns JSON: nothing may load, frame or submit anything.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc pages load their bundles from jsDelivr and start them with an inline
# script (whose text changes with FastAPI versions, so a hash would be brittle); ReDoc also
# uses Google Fonts and a blob: worker. Framing stays forbidden.
DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; "
    "connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
DOCS_PATH_PREFIXES = ("/api/docs", "/api/redoc")

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS_VALUE = "max-age=63072000; includeSubDomains"

# Headers browser code may read on cross-origin responses.
CORS_EXPOSE_HEADERS = [
    REQUEST_ID_HEADER,
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
]


def is_valid_request_id(value: str) -> bool:
    """Whether a caller-supplied request id is safe to echo and propagate."""
    return _REQUEST_ID_PATTERN.fullmatch(value) is not None


class RequestIdMiddleware:
    """Echo a sane X-Request-ID or mint one; expose it to logs, gRPC calls and the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = incoming if incoming and is_valid_request_id(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def _came_over_https(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> bool:
    """Whether the client used https: our own scheme, or a trusted proxy's X-Forwarded-Proto."""
    if scope.get("scheme") == "https":
        return True
    peer = scope.get("client")
    peer_ip = parse_ip(peer[0]) if peer else None
    if peer_ip is None or not is_trusted_proxy(peer_ip, trusted_proxies):
        return False
    # TLS ends at the proxy (Traefik) and the server does not rewrite the scheme; the proxy
    # nearest to us appended the last value.
    values = Headers(scope=scope).getlist("x-forwarded-proto")
    protos = [p.strip().lower() for v in values for p in v.split(",") if p.strip()]
    return bool(protos) and protos[-1] == "https"


class SecurityHeadersMiddleware:
    """Add the browser hardening headers; a strict CSP except on the API docs pages."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Sequence[IPNetwork] = (),
        docs_path_prefixes: Sequence[str] = DOCS_PATH_PREFIXES,
    ) -> None:
        self.app = app
        self.trusted_proxies = list(trusted_proxies)
        self.docs_path_prefixes = tuple(docs_path_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers_to_add = dict(SECURITY_HEADERS)
        is_docs = scope["path"].startswith(self.docs_path_prefixes)
        headers_to_add["Content-Security-Policy"] = DOCS_CSP if is_docs else API_CSP
        # HSTS is for responses the browser received over https; over plain http it is
        # ignored, and a spoofed X-Forwarded-Proto from a non-proxy must not trigger it.
        if _came_over_https(scope, self.trusted_proxies):
            headers_to_add["Strict-Transport-Security"] = HSTS_VALUE

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in headers_to_add.items():
                    # A route that sets its own value (say, a tighter CSP) keeps it.
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimitMiddleware:
    """Per-client limit through Redis; 429 with Retry-After when exceeded, fail open on outage."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        trusted_proxies: Sequence[IPNetwork] = (),
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.trusted_proxies = list(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        client = client_address(
            peer[0] if peer else None,
            Headers(scope=scope).getlist("x-forwarded-for"),
            self.trusted_proxies,
        )
        # Routes (auth's login audit, logs) read the resolved address from request.state.
        scope.setdefault("state", {})["client_ip"] = client
        decision = await self.limiter.hit(client)
        if decision is None:
            # Redis is down: fail open (the limiter has logged it).
            await self.app(scope, receive, send)
            return
        limit_headers = decision.headers()
        if not decision.allowed:
            response = JSONResponse(
                {"detail": "Rate limit exceeded"}, status_code=429, headers=limit_headers
            )
            await response(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in limit_headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_limits)


class TimeoutMiddleware:
    """Give each request a budget, cancel it with a 504 when spent; 500 on unhandled errors."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_seconds: float,
        slow_seconds: float,
        slow_routes: Collection[tuple[str, str]] = SLOW_ROUTES,
        cancel_grace_seconds: float = 2.0,
    ) -> None:
        self.app = app
        self.default_seconds = default_seconds
        self.slow_seconds = slow_seconds
        self.slow_routes = frozenset((m.upper(), p.rstrip("/")) for m, p in slow_routes)
        self.cancel_grace_seconds = cancel_grace_seconds

    def budget_for(self, method: str, path: str) -> float:
        """Seconds this request may take before it is cancelled."""
        if (method.upper(), path.rstrip("/")) in self.slow_routes:
            return self.slow_seconds
        return self.default_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        budget = self.budget_for(method, path)
        started = False
        abandoned = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if abandoned:
                # The client already has our 504; the cancelled work must not write into
                # the same response.
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # Downstream gRPC calls clamp their deadlines to what is left of this budget. The
        # task copies the context when created, so it sees the deadline and the request id.
        token = deadline_var.set(time.monotonic() + budget)
        try:
            task = asyncio.create_task(self.app(scope, receive, guarded_send))
        finally:
            deadline_var.reset(token)
        try:
            done, _ = await asyncio.wait({task}, timeout=budget)
            if not done and not started:
                abandoned = True
                await self._cancel(task)
                logger.warning("request timed out after %.1fs: %s %s", budget, method, path)
                response = JSONResponse({"detail": "Request timed out"}, status_code=504)
                await response(scope, receive, send)
                return
            # Finished, or the response is already on the wire: let it complete.
            try:
                await task
            except Exception:
                if started:
                    # Too late for a 500; re-raise so the server aborts the connection
                    # instead of passing off a truncated body as complete.
                    raise
                logger.exception("unhandled error while serving %s %s", method, path)
                response = JSONResponse({"detail": "Internal server error"}, status_code=500)
                await response(scope, receive, send)
        finally:
            # We were cancelled ourselves (client gone, server stopping): stop the work too.
            if not task.done():
                task.cancel()

    async def _cancel(self, task: asyncio.Task[None]) -> None:
        """Cancel the inner work and wait (briefly) until it has actually stopped."""
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self.cancel_grace_seconds)
        if not done:
            logger.error(
                "timed-out request ignored cancellation for %.1fs", self.cancel_grace_seconds
            )
            return
        # Retrieve the outcome so asyncio does not log "exception was never retrieved".
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()


def install_middleware(app: Starlette, settings: GatewaySettings, redis: Redis) -> None:
    """Add the gateway's middleware to `app`, outermost first as documented above."""
    origins = settings.allowed_origins
    if "*" in origins:
        # With credentials allowed, '*' would make Starlette echo any origin: every site on
        # the web could call the API as the signed-in user.
        raise ValueError("CORS origins must be explicit when credentials are allowed")
    proxies = settings.trusted_proxy_networks()
    limiter = RateLimiter(
        redis,
        limit=settings.rate_limit_requests,
        window_seconds=settings.rate_limit_window_seconds,
    )
    # add_middleware inserts at the front, so add from the innermost layer outwards.
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(
        TimeoutMiddleware,
        default_seconds=settings.request_timeout_seconds,
        slow_seconds=settings.slow_request_timeout_seconds,
    )
    app.add_middleware(
        RateLimitMiddleware,
        limiter=limiter,
        trusted_proxies=proxies,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["*"],
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age=600,
    )
    app.add_middleware(SecurityHeadersMiddleware, trusted_proxies=proxies)
    app.add_middleware(RequestIdMiddleware)
