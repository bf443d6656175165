"""Helpers shared by the integration tests: client identities, URL parsing, the sign-in flow."""

from __future__ import annotations

import itertools
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

TRUSTED_PROXY_ADDRESS = "127.0.0.2"
_client_numbers = itertools.count(1)


def unique_client_address() -> str:
    """A fresh TEST-NET-2 address (never routed; only used as an X-Forwarded-For value)."""
    number = next(_client_numbers)
    return f"198.51.{100 + number // 250}.{number % 250 + 1}"


def with_params(url: str, params: dict[str, str]) -> str:
    """`url` with extra query parameters appended (httpx's params= would replace its query)."""
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a URL, single-valued."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def sign_in(
    client: httpx.AsyncClient, simulator_url: str, *, sim_user: str = "sim_alice"
) -> str:
    """Run the real OAuth flow through the gateway and the simulator; returns the session token."""
    login = await client.get("/api/v1/auth/login", headers={"Accept": "application/json"})
    assert login.status_code == 200, login.text
    binding = login.cookies.get("echostats_oauth_binding")
    assert binding
    async with httpx.AsyncClient(timeout=30) as browser:
        authorize = await browser.get(
            with_params(login.json()["url"], {"sim_user": sim_user}), follow_redirects=False
        )
    assert authorize.status_code == 302, authorize.text
    params = query_of(authorize.headers["location"])
    callback = await client.get(
        "/api/v1/auth/callback",
        params={"code": params["code"], "state": params["state"]},
        headers={"Cookie": f"echostats_oauth_binding={binding}"},
    )
    assert callback.status_code == 302, callback.text
    token = callback.cookies.get("echostats_session")
    assert token
    return token
