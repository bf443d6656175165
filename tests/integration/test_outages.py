"""Redis and FerretDB outages: readiness and API answers turn 503 and recover on their own."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]


async def wait_for_status(client, path: str, status: int, timeout: float = 20.0):
    """Poll until `path` answers `status`; returns the last response."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(path)
        if response.status_code == status or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.25)


async def test_redis_outage_and_recovery(client, stack):
    token = (await client.get("/api/v1/auth/dev-login")).json()["token"]
    stack.stop_component("redis")
    try:
        ready = await wait_for_status(client, "/api/health/ready", 503)
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert "cache unreachable" in ready.json()["reason"]
        assert "database" not in ready.json()["reason"]
        assert int(ready.headers["retry-after"]) >= 1
        # Login needs Redis for its one-time state.
        login = await client.get("/api/v1/auth/login")
        assert login.status_code == 503
        assert login.json() == {"detail": "Service temporarily unavailable"}
        assert int(login.headers["retry-after"]) >= 1
        # Sessions live in MongoDB: a signed-in user is still recognised.
        status = await client.get(
            "/api/v1/auth/status", headers={"Authorization": f"Bearer {token}"}
        )
        assert status.json()["authenticated"] is True
    finally:
        stack.start_component("redis")
    recovered = await wait_for_status(client, "/api/health/ready", 200)
    assert recovered.json() == {"status": "ready"}
    assert (await client.get("/api/v1/auth/login")).status_code == 200
    # The first queue write after the restart works too (stale pooled connections retry).
    trigger = await client.post(
        "/api/v1/sync-jobs/trigger", headers={"Authorization": f"Bearer {token}"}
    )
    assert trigger.status_code == 200, trigger.text
    assert trigger.json()["status"] in ("started", "already_running")


async def test_ferretdb_outage_and_recovery(client, stack):
    token = (await client.get("/api/v1/auth/dev-login")).json()["token"]
    stack.stop_component("ferretdb")
    try:
        ready = await wait_for_status(client, "/api/health/ready", 503)
        assert ready.status_code == 503
        assert "database not connected" in ready.json()["reason"]
        status = await client.get(
            "/api/v1/auth/status", headers={"Authorization": f"Bearer {token}"}
        )
        assert status.status_code == 503
        assert status.json() == {"detail": "Service temporarily unavailable"}
        assert int(status.headers["retry-after"]) >= 1
        dev_login = await client.get("/api/v1/auth/dev-login")
        assert dev_login.status_code == 503
    finally:
        stack.start_component("ferretdb")
    recovered = await wait_for_status(client, "/api/health/ready", 200)
    assert recovered.json() == {"status": "ready"}
    # Data written before the outage is still there: the old session still works.
    status = await client.get("/api/v1/auth/status", headers={"Authorization": f"Bearer {token}"})
    assert status.json()["authenticated"] is True


async def test_a_service_outage_is_503_and_recovers(client, stack):
    stack.stop_component("observability")
    try:
        ready = await wait_for_status(client, "/api/health/ready", 503)
        assert ready.status_code == 503
        assert ready.json()["reason"] == "services unavailable: observability"
        update = await client.get("/api/health/update")
        assert update.status_code == 503
        assert update.json() == {"detail": "Service temporarily unavailable"}
        assert int(update.headers["retry-after"]) >= 1
    finally:
        stack.start_component("observability")
    recovered = await wait_for_status(client, "/api/health/ready", 200)
    assert recovered.json() == {"status": "ready"}
    assert (await client.get("/api/health/update")).status_code == 200
