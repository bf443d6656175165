"""Response models of /api/v1/auth/*."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class LoginUrlResponse(BaseModel):
    url: str
    state: str


class StatusUser(BaseModel):
    id: str
    spotify_id: str
    display_name: str
    image_url: str | None
    product: str | None


class AuthenticatedStatus(BaseModel):
    authenticated: Literal[True]
    user: StatusUser
    token_expires_at: str | None


class AnonymousStatus(BaseModel):
    authenticated: Literal[False]


class RefreshResponse(BaseModel):
    status: Literal["refreshed"]


class LogoutResponse(BaseModel):
    status: Literal["logged_out"]


class DevLoginUser(BaseModel):
    id: str
    spotify_id: str
    display_name: str


class DevLoginResponse(BaseModel):
    status: Literal["authenticated"]
    user: DevLoginUser
    token: str
