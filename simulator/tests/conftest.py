"""Fixtures for the simulator tests: an in-process app, an HTTP client and an OAuth helper."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from spotify_simulator import SimulatorConfig, create_app

CLIENT_ID = "echostats-dev-client"
CLIENT_SECRET = "echostats-dev-secret"
REDIRECT_URI = "http://127.0.0.1:8000/api/v1/auth/callback"
ALL_ME_SCOPES = "user-read-private user-read-email user-read-recently-played user-top-read"


def pkce_pair() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge) pair computed independently of the simulator."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> dict[str, str]:
    """An HTTP Basic client-authentication header."""
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def bearer(token: str) -> dict[str, str]:
    """A Bearer header."""
    return {"Authorization": f"Bearer {token}"}


def query_of(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Sim:
    """Drives the OAuth dance against the simulator the way EchoStats' auth service will."""

    client: httpx.AsyncClient

    # Test modules cannot import conftest under --import-mode=importlib, so the helpers
    # travel on the fixture.
    CLIENT_ID = CLIENT_ID
    CLIENT_SECRET = CLIENT_SECRET
    REDIRECT_URI = REDIRECT_URI
    pkce_pair = staticmethod(pkce_pair)
    basic = staticmethod(basic)
    bearer = staticmethod(bearer)
    query_of = staticmethod(query_of)

    async def authorize(self, **overrides: Any) -> httpx.Response:
        """GET /authorize with sensible defaults; `None` values drop a parameter."""
        params: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "state": "st-123",
            "scope": ALL_ME_SCOPES,
            "show_dialog": "false",
        }
        params.update(overrides)
        params = {k: v for k, v in params.items() if v is not None}
        return await self.client.get("/authorize", params=params)

    async def code(self, **overrides: Any) -> str:
        """Authorize and return the code from the redirect."""
        response = await self.authorize(**overrides)
        assert response.status_code == 302, response.text
        return query_of(response)["code"]

    async def token(self, data: dict[str, str], headers: dict[str, str] | None = None):
        """POST /api/token with a form body."""
        return await self.client.post("/api/token", data=data, headers=headers or {})

    async def login_public(self, user: str = "sim_alice", scope: str = ALL_ME_SCOPES) -> dict:
        """Full PKCE login without a secret; returns the token JSON."""
        verifier, challenge = pkce_pair()
        code = await self.code(
            sim_user=user,
            scope=scope,
            code_challenge_method="S256",
            code_challenge=challenge,
        )
        response = await self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": CLIENT_ID,
                "code_verifier": verifier,
            }
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def login_confidential(self, user: str = "sim_alice", scope: str = ALL_ME_SCOPES) -> dict:
        """Full server-side login with Basic client auth (and PKCE, as EchoStats does)."""
        verifier, challenge = pkce_pair()
        code = await self.code(
            sim_user=user, scope=scope, code_challenge_method="S256", code_challenge=challenge
        )
        response = await self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            headers=basic(),
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def me(self, token: str) -> httpx.Response:
        """GET /v1/me with a Bearer token."""
        return await self.client.get("/v1/me", headers=bearer(token))


@pytest.fixture
def config() -> SimulatorConfig:
    """Default config; tests that need other settings build their own app."""
    return SimulatorConfig()


@pytest.fixture
def app(config: SimulatorConfig) -> FastAPI:
    """A fresh simulator app per test (the catalog is cached, so this is cheap)."""
    return create_app(config)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8090") as c:
        yield c


@pytest.fixture
def sim(client: httpx.AsyncClient) -> Sim:
    """The OAuth helper bound to `client`."""
    return Sim(client)


@pytest.fixture
def headers_for(client: httpx.AsyncClient):
    """Mint tokens through the control API; returns the Bearer header for a user.

    `scope=None` grants every known scope, as `POST /_sim/tokens` does.
    """

    async def mint(user_id: str = "sim_alice", scope: str | None = None) -> dict[str, str]:
        body: dict[str, Any] = {"user_id": user_id}
        if scope is not None:
            body["scope"] = scope
        response = await client.post("/_sim/tokens", json=body)
        assert response.status_code == 201, response.text
        return bearer(response.json()["access_token"])

    return mint
