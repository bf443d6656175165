"""Fixtures for tests that drive the running stack through the gateway over real sockets.

The test stack's gateway trusts X-Forwarded-For only from 127.0.0.2 (see tests/conftest.py).
Clients here connect from 127.0.0.2 and name a unique documentation-range client address
per test, so every test gets its own rate-limit bucket; rate-limit tests connect from
127.0.0.1 (an untrusted peer) on purpose.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.integration.support import TRUSTED_PROXY_ADDRESS, unique_client_address

ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_client(gateway_url: str) -> AsyncIterator[ClientFactory]:
    """Build gateway clients; each gets its own client address unless told otherwise."""
    clients: list[httpx.AsyncClient] = []

    def factory(
        *, via_proxy: bool = True, base_url: str | None = None, **kwargs: object
    ) -> httpx.AsyncClient:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[arg-type]
        transport = kwargs.pop("transport", None)
        if via_proxy:
            headers.setdefault("X-Forwarded-For", unique_client_address())
            transport = httpx.AsyncHTTPTransport(local_address=TRUSTED_PROXY_ADDRESS)
        client = httpx.AsyncClient(
            base_url=base_url or gateway_url,
            headers=headers,
            transport=transport,
            timeout=30,
            **kwargs,  # type: ignore[arg-type]
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: ClientFactory) -> httpx.AsyncClient:
    """A gateway client with its own rate-limit identity."""
    return make_client()


@pytest.fixture
async def simulator(simulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the simulator's control API; resets the simulator after the test."""
    async with httpx.AsyncClient(base_url=simulator_url, timeout=30) as sim:
        yield sim
        await sim.post("/_sim/reset")
