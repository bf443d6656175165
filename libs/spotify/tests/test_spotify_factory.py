"""create_http_client and build_spotify_clients: one pool, the User-Agent, both clients."""

from __future__ import annotations

import httpx

from echostats_platform.settings import VERSION, SpotifySettings
from echostats_spotify import build_spotify_clients, create_http_client


class Tokens:
    async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
        return "tok"


class Records:
    def __init__(self) -> None:
        self.records: list = []

    def record(self, rec) -> None:
        self.records.append(rec)


def settings() -> SpotifySettings:
    return SpotifySettings(
        spotify_api_url="http://127.0.0.1:9/api-sim",
        spotify_accounts_url="http://127.0.0.1:9/accounts-sim",
        spotify_timeout_seconds=8.0,
    )


async def test_http_client_has_timeouts_user_agent_and_no_redirects():
    http = create_http_client(settings())
    try:
        assert http.headers["User-Agent"] == f"EchoStats/{VERSION}"
        assert http.timeout.read == 8.0
        assert http.timeout.connect == 5.0
        assert http.follow_redirects is False
    finally:
        await http.aclose()


async def test_built_clients_share_one_pool_and_honour_a_base_path():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/api/token"):
            return httpx.Response(200, json={"access_token": "a", "expires_in": 3600})
        return httpx.Response(200, json={"id": "me"})

    http = create_http_client(settings(), transport=httpx.MockTransport(handler))
    records = Records()
    clients = build_spotify_clients(
        settings(), caller="catalog", recorder=records, token_provider=Tokens(), http=http
    )
    try:
        assert await clients.api.get_json("/me", user_id="u1") == {"id": "me"}
        await clients.accounts.refresh("r")
    finally:
        await clients.aclose()

    assert [str(r.url) for r in seen] == [
        "http://127.0.0.1:9/api-sim/v1/me",
        "http://127.0.0.1:9/accounts-sim/api/token",
    ]
    assert all(r.headers["User-Agent"] == f"EchoStats/{VERSION}" for r in seen)
    assert [(r.caller, r.endpoint) for r in records.records] == [
        ("catalog", "/v1/me"),
        ("catalog", "/api/token"),
    ]
    assert http.is_closed
