"""ASGI middleware that runs before every Spotify-facing route.

Order per request (control paths under `/_sim` bypass all of it):
1. latency: sleep (without blocking the loop) if a latency rule matches;
2. faults: answer an armed fault instead of the route;
3. rate limit: on `/v1`, count the request against its app's 30 s window and answer
   429 + Retry-After when over the threshold;
4. the route itself;
5. request log: method, path, query, status, user, client, time, duration.

It is plain ASGI (not `BaseHTTPMiddleware`) so streaming and exceptions pass through
untouched and `request.state` written by routes is visible here via `scope["state"]`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import parse_bearer
from .clock import iso_utc
from .errors import WEB_API_PREFIX, web_api_body
from .faults import RATE_LIMIT_MESSAGE, render_fault
from .state import SimulatorState
from .tokens import AccessToken

CONTROL_PREFIX = "/_sim"


class SimulatorMiddleware:
    """Latency, fault injection, rate limiting and request logging."""

    def __init__(self, app: ASGIApp, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        state = self.state
        method: str = scope["method"]
        started = time.perf_counter()
        received_at = state.clock.now()
        # Who is calling, best effort, without validating: faults and rate limits can
        # target a user and an app even for requests the route would refuse.
        token = _peek_token(state, scope)
        status_seen: dict[str, int] = {}

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
            await send(message)

        injected: str | None = None
        default_status = 500  # no response start means the route crashed: the server sends 500
        try:
            delay = state.latency.delay_s(method, path)
            if delay > 0:
                await asyncio.sleep(delay)
            fault = state.faults.take(method, path, token.user_id if token else None)
            if fault is not None:
                injected = "fault"
                await render_fault(fault, path)(scope, receive, send_and_record)
                return
            if path.startswith(WEB_API_PREFIX):
                key = token.client_id if token else "anonymous"
                retry_after = state.rate_limiter.check(key, state.clock.now())
                if retry_after is not None:
                    injected = "rate_limit"
                    response = JSONResponse(
                        web_api_body(429, RATE_LIMIT_MESSAGE),
                        429,
                        headers={"Retry-After": str(retry_after)},
                    )
                    await response(scope, receive, send_and_record)
                    return
            await self.app(scope, receive, send_and_record)
        except asyncio.CancelledError:
            default_status = 499  # the client went away (e.g. gave up during latency)
            raise
        finally:
            route_state: dict[str, Any] = scope.get("state") or {}
            state.requests.add(
                method=method,
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                status=status_seen.get("status", default_status),
                user_id=route_state.get("sim_user_id") or (token.user_id if token else None),
                client_id=route_state.get("sim_client_id") or (token.client_id if token else None),
                time=iso_utc(received_at),
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                injected=injected,
            )


def _peek_token(state: SimulatorState, scope: Scope) -> AccessToken | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            raw = parse_bearer(value.decode("latin-1"))
            return state.tokens.lookup_access(raw) if raw else None
    return None
