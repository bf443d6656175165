"""Sign-in with Spotify end to end: gateway → auth → simulator, and the session lifecycle."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
from pymongo import MongoClient

from echostats_platform.crypto import TokenCipher
from echostats_platform.settings import DEV_SESSION_SECRET, TokenEncryptionSettings
from tests.integration.support import query_of, sign_in, with_params

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def set_cookie_header(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")


async def start_login(client: httpx.AsyncClient) -> tuple[str, str, str]:
    """Login as an API client; returns (authorize url, state, browser binding)."""
    response = await client.get("/api/v1/auth/login", headers={"Accept": "application/json"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"url", "state"}
    return body["url"], body["state"], response.cookies["echostats_oauth_binding"]


async def authorize(url: str, **params: str) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=30) as browser:
        response = await browser.get(with_params(url, params), follow_redirects=False)
    assert response.status_code == 302, response.text
    return query_of(response.headers["location"])


async def test_login_json_for_api_clients_carries_pkce_and_scopes(client):
    url, state, _ = await start_login(client)
    query = query_of(url)
    assert query["state"] == state
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    for scope in ("user-read-recently-played", "user-modify-playback-state", "user-follow-read"):
        assert scope in query["scope"].split()


async def test_login_redirects_browsers(client):
    response = await client.get("/api/v1/auth/login", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert "/authorize?" in response.headers["location"]
    binding_cookie = set_cookie_header(response, "echostats_oauth_binding")
    assert "HttpOnly" in binding_cookie and "SameSite=lax" in binding_cookie


async def test_full_login_sets_a_secure_session_and_status(client, simulator_url):
    url, state, binding = await start_login(client)
    params = await authorize(url, sim_user="sim_alice")
    assert params["state"] == state
    callback = await client.get(
        "/api/v1/auth/callback",
        params={"code": params["code"], "state": state},
        headers={"Cookie": f"echostats_oauth_binding={binding}"},
    )
    assert callback.status_code == 302
    assert callback.headers["location"].endswith("/auth/callback?status=success")
    cookie = set_cookie_header(callback, "echostats_session")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" in cookie  # the test stack is not in development mode
    token = callback.cookies["echostats_session"]

    status = await client.get(
        "/api/v1/auth/status", headers={"Cookie": f"echostats_session={token}"}
    )
    body = status.json()
    assert body["authenticated"] is True
    assert body["user"]["spotify_id"] == "sim_alice"
    assert body["user"]["display_name"] == "Alice Example"
    assert body["user"]["product"] == "premium"
    assert body["token_expires_at"].endswith("Z")
    assert set(body["user"]) == {"id", "spotify_id", "display_name", "image_url", "product"}

    # The same state can never be used twice.
    replay = await client.get(
        "/api/v1/auth/callback",
        params={"code": params["code"], "state": state},
        headers={"Cookie": f"echostats_oauth_binding={binding}"},
    )
    assert replay.status_code == 400
    assert replay.json() == {"detail": "Invalid or expired login state"}


async def test_callback_without_the_browser_binding_is_refused(client):
    url, state, _ = await start_login(client)
    params = await authorize(url)
    response = await client.get(
        "/api/v1/auth/callback", params={"code": params["code"], "state": state}
    )
    assert response.status_code == 400
    assert "browser" in response.json()["detail"]


async def test_callback_with_a_foreign_binding_is_refused(client):
    url, state, _ = await start_login(client)
    _, _, other_binding = await start_login(client)
    params = await authorize(url)
    response = await client.get(
        "/api/v1/auth/callback",
        params={"code": params["code"], "state": state},
        headers={"Cookie": f"echostats_oauth_binding={other_binding}"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "params, detail",
    [
        ({"code": "abc"}, "Missing state"),
        ({"code": "abc", "state": "never-issued"}, "Invalid or expired login state"),
    ],
)
async def test_bad_or_missing_state(client, params, detail):
    response = await client.get("/api/v1/auth/callback", params=params)
    assert response.status_code == 400
    assert response.json() == {"detail": detail}


async def test_spotify_error_is_400_and_spends_the_state(client):
    url, state, binding = await start_login(client)
    params = await authorize(url, sim_deny="1")
    assert params["error"] == "access_denied"
    cookies = {"Cookie": f"echostats_oauth_binding={binding}"}
    denied = await client.get(
        "/api/v1/auth/callback", params={"error": "access_denied", "state": state}, headers=cookies
    )
    assert denied.status_code == 400
    assert "access_denied" in denied.json()["detail"]
    again = await client.get(
        "/api/v1/auth/callback", params={"code": "x", "state": state}, headers=cookies
    )
    assert again.status_code == 400


async def test_invalid_code_is_400(client):
    url, state, binding = await start_login(client)
    await authorize(url)
    response = await client.get(
        "/api/v1/auth/callback",
        params={"code": "forged-code", "state": state},
        headers={"Cookie": f"echostats_oauth_binding={binding}"},
    )
    assert response.status_code == 400


async def test_spotify_failure_during_exchange_is_502(client, simulator):
    url, state, binding = await start_login(client)
    params = await authorize(url)
    fault = await simulator.post(
        "/_sim/faults", json={"path_prefix": "/api/token", "status": 503, "count": 10}
    )
    assert fault.status_code in (200, 201, 204)
    response = await client.get(
        "/api/v1/auth/callback",
        params={"code": params["code"], "state": state},
        headers={"Cookie": f"echostats_oauth_binding={binding}"},
    )
    assert response.status_code == 502
    assert "internal" not in response.text.lower()


async def test_bearer_token_logout_revokes_server_side(client, simulator_url):
    token = await sign_in(client, simulator_url)
    assert (await client.get("/api/v1/auth/status", headers=bearer(token))).json()["authenticated"]
    logout = await client.post("/api/v1/auth/logout", headers=bearer(token))
    assert logout.status_code == 200
    assert logout.json() == {"status": "logged_out"}
    assert 'echostats_session=""' in set_cookie_header(logout, "echostats_session")
    # The token still has a valid signature, but the session is gone.
    status = await client.get("/api/v1/auth/status", headers=bearer(token))
    assert status.json() == {"authenticated": False}
    refresh = await client.post("/api/v1/auth/refresh", headers=bearer(token))
    assert refresh.status_code == 401
    assert refresh.json() == {"detail": "Not authenticated"}


async def test_logout_without_session_is_fine(client):
    response = await client.post("/api/v1/auth/logout")
    assert response.status_code == 200
    assert response.json() == {"status": "logged_out"}


async def test_refresh_really_refreshes(client, simulator, simulator_url):
    token = await sign_in(client, simulator_url, sim_user="sim_bob")
    before = (await client.get("/api/v1/auth/status", headers=bearer(token))).json()
    await simulator.delete("/_sim/requests")
    await asyncio.sleep(1.1)  # expiry timestamps have second precision
    response = await client.post("/api/v1/auth/refresh", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"status": "refreshed"}
    calls = (await simulator.get("/_sim/requests", params={"path_prefix": "/api/token"})).json()
    # Background work of other users (syncs, enrichment) may refresh their tokens meanwhile.
    bobs = [call for call in calls["requests"] if call["user_id"] == "sim_bob"]
    assert len(bobs) == 1, calls
    assert bobs[0]["method"] == "POST"
    after = (await client.get("/api/v1/auth/status", headers=bearer(token))).json()
    assert after["token_expires_at"] > before["token_expires_at"]


async def test_revoked_refresh_token_needs_a_new_sign_in(client, simulator, simulator_url):
    token = await sign_in(client, simulator_url, sim_user="sim_bob")
    await simulator.post("/_sim/tokens/revoke", json={"user_id": "sim_bob"})
    response = await client.post("/api/v1/auth/refresh", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    # invalid_grant ends the user's sessions: they must sign in again.
    status = await client.get("/api/v1/auth/status", headers=bearer(token))
    assert status.json() == {"authenticated": False}
    again = await sign_in(client, simulator_url, sim_user="sim_bob")
    assert (await client.post("/api/v1/auth/refresh", headers=bearer(again))).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Cookie": "echostats_session=garbage"},
    ],
)
async def test_protected_routes_need_a_session(client, headers):
    response = await client.post("/api/v1/auth/refresh", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


async def test_forged_and_expired_tokens_are_refused(client, simulator_url):
    token = await sign_in(client, simulator_url)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "an-attacker-guessed-this-secret-0123456789", algorithm="HS256")
    assert (await client.get("/api/v1/auth/status", headers=bearer(forged))).json() == {
        "authenticated": False
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert (await client.post("/api/v1/auth/refresh", headers=bearer(unsigned))).status_code == 401
    # Signed with the stack's real (test) secret, but expired.
    expired = jwt.encode(
        {**claims, "exp": int(time.time()) - 10}, DEV_SESSION_SECRET, algorithm="HS256"
    )
    assert (await client.post("/api/v1/auth/refresh", headers=bearer(expired))).status_code == 401
    # Same secret, valid expiry, but a session id that was never issued.
    invented = jwt.encode({**claims, "sid": "invented"}, DEV_SESSION_SECRET, algorithm="HS256")
    assert (await client.post("/api/v1/auth/refresh", headers=bearer(invented))).status_code == 401
    # The genuine token still works.
    assert (await client.post("/api/v1/auth/refresh", headers=bearer(token))).status_code == 200


async def test_dev_login_works_as_cookie_and_bearer(client):
    response = await client.get("/api/v1/auth/dev-login")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "authenticated"
    assert body["user"]["spotify_id"] == "demo_user"
    assert body["user"]["display_name"] == "Demo User"
    assert set(body["user"]) == {"id", "spotify_id", "display_name"}
    assert response.cookies["echostats_session"] == body["token"]
    status = await client.get("/api/v1/auth/status", headers=bearer(body["token"]))
    assert status.json()["user"]["id"] == body["user"]["id"]
    assert status.json()["token_expires_at"] is None


async def test_tokens_are_encrypted_at_rest(client, simulator_url, stack):
    await sign_in(client, simulator_url, sim_user="sim_alice")
    with MongoClient(stack.mongodb_uri, serverSelectionTimeoutMS=3000) as mongo:
        user = mongo["echostats_auth"]["users"].find_one({"spotify_id": "sim_alice"})
    creds = user["spotify_credentials"]
    assert creds["access_token"].startswith("v1.dev.")
    assert creds["refresh_token"].startswith("v1.dev.")
    # Only the key decrypts them, and what comes out is a token Spotify accepts.
    cipher = TokenCipher(TokenEncryptionSettings().token_keys())
    access = cipher.decrypt(creds["access_token"], associated_data="spotify:sim_alice:access_token")
    assert access not in creds["access_token"]
    async with httpx.AsyncClient() as spotify:
        me = await spotify.get(f"{simulator_url}/v1/me", headers=bearer(access))
    assert me.status_code == 200 and me.json()["id"] == "sim_alice"
