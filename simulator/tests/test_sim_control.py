"""The /_sim control API: faults, latency, rate limit, token expiry/revocation, request
log, users, reset, minted tokens, clock and catalog summary."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from spotify_simulator import SimulatorConfig, create_app


@pytest.fixture
async def alice(client) -> dict:
    """Tokens for sim_alice minted through the control API."""
    response = await client.post("/_sim/tokens", json={"user_id": "sim_alice"})
    assert response.status_code == 201
    return response.json()


def auth(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


# --- faults -------------------------------------------------------------------------------


async def test_fault_429_with_retry_after_fires_count_times(client, alice) -> None:
    armed = await client.post(
        "/_sim/faults",
        json={
            "path_prefix": "/v1/me",
            "method": "GET",
            "status": 429,
            "count": 2,
            "retry_after": 7,
        },
    )
    assert armed.status_code == 201
    assert armed.json()["remaining"] == 2
    first = await client.get("/v1/me", headers=auth(alice))
    second = await client.get("/v1/me", headers=auth(alice))
    third = await client.get("/v1/me", headers=auth(alice))
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["retry-after"] == "7"
    assert first.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    assert (await client.get("/_sim/faults")).json() == {"faults": []}


async def test_fault_quota_exceeded_body(client, alice) -> None:
    await client.post(
        "/_sim/faults",
        json={
            "path_prefix": "/v1/",
            "status": 429,
            "retry_after": 86400,
            "reason": "QUOTA_EXCEEDED",
        },
    )
    response = await client.get("/v1/me", headers=auth(alice))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "86400"
    assert response.json() == {
        "error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}
    }


async def test_fault_429_without_retry_after_still_sends_header(client, alice) -> None:
    await client.post("/_sim/faults", json={"path_prefix": "/v1/me", "status": 429})
    response = await client.get("/v1/me", headers=auth(alice))
    assert response.headers["retry-after"] == "1"


async def test_fault_5xx_shapes(client, alice) -> None:
    for status in (500, 502, 503):
        await client.post("/_sim/faults", json={"path_prefix": "/v1/me", "status": status})
    r500 = await client.get("/v1/me", headers=auth(alice))
    r502 = await client.get("/v1/me", headers=auth(alice))
    r503 = await client.get("/v1/me", headers=auth(alice))
    assert r500.status_code == 500
    assert r500.json() == {"error": {"status": 500, "message": "Server error."}}
    assert r502.status_code == 502
    assert r502.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in r502.text
    assert r503.status_code == 503
    assert r503.json()["error"]["status"] == 503
    assert (await client.get("/v1/me", headers=auth(alice))).status_code == 200


async def test_fault_custom_bodies(client, alice) -> None:
    await client.post(
        "/_sim/faults",
        json={"path_prefix": "/v1/me", "status": 503, "body": "<html>down</html>"},
    )
    await client.post(
        "/_sim/faults", json={"path_prefix": "/v1/me", "status": 429, "body": "Too Many Requests"}
    )
    await client.post(
        "/_sim/faults", json={"path_prefix": "/v1/me", "status": 500, "body": {"odd": True}}
    )
    html = await client.get("/v1/me", headers=auth(alice))
    text = await client.get("/v1/me", headers=auth(alice))
    as_json = await client.get("/v1/me", headers=auth(alice))
    assert html.headers["content-type"].startswith("text/html") and html.text == "<html>down</html>"
    assert text.headers["content-type"].startswith("text/plain")
    assert len(text.content) == 17  # Spotify's 17-byte plain-text 429 (ref §3)
    assert as_json.json() == {"odd": True}


async def test_fault_401_looks_like_expired_token(client, alice) -> None:
    await client.post("/_sim/faults", json={"path_prefix": "/v1/me", "status": 401})
    response = await client.get("/v1/me", headers=auth(alice))
    assert response.status_code == 401
    assert response.json() == {"error": {"status": 401, "message": "The access token expired"}}
    assert "invalid_token" in response.headers["www-authenticate"]
    # The token itself is still fine: the next call succeeds.
    assert (await client.get("/v1/me", headers=auth(alice))).status_code == 200


async def test_fault_on_token_endpoint_uses_accounts_shape(sim, client) -> None:
    await client.post(
        "/_sim/faults", json={"path_prefix": "/api/token", "method": "POST", "status": 503}
    )
    response = await sim.token({"grant_type": "refresh_token", "refresh_token": "x"})
    assert response.status_code == 503
    assert response.json() == {
        "error": "temporarily_unavailable",
        "error_description": "Service Unavailable",
    }


async def test_fault_method_and_user_filters(client, alice) -> None:
    bob = (await client.post("/_sim/tokens", json={"user_id": "sim_bob"})).json()
    await client.post(
        "/_sim/faults", json={"path_prefix": "/v1/me", "method": "POST", "status": 500}
    )
    await client.post(
        "/_sim/faults", json={"path_prefix": "/v1/me", "status": 503, "user_id": "sim_bob"}
    )
    assert (await client.get("/v1/me", headers=auth(alice))).status_code == 200
    assert (await client.get("/v1/me", headers=auth(bob))).status_code == 503
    assert (await client.get("/v1/me", headers=auth(bob))).status_code == 200
    remaining = (await client.get("/_sim/faults")).json()["faults"]
    assert [(f["method"], f["status"]) for f in remaining] == [("POST", 500)]


async def test_unlimited_fault_until_cleared(client, alice) -> None:
    armed = (
        await client.post("/_sim/faults", json={"path_prefix": "/v1", "status": 500, "count": None})
    ).json()
    for _ in range(5):
        assert (await client.get("/v1/me", headers=auth(alice))).status_code == 500
    listed = (await client.get("/_sim/faults")).json()["faults"]
    assert listed[0]["id"] == armed["id"] and listed[0]["fired"] == 5
    cleared = await client.delete("/_sim/faults")
    assert cleared.json() == {"cleared": 1}
    assert (await client.get("/v1/me", headers=auth(alice))).status_code == 200


async def test_delete_single_fault(client, alice) -> None:
    keep = (await client.post("/_sim/faults", json={"path_prefix": "/v1/x", "status": 500})).json()
    drop = (await client.post("/_sim/faults", json={"path_prefix": "/v1/me", "status": 500})).json()
    assert (await client.delete(f"/_sim/faults/{drop['id']}")).status_code == 204
    assert (await client.delete(f"/_sim/faults/{drop['id']}")).status_code == 404
    assert (await client.get("/v1/me", headers=auth(alice))).status_code == 200
    assert [f["id"] for f in (await client.get("/_sim/faults")).json()["faults"]] == [keep["id"]]


async def test_fault_validation(client) -> None:
    assert (await client.post("/_sim/faults", json={"status": 200})).status_code == 422
    assert (
        await client.post("/_sim/faults", json={"status": 500, "path_prefix": "v1"})
    ).status_code == 422
    assert (await client.post("/_sim/faults", json={"status": 500, "bogus": 1})).status_code == 422


async def test_control_paths_are_never_faulted(client) -> None:
    await client.post("/_sim/faults", json={"path_prefix": "/", "status": 500, "count": None})
    assert (await client.get("/_sim/health")).status_code == 200
    assert (await client.get("/_sim/requests")).json()["count"] == 0


# --- latency ------------------------------------------------------------------------------


async def test_latency_delays_matching_requests_only(sim, client, alice) -> None:
    put = await client.put("/_sim/latency", json={"path_prefix": "/api/token", "ms": 300})
    assert put.json() == {"rules": [{"path_prefix": "/api/token", "ms": 300, "method": None}]}
    started = time.perf_counter()
    await sim.token(
        {"grant_type": "refresh_token", "refresh_token": alice["refresh_token"]}, sim.basic()
    )
    slow = time.perf_counter() - started
    started = time.perf_counter()
    await client.get("/v1/me", headers=auth(alice))
    fast = time.perf_counter() - started
    assert slow >= 0.3
    assert fast < 0.25
    logged = (await client.get("/_sim/requests", params={"path_prefix": "/api/token"})).json()
    assert logged["requests"][0]["duration_ms"] >= 300


async def test_latency_does_not_block_other_requests(client, alice) -> None:
    await client.put("/_sim/latency", json={"path_prefix": "/v1/me", "ms": 400})
    started = time.perf_counter()
    results = await asyncio.gather(*(client.get("/v1/me", headers=auth(alice)) for _ in range(5)))
    elapsed = time.perf_counter() - started
    assert all(r.status_code == 200 for r in results)
    assert elapsed < 1.2  # five 0.4 s waits overlap instead of queueing (2 s)


async def test_latency_zero_removes_and_delete_clears(client) -> None:
    await client.put("/_sim/latency", json={"path_prefix": "/v1", "ms": 100})
    await client.put("/_sim/latency", json={"path_prefix": "/api", "ms": 100})
    removed = await client.put("/_sim/latency", json={"path_prefix": "/v1", "ms": 0})
    assert [r["path_prefix"] for r in removed.json()["rules"]] == ["/api"]
    await client.delete("/_sim/latency")
    assert (await client.get("/_sim/latency")).json() == {"rules": []}


# --- token expiry / revocation ------------------------------------------------------------


async def test_expire_tokens_for_one_user(client, alice) -> None:
    bob = (await client.post("/_sim/tokens", json={"user_id": "sim_bob"})).json()
    expired = await client.post("/_sim/tokens/expire", json={"user_id": "sim_alice"})
    assert expired.json() == {"expired": 1}
    a = await client.get("/v1/me", headers=auth(alice))
    b = await client.get("/v1/me", headers=auth(bob))
    assert a.status_code == 401
    assert a.json() == {"error": {"status": 401, "message": "The access token expired"}}
    assert b.status_code == 200
    # Tokens issued afterwards are fresh.
    refreshed = await client.post(
        "/api/token",
        data={"grant_type": "refresh_token", "refresh_token": alice["refresh_token"]},
        auth=("echostats-dev-client", "echostats-dev-secret"),
    )
    assert (await client.get("/v1/me", headers=auth(refreshed.json()))).status_code == 200


async def test_expire_all_tokens(client, alice) -> None:
    bob = (await client.post("/_sim/tokens", json={"user_id": "sim_bob"})).json()
    assert (await client.post("/_sim/tokens/expire", json={})).json() == {"expired": 2}
    assert (await client.get("/v1/me", headers=auth(alice))).status_code == 401
    assert (await client.get("/v1/me", headers=auth(bob))).status_code == 401


async def test_revoke_refresh_tokens(client, alice) -> None:
    revoked = await client.post("/_sim/tokens/revoke", json={"user_id": "sim_alice"})
    assert revoked.json() == {"revoked": 1}
    response = await client.post(
        "/api/token",
        data={"grant_type": "refresh_token", "refresh_token": alice["refresh_token"]},
        auth=("echostats-dev-client", "echostats-dev-secret"),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Refresh token revoked",
    }


async def test_expire_unknown_user_is_404(client) -> None:
    assert (await client.post("/_sim/tokens/expire", json={"user_id": "ghost"})).status_code == 404


async def test_minted_public_tokens_rotate(client) -> None:
    minted = (
        await client.post(
            "/_sim/tokens",
            json={"user_id": "sim_bob", "scope": "user-read-private", "public": True},
        )
    ).json()
    assert minted["scope"] == "user-read-private"
    assert minted["user_id"] == "sim_bob"
    refreshed = await client.post(
        "/api/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": minted["refresh_token"],
            "client_id": "echostats-dev-client",
        },
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != minted["refresh_token"]


# --- request log --------------------------------------------------------------------------


async def test_request_log_records_and_filters(sim, client, alice) -> None:
    await client.get("/v1/me", headers=auth(alice))
    await client.get("/v1/me?market=SE", headers=auth(alice))
    await client.get("/v1/me")  # 401, no user
    await sim.authorize(sim_user="sim_bob")
    log = (await client.get("/_sim/requests")).json()
    assert log["count"] == 4
    first, second, anon, authz = log["requests"]
    assert (first["method"], first["path"], first["status"], first["user_id"]) == (
        "GET",
        "/v1/me",
        200,
        "sim_alice",
    )
    assert first["client_id"] == "echostats-dev-client"
    assert first["time"].endswith("Z")
    assert second["query"] == "market=SE"
    assert (anon["status"], anon["user_id"]) == (401, None)
    assert (authz["path"], authz["status"], authz["user_id"]) == ("/authorize", 302, "sim_bob")
    assert first["id"] < second["id"] < anon["id"] < authz["id"]
    only_me = (await client.get("/_sim/requests", params={"path_prefix": "/v1/me"})).json()
    assert only_me["count"] == 3
    by_user = (await client.get("/_sim/requests", params={"user_id": "sim_alice"})).json()
    assert by_user["count"] == 2
    assert (await client.delete("/_sim/requests")).json() == {"cleared": 4}
    assert (await client.get("/_sim/requests")).json() == {"count": 0, "requests": []}


async def test_request_log_marks_injected_and_expired_calls(client, alice) -> None:
    await client.post("/_sim/faults", json={"path_prefix": "/v1/me", "status": 502})
    await client.get("/v1/me", headers=auth(alice))
    await client.post("/_sim/tokens/expire", json={"user_id": "sim_alice"})
    await client.get("/v1/me", headers=auth(alice))
    faulted, expired = (await client.get("/_sim/requests")).json()["requests"]
    assert (faulted["status"], faulted["injected"], faulted["user_id"]) == (
        502,
        "fault",
        "sim_alice",
    )
    assert (expired["status"], expired["injected"], expired["user_id"]) == (401, None, "sim_alice")


# --- rate limit ---------------------------------------------------------------------------


async def test_rate_limit_sliding_window(client, alice) -> None:
    configured = await client.put("/_sim/rate-limit", json={"threshold": 3, "window_s": 30})
    assert configured.json()["threshold"] == 3
    statuses = [(await client.get("/v1/me", headers=auth(alice))).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get("/v1/me", headers=auth(alice))
    assert limited.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    assert 1 <= int(limited.headers["retry-after"]) <= 30
    # Once the window slides past the earlier calls, requests pass again.
    await client.post("/_sim/clock", json={"advance_s": 31})
    assert (await client.get("/v1/me", headers=auth(alice))).status_code == 200
    # Turning it off.
    await client.put("/_sim/rate-limit", json={"threshold": None})
    statuses = [(await client.get("/v1/me", headers=auth(alice))).status_code for _ in range(6)]
    assert set(statuses) == {200}


async def test_rate_limit_fixed_retry_after_and_config_default() -> None:
    app = create_app(SimulatorConfig(rate_limit=2))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        token = (await client.post("/_sim/tokens", json={"user_id": "sim_alice"})).json()
        statuses = [(await client.get("/v1/me", headers=auth(token))).status_code for _ in range(3)]
        await client.put("/_sim/rate-limit", json={"threshold": 1, "retry_after": 120})
        await client.get("/v1/me", headers=auth(token))
        fixed = await client.get("/v1/me", headers=auth(token))
        # Accounts paths are outside the Web API limit.
        authz = await client.get("/authorize", params={"client_id": "nope"})
    assert statuses == [200, 200, 429]
    assert fixed.headers["retry-after"] == "120"
    assert authz.status_code == 400


# --- users, mode, reset -------------------------------------------------------------------


async def test_add_user_then_sign_in(sim, client) -> None:
    created = await client.post(
        "/_sim/users",
        json={
            "id": "sim_carol",
            "display_name": "Carol Example",
            "product": "free",
            "country": "DE",
        },
    )
    assert created.status_code == 201
    assert created.json()["product"] == "free"
    assert (await client.post("/_sim/users", json={"id": "sim_carol"})).status_code == 409
    tokens = await sim.login_public(user="sim_carol")
    me = (await sim.me(tokens["access_token"])).json()
    assert (me["id"], me["display_name"], me["country"]) == ("sim_carol", "Carol Example", "DE")
    assert me["email"] == "sim_carol@example.com"


async def test_add_user_validation(client) -> None:
    bad_product = await client.post("/_sim/users", json={"id": "x", "product": "platinum"})
    bad_id = await client.post("/_sim/users", json={"id": "has space"})
    assert bad_product.status_code == 422
    assert bad_id.status_code == 422


async def test_mode_validation(client) -> None:
    assert (await client.put("/_sim/mode", json={"mode": "sandbox"})).status_code == 422
    assert (await client.get("/_sim/mode")).json() == {"mode": "extended"}


async def test_reset_restores_seeded_state(sim, client, alice) -> None:
    await client.post("/_sim/users", json={"id": "sim_carol"})
    await client.put("/_sim/mode", json={"mode": "development"})
    await client.post("/_sim/faults", json={"path_prefix": "/v1", "status": 500, "count": None})
    await client.put("/_sim/latency", json={"path_prefix": "/v1", "ms": 50})
    await client.put("/_sim/rate-limit", json={"threshold": 1})
    await client.post("/_sim/clock", json={"advance_s": 100})
    await client.get("/v1/me", headers=auth(alice))

    assert (await client.post("/_sim/reset")).json() == {"status": "reset", "mode": "extended"}

    users = [u["id"] for u in (await client.get("/_sim/users")).json()["users"]]
    assert users == ["sim_alice", "sim_bob", "demo_user"]
    assert (await client.get("/_sim/faults")).json() == {"faults": []}
    assert (await client.get("/_sim/latency")).json() == {"rules": []}
    assert (await client.get("/_sim/rate-limit")).json()["threshold"] is None
    assert (await client.get("/_sim/clock")).json()["offset_s"] == 0
    assert (await client.get("/_sim/requests")).json()["count"] == 0
    # Issued tokens survive a plain reset, so a running stack stays signed in...
    me = await client.get("/v1/me", headers=auth(alice))
    assert me.status_code == 200 and "email" in me.json()
    # ...unless the reset asks to forget them.
    await client.post("/_sim/reset", json={"tokens": True})
    gone = await client.get("/v1/me", headers=auth(alice))
    assert gone.json() == {"error": {"status": 401, "message": "Invalid access token"}}


async def test_tokens_of_removed_users_become_invalid(sim, client) -> None:
    await client.post("/_sim/users", json={"id": "sim_carol"})
    tokens = await sim.login_public(user="sim_carol")
    await client.post("/_sim/reset")
    response = await sim.me(tokens["access_token"])
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid access token"


async def test_health_and_catalog_summary(client) -> None:
    health = (await client.get("/_sim/health")).json()
    assert health == {"status": "ok", "mode": "extended", "client_id": "echostats-dev-client"}
    summary = (await client.get("/_sim/catalog", params={"sample": 3})).json()
    assert summary["counts"]["tracks"] == 10_000
    assert len(summary["sample"]["tracks"]) == 3
    assert all(len(t) == 22 for t in summary["sample"]["tracks"])
    assert "indie folk" in summary["genres"]


async def test_clock_only_moves_forward(client) -> None:
    assert (await client.post("/_sim/clock", json={"advance_s": -5})).status_code == 422
    assert (await client.get("/_sim/clock")).json()["offset_s"] == 0


async def test_openapi_lives_under_sim(client) -> None:
    assert (await client.get("/_sim/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 404
