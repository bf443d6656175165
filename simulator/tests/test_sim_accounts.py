"""Accounts service: /authorize redirects and refusals, /api/token grants and errors."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from spotify_simulator import SimulatorConfig, create_app
from spotify_simulator.accounts import redirect_uri_allowed
from spotify_simulator.state import RegisteredApp
from spotify_simulator.tokens import s256_challenge

# --- /authorize ---------------------------------------------------------------------------


async def test_authorize_redirects_with_code_and_state(sim) -> None:
    response = await sim.authorize(state="opaque/state+1")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(sim.REDIRECT_URI + "?")
    params = sim.query_of(response)
    assert params["state"] == "opaque/state+1"
    assert len(params["code"]) > 40
    assert "error" not in params


async def test_authorize_keeps_existing_query_of_redirect_uri(sim) -> None:
    response = await sim.authorize(redirect_uri="https://app.example.org/cb?next=%2Fhome")
    assert response.status_code == 302
    params = sim.query_of(response)
    assert params["next"] == "/home"
    assert params["code"]


async def test_authorize_without_state_omits_it(sim) -> None:
    response = await sim.authorize(state=None)
    params = sim.query_of(response)
    assert "code" in params
    assert "state" not in params


async def test_sim_deny_redirects_access_denied(sim) -> None:
    response = await sim.authorize(sim_deny="1", state="s1")
    assert response.status_code == 302
    params = sim.query_of(response)
    assert params == {"error": "access_denied", "state": "s1"}


async def test_unknown_client_gets_error_page_not_redirect(sim) -> None:
    response = await sim.authorize(client_id="nope")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "INVALID_CLIENT: Invalid client" in response.text


async def test_localhost_redirect_refused(sim) -> None:
    response = await sim.authorize(redirect_uri="http://localhost:8000/callback")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "INVALID_CLIENT: Invalid redirect URI" in response.text


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/callback",  # plain http off loopback
        "ftp://127.0.0.1/cb",
        "http://127.0.0.1:8000/cb#frag",
        "not a uri",
    ],
)
async def test_bad_redirect_uris_refused(sim, uri: str) -> None:
    response = await sim.authorize(redirect_uri=uri)
    assert response.status_code == 400
    assert "INVALID_CLIENT: Invalid redirect URI" in response.text


async def test_missing_redirect_uri_refused(sim) -> None:
    response = await sim.authorize(redirect_uri=None)
    assert response.status_code == 400
    assert "Invalid redirect URI" in response.text


async def test_ipv6_loopback_and_dynamic_port_allowed(sim) -> None:
    for uri in ("http://[::1]:5173/cb", "http://127.0.0.1:61234/x/y"):
        response = await sim.authorize(redirect_uri=uri)
        assert response.status_code == 302
        assert response.headers["location"].startswith(uri + "?code=")


async def test_unknown_sim_user_gets_error_page(sim) -> None:
    response = await sim.authorize(sim_user="ghost")
    assert response.status_code == 400
    assert "sim_user" in response.text


async def test_implicit_grant_is_refused_by_redirect(sim) -> None:
    response = await sim.authorize(response_type="token")
    assert response.status_code == 302
    assert sim.query_of(response)["error"] == "unsupported_response_type"


async def test_bad_pkce_method_is_refused_by_redirect(sim) -> None:
    _, challenge = sim.pkce_pair()
    response = await sim.authorize(code_challenge_method="plain", code_challenge=challenge)
    assert sim.query_of(response)["error"] == "invalid_request"
    response = await sim.authorize(code_challenge_method="S256", code_challenge="short")
    assert sim.query_of(response)["error"] == "invalid_request"


async def test_unknown_scope_is_refused_by_redirect(sim) -> None:
    response = await sim.authorize(scope="user-read-private made-up-scope", state="q")
    params = sim.query_of(response)
    assert params["error"] == "invalid_scope"
    assert params["state"] == "q"


def test_redirect_rules_with_registered_list() -> None:
    registered = ("http://127.0.0.1/callback", "https://echostats.example/cb")
    assert redirect_uri_allowed("https://echostats.example/cb", registered)
    assert redirect_uri_allowed("http://127.0.0.1/callback", registered)
    # A loopback URI registered without a port accepts any port (Spotify rule)...
    assert redirect_uri_allowed("http://127.0.0.1:49152/callback", registered)
    # ...but not another path, and https URIs must match exactly.
    assert not redirect_uri_allowed("http://127.0.0.1:49152/other", registered)
    assert not redirect_uri_allowed("https://echostats.example/cb2", registered)
    assert not redirect_uri_allowed("http://[::1]:3000/callback", registered)
    # localhost stays refused even if someone registered it.
    assert not redirect_uri_allowed("http://localhost/cb", ("http://localhost/cb",))


async def test_configured_redirect_list_is_enforced() -> None:
    import httpx

    app = create_app(SimulatorConfig(redirect_uris=("http://127.0.0.1:9000/only",)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        base = {"client_id": "echostats-dev-client", "response_type": "code"}
        ok = await client.get(
            "/authorize", params={**base, "redirect_uri": "http://127.0.0.1:9000/only"}
        )
        bad = await client.get(
            "/authorize", params={**base, "redirect_uri": "http://127.0.0.1:9001/only"}
        )
    assert ok.status_code == 302
    assert bad.status_code == 400
    assert "Invalid redirect URI" in bad.text


# --- authorization_code grant -------------------------------------------------------------


async def test_pkce_exchange_returns_tokens(sim) -> None:
    verifier, challenge = sim.pkce_pair()
    assert s256_challenge(verifier) == challenge  # simulator agrees with RFC 7636 maths
    code = await sim.code(code_challenge_method="S256", code_challenge=challenge)
    response = await sim.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": sim.REDIRECT_URI,
            "client_id": sim.CLIENT_ID,
            "code_verifier": verifier,
        }
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "scope", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"].split() == [
        "user-read-private",
        "user-read-email",
        "user-read-recently-played",
        "user-top-read",
    ]
    assert body["access_token"] != body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"
    me = await sim.me(body["access_token"])
    assert me.status_code == 200
    assert me.json()["id"] == "sim_alice"


async def test_wrong_code_verifier_refused(sim) -> None:
    _, challenge = sim.pkce_pair()
    other_verifier, _ = sim.pkce_pair()
    code = await sim.code(code_challenge_method="S256", code_challenge=challenge)
    response = await sim.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": sim.REDIRECT_URI,
            "client_id": sim.CLIENT_ID,
            "code_verifier": other_verifier,
        }
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "code_verifier was incorrect",
    }


async def test_missing_code_verifier_refused_even_with_secret(sim) -> None:
    _, challenge = sim.pkce_pair()
    code = await sim.code(code_challenge_method="S256", code_challenge=challenge)
    response = await sim.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": sim.REDIRECT_URI},
        headers=sim.basic(),
    )
    assert response.status_code == 400
    assert response.json()["error_description"] == "code_verifier was incorrect"


async def test_code_is_single_use(sim) -> None:
    code = await sim.code()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": sim.REDIRECT_URI}
    first = await sim.token(form, headers=sim.basic())
    assert first.status_code == 200
    second = await sim.token(form, headers=sim.basic())
    assert second.status_code == 400
    assert second.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid authorization code",
    }


async def test_unknown_code_refused(sim) -> None:
    response = await sim.token(
        {"grant_type": "authorization_code", "code": "AQnope", "redirect_uri": sim.REDIRECT_URI},
        headers=sim.basic(),
    )
    assert response.status_code == 400
    assert response.json()["error_description"] == "Invalid authorization code"


async def test_redirect_uri_mismatch_refused(sim) -> None:
    code = await sim.code()
    response = await sim.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:8000/other",
        },
        headers=sim.basic(),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid redirect URI",
    }


async def test_code_expires_after_ten_minutes(sim, client) -> None:
    code = await sim.code()
    advanced = await client.post("/_sim/clock", json={"advance_s": 601})
    assert advanced.json()["offset_s"] == 601
    response = await sim.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": sim.REDIRECT_URI},
        headers=sim.basic(),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Authorization code expired",
    }


async def test_unknown_client_is_invalid_client(sim) -> None:
    code = await sim.code()
    response = await sim.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": sim.REDIRECT_URI},
        headers=sim.basic("other-client", "x"),
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client", "error_description": "Invalid client"}


async def test_code_is_bound_to_the_client_it_was_issued_to(sim, app) -> None:
    state = app.state.sim
    state.apps["second-app"] = RegisteredApp("second-app", "second-secret", ())
    code = await sim.code()  # issued to echostats-dev-client
    response = await sim.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": sim.REDIRECT_URI},
        headers=sim.basic("second-app", "second-secret"),
    )
    assert response.status_code == 400
    assert response.json()["error_description"] == "Invalid authorization code"


async def test_wrong_secret_is_invalid_client_400(sim) -> None:
    code = await sim.code()
    response = await sim.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": sim.REDIRECT_URI},
        headers=sim.basic(secret="wrong"),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "Invalid client secret",
    }
    # Failed client authentication does not burn the code.
    retry = await sim.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": sim.REDIRECT_URI},
        headers=sim.basic(),
    )
    assert retry.status_code == 200


async def test_secret_in_body_works_like_basic(sim) -> None:
    code = await sim.code()
    response = await sim.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": sim.REDIRECT_URI,
            "client_id": sim.CLIENT_ID,
            "client_secret": sim.CLIENT_SECRET,
        }
    )
    assert response.status_code == 200
    assert "refresh_token" in response.json()


async def test_public_client_without_pkce_is_refused(sim) -> None:
    code = await sim.code()  # no code_challenge
    response = await sim.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": sim.REDIRECT_URI,
            "client_id": sim.CLIENT_ID,
        }
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("grant_type", [None, "client_credentials", "password"])
async def test_unsupported_grant_type(sim, grant_type: str | None) -> None:
    data = {"grant_type": grant_type} if grant_type else {}
    response = await sim.token(data, headers=sim.basic())
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_malformed_basic_header_is_invalid_client(sim) -> None:
    response = await sim.token(
        {"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Authorization": "Basic %%%not-base64"},
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client", "error_description": "Invalid client"}


# --- refresh_token grant ------------------------------------------------------------------


async def test_confidential_refresh_keeps_refresh_token(sim) -> None:
    tokens = await sim.login_confidential()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    first = await sim.token(form, headers=sim.basic())
    assert first.status_code == 200
    body = first.json()
    assert "refresh_token" not in body  # server apps keep their refresh token (observed)
    assert body["access_token"] != tokens["access_token"]
    assert body["scope"] == tokens["scope"]
    assert body["expires_in"] == 3600
    # The same refresh token keeps working.
    second = await sim.token(form, headers=sim.basic())
    assert second.status_code == 200
    # Both access tokens are valid until they expire.
    assert (await sim.me(body["access_token"])).status_code == 200
    assert (await sim.me(tokens["access_token"])).status_code == 200


async def test_confidential_refresh_requires_secret(sim) -> None:
    tokens = await sim.login_confidential()
    response = await sim.token(
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": sim.CLIENT_ID,
        }
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


async def test_public_refresh_rotates_and_revokes_old(sim) -> None:
    tokens = await sim.login_public()
    old = tokens["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": old, "client_id": sim.CLIENT_ID}
    first = await sim.token(form)
    assert first.status_code == 200
    new = first.json()["refresh_token"]
    assert new != old
    reused = await sim.token(form)
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant", "error_description": "Refresh token revoked"}
    again = await sim.token({**form, "refresh_token": new})
    assert again.status_code == 200
    assert again.json()["refresh_token"] not in (old, new)
    assert (await sim.me(again.json()["access_token"])).json()["id"] == "sim_alice"


async def test_unknown_refresh_token_refused(sim) -> None:
    response = await sim.token(
        {"grant_type": "refresh_token", "refresh_token": "AQbogus"}, headers=sim.basic()
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid refresh token",
    }


async def test_missing_refresh_token_is_invalid_request(sim) -> None:
    response = await sim.token({"grant_type": "refresh_token"}, headers=sim.basic())
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "refresh_token must be supplied",
    }


async def test_refresh_token_dies_six_months_after_authorization(sim, client) -> None:
    tokens = await sim.login_confidential()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    await client.post("/_sim/clock", json={"advance_s": 179 * 86_400})
    assert (await sim.token(form, headers=sim.basic())).status_code == 200
    await client.post("/_sim/clock", json={"advance_s": 2 * 86_400})
    response = await sim.token(form, headers=sim.basic())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_token_lifetime_is_configurable() -> None:
    import httpx

    app = create_app(SimulatorConfig(access_token_ttl_s=120))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        minted = await client.post("/_sim/tokens", json={"user_id": "sim_bob"})
    assert minted.json()["expires_in"] == 120


async def test_sim_user_selects_who_signs_in(sim) -> None:
    tokens = await sim.login_public(user="sim_bob")
    me = (await sim.me(tokens["access_token"])).json()
    assert me["id"] == "sim_bob"
    assert me["product"] == "free"
    assert urlsplit(me["href"]).path == "/v1/users/sim_bob"
