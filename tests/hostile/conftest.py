"""Fixtures of the hostile-input tests: signed-in users with synced plays."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.conftest import client, make_client, simulator  # noqa: F401
from tests.integration.support import sign_in
from tests.integration.test_sync_and_history import wait_for_idle

PLAYS_PER_USER = 12


async def seeded_user(gateway: httpx.AsyncClient, simulator_url: str, label: str) -> dict:
    """A fresh simulated user with plays, signed in and synced: token, ids, names, plays."""
    spotify_id = f"sim_{label}_{uuid.uuid4().hex[:8]}"
    display_name = f"Hostile {label} {spotify_id[-8:]}"
    async with httpx.AsyncClient(base_url=simulator_url, timeout=30) as sim:
        created = await sim.post(
            "/_sim/users", json={"id": spotify_id, "display_name": display_name}
        )
        assert created.status_code in (200, 201), created.text
        plays = await sim.post("/_sim/plays", json={"user_id": spotify_id, "count": PLAYS_PER_USER})
        assert plays.status_code == 201, plays.text
    token = await sign_in(gateway, simulator_url, sim_user=spotify_id)
    await wait_for_idle(gateway, token)
    return {
        "spotify_id": spotify_id,
        "display_name": display_name,
        "token": token,
        "plays": plays.json()["plays"],
    }


@pytest.fixture(scope="module")
async def fuzz_user(gateway_url, simulator_url) -> dict:
    """A signed-in user with synced plays, shared by the module's tests."""
    from tests.integration.support import TRUSTED_PROXY_ADDRESS, unique_client_address

    transport = httpx.AsyncHTTPTransport(local_address=TRUSTED_PROXY_ADDRESS)
    async with httpx.AsyncClient(
        base_url=gateway_url,
        transport=transport,
        headers={"X-Forwarded-For": unique_client_address()},
        timeout=30,
    ) as gateway:
        return await seeded_user(gateway, simulator_url, "fuzz")
