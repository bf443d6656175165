"""Request dependencies, named once as Annotated aliases so routes read like sentences.

All of them are `async def`, even those that never await: FastAPI runs a plain `def`
dependency in its thread pool, two thread hand-offs on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import grpc
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPBearer

from echostats.auth.v1 import auth_service_pb2 as auth_pb
from gateway.clients import ServiceClients
from gateway.settings import GatewaySettings


async def get_settings(request: Request) -> GatewaySettings:
    """The settings the app was created with."""
    return request.app.state.settings


async def get_clients(request: Request) -> ServiceClients:
    """The shared service clients."""
    return request.app.state.clients


Settings = Annotated[GatewaySettings, Depends(get_settings)]
Clients = Annotated[ServiceClients, Depends(get_clients)]


async def session_token(request: Request, settings: Settings) -> str | None:
    """The session token from the cookie, or from `Authorization: Bearer`."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(settings.session_cookie_name) or None


SessionToken = Annotated[str | None, Depends(session_token)]


@dataclass(frozen=True)
class AuthenticatedUser:
    """The user a valid session belongs to."""

    id: str
    session: auth_pb.AuthenticateSessionResponse


async def resolve_session(token: str | None, clients: ServiceClients) -> AuthenticatedUser | None:
    """Ask auth who a token belongs to; None when absent or not valid (outages propagate)."""
    if not token:
        return None
    try:
        response = await clients.auth.AuthenticateSession(
            auth_pb.AuthenticateSessionRequest(token=token)
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
            return None
        raise
    return AuthenticatedUser(id=response.user.id, session=response)


# How a session is presented, declared for the OpenAPI document only (session_token reads
# both): every route that depends on current_user is listed with this security, so clients
# and tests can tell user-scoped operations from public ones. The cookie's name follows the
# settings in the document (gateway.openapi).
SESSION_BEARER = HTTPBearer(
    auto_error=False, scheme_name="SessionBearer", description="Session token"
)
SESSION_COOKIE = APIKeyCookie(
    name="echostats_session",
    auto_error=False,
    scheme_name="SessionCookie",
    description="Session cookie set by the login callback or dev-login",
)


async def current_user(
    token: SessionToken,
    clients: Clients,
    _bearer: Annotated[object, Depends(SESSION_BEARER)],
    _cookie: Annotated[object, Depends(SESSION_COOKIE)],
) -> AuthenticatedUser:
    """The signed-in user, or 401 `Not authenticated`."""
    user = await resolve_session(token, clients)
    if user is None:
        raise HTTPException(status_code=401, detail="Not authenticated")
    return user


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
