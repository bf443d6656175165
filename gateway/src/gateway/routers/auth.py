"""/api/v1/auth: Spotify sign-in (OAuth code + PKCE), session status, refresh, logout, dev-login."""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from echostats.auth.v1 import auth_service_pb2 as auth_pb
from echostats_platform.timeutil import isoformat_z
from gateway.dependencies import Clients, CurrentUser, SessionToken, Settings, resolve_session
from gateway.schemas.auth import (
    AnonymousStatus,
    AuthenticatedStatus,
    DevLoginResponse,
    DevLoginUser,
    LoginUrlResponse,
    LogoutResponse,
    RefreshResponse,
    StatusUser,
)
from gateway.settings import GatewaySettings

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

CALLBACK_PATH = "/api/v1/auth/callback"


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept


def _set_session_cookie(
    response: Response, settings: GatewaySettings, session: auth_pb.Session
) -> None:
    response.set_cookie(
        settings.session_cookie_name,
        session.token,
        max_age=max(0, int(session.expires_at.seconds - time.time())),
        path="/",
        httponly=True,
        secure=settings.session_cookie_secure,
        samesite="lax",
    )


@router.get(
    "/login",
    response_model=LoginUrlResponse,
    responses={302: {"description": "Browser: redirect to Spotify's authorize page"}},
)
async def login(request: Request, settings: Settings, clients: Clients) -> Response:
    """Start the Spotify sign-in: 302 for browsers, `{url, state}` for API clients."""
    start = await clients.auth.StartLogin(auth_pb.StartLoginRequest())
    response: Response
    if _wants_html(request):
        response = RedirectResponse(start.authorize_url, status_code=302)
    else:
        response = JSONResponse({"url": start.authorize_url, "state": start.state})
    # Binds the state to this browser: a callback without the cookie is refused (login CSRF).
    response.set_cookie(
        settings.oauth_binding_cookie_name,
        start.browser_binding,
        max_age=start.state_ttl_seconds,
        path=CALLBACK_PATH,
        httponly=True,
        secure=settings.session_cookie_secure,
        samesite="lax",
    )
    return response


@router.get(
    "/callback",
    status_code=302,
    response_class=RedirectResponse,
    responses={400: {"description": "Bad, missing or replayed state, or Spotify error"}},
)
async def callback(
    request: Request,
    settings: Settings,
    clients: Clients,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    """Finish the sign-in, set the session cookie and send the browser to the frontend."""
    if not state:
        raise HTTPException(status_code=400, detail="Missing state")
    if not code and not error:
        raise HTTPException(status_code=400, detail="Missing authorization code")
    signed_in = await clients.auth.CompleteLogin(
        auth_pb.CompleteLoginRequest(
            code=code or "",
            state=state,
            browser_binding=request.cookies.get(settings.oauth_binding_cookie_name, ""),
            spotify_error=error or "",
        )
    )
    target = f"{settings.frontend_url.rstrip('/')}/auth/callback?{urlencode({'status': 'success'})}"
    response = RedirectResponse(target, status_code=302)
    _set_session_cookie(response, settings, signed_in.session)
    response.delete_cookie(settings.oauth_binding_cookie_name, path=CALLBACK_PATH)
    return response


@router.get("/status", response_model=AuthenticatedStatus | AnonymousStatus)
async def status(token: SessionToken, clients: Clients) -> AuthenticatedStatus | AnonymousStatus:
    """Who is signed in, if anyone."""
    user = await resolve_session(token, clients)
    if user is None:
        return AnonymousStatus(authenticated=False)
    profile = user.session.user
    expires = user.session.token_expires_at if user.session.HasField("token_expires_at") else None
    return AuthenticatedStatus(
        authenticated=True,
        user=StatusUser(
            id=profile.id,
            spotify_id=profile.spotify_id,
            display_name=profile.display_name,
            image_url=profile.image_url if profile.HasField("image_url") else None,
            product=profile.product if profile.HasField("product") else None,
        ),
        token_expires_at=isoformat_z(expires.ToDatetime()) if expires is not None else None,
    )


@router.post("/refresh", response_model=RefreshResponse)
async def refresh(user: CurrentUser, clients: Clients) -> RefreshResponse:
    """Refresh the user's Spotify access token now; 401 when Spotify refuses."""
    await clients.auth.RefreshSpotifyToken(auth_pb.RefreshSpotifyTokenRequest(user_id=user.id))
    return RefreshResponse(status="refreshed")


@router.post("/logout", response_model=LogoutResponse)
async def logout(token: SessionToken, settings: Settings, clients: Clients) -> JSONResponse:
    """End the session server-side and clear the cookie."""
    if token:
        await clients.auth.RevokeSession(auth_pb.RevokeSessionRequest(token=token))
    response = JSONResponse({"status": "logged_out"})
    response.delete_cookie(
        settings.session_cookie_name,
        path="/",
        httponly=True,
        secure=settings.session_cookie_secure,
        samesite="lax",
    )
    return response


@router.get("/dev-login", response_model=DevLoginResponse)
async def dev_login(settings: Settings, clients: Clients) -> JSONResponse:
    """Sign in the demo user (development/demo configuration only)."""
    if not settings.dev_login_allowed:
        raise HTTPException(status_code=404, detail="Not Found")
    signed_in = await clients.auth.DevLogin(auth_pb.DevLoginRequest())
    body = DevLoginResponse(
        status="authenticated",
        user=DevLoginUser(
            id=signed_in.user.id,
            spotify_id=signed_in.user.spotify_id,
            display_name=signed_in.user.display_name,
        ),
        token=signed_in.session.token,
    )
    response = JSONResponse(body.model_dump())
    _set_session_cookie(response, settings, signed_in.session)
    return response
