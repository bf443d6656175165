"""Web API authentication: the Bearer-token dependency every `/v1` route uses.

`Auth` (an `Annotated` dependency) validates `Authorization: Bearer <token>` with
Spotify's exact answers (ref §3): no header → 401 `No token provided`; a header that is
not a single Bearer token → 400 `Only valid bearer authentication supported`; unknown
token (or a user who no longer exists) → 401 `Invalid access token`; expired → 401
`The access token expired`. `require_scopes(...)` adds the 403 `Insufficient client scope`.

The resolved user is also written to `request.state` so the request log can say who
called.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from .errors import WebApiError, unauthorized
from .state import SimulatorState, get_state
from .tokens import AccessToken
from .users import SimUser

State = Annotated[SimulatorState, Depends(get_state)]


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who is calling: the token's user, client and granted scopes."""

    user: SimUser
    client_id: str
    scopes: frozenset[str]
    token: AccessToken


def parse_bearer(header: str | None) -> str | None:
    """The token in a well-formed `Bearer <token>` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


async def authenticate(request: Request, state: State) -> AuthContext:
    """Resolve the caller of a Web API request or raise Spotify's 400/401."""
    header = request.headers.get("authorization")
    if header is None or not header.strip():
        raise unauthorized("No token provided")
    raw = parse_bearer(header)
    if raw is None:
        raise WebApiError(400, "Only valid bearer authentication supported")
    token = state.tokens.lookup_access(raw)
    user = state.user(token.user_id) if token is not None else None
    if token is None or user is None:
        raise unauthorized("Invalid access token")
    request.state.sim_user_id = user.id
    request.state.sim_client_id = token.client_id
    if token.is_expired(state.clock.now()):
        raise unauthorized("The access token expired")
    return AuthContext(user=user, client_id=token.client_id, scopes=token.scopes, token=token)


Auth = Annotated[AuthContext, Depends(authenticate)]


def require_scopes(*scopes: str) -> Callable[..., Coroutine[Any, Any, AuthContext]]:
    """Dependency factory: 403 `Insufficient client scope` unless the token has all scopes.

    Use as a parameter (`ctx: Annotated[AuthContext, Depends(require_scopes("x"))]`) or in
    a route's `dependencies=[...]`; authentication always runs first.
    """
    needed = frozenset(scopes)

    async def dependency(ctx: Auth) -> AuthContext:
        if not needed <= ctx.scopes:
            raise WebApiError(403, "Insufficient client scope")
        return ctx

    return dependency
