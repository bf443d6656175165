"""SpotifyAccountsClient against a fake Accounts service, and the PKCE helpers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from echostats_platform.errors import InvalidArgument, Unauthenticated
from echostats_spotify import (
    InvalidClient,
    InvalidGrant,
    RateLimited,
    SpotifyUpstreamError,
    TokenRequestRejected,
    code_challenge_s256,
    new_code_verifier,
)
from echostats_spotify.accounts import TokenGrant

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)  # the harness's fixed clock
# RFC 7636 Appendix B. (The verifier "dBjftJeZ4CVP-mJ92IfHK2t6e2aE5iU0dTvjdI2OPJg" sometimes
# quoted beside this challenge is a corrupted copy: it hashes to "zGzEpRrANeBu...".)
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def token_response(**fields: object) -> httpx.Response:
    body = {
        "access_token": "BQD-access",
        "token_type": "Bearer",
        "scope": "user-read-private user-read-recently-played",
        "expires_in": 3600,
    }
    body.update(fields)
    return httpx.Response(200, json=body)


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.read().decode()).items()}


# --- PKCE -----------------------------------------------------------------------------------


def test_code_challenge_matches_rfc7636_vector():
    assert code_challenge_s256(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_new_code_verifier_is_valid_and_random():
    first, second = new_code_verifier(), new_code_verifier()
    assert len(first) == 64
    assert first != second
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    assert len(code_challenge_s256(first)) == 43
    with pytest.raises(ValueError):
        new_code_verifier(42)


def test_invalid_verifier_is_refused():
    with pytest.raises(ValueError):
        code_challenge_s256("too-short")
    with pytest.raises(ValueError):
        code_challenge_s256("a" * 42 + "!")


# --- authorize URL --------------------------------------------------------------------------


async def test_authorize_url_uses_code_flow_with_s256(make_accounts):
    h = make_accounts(lambda request: token_response())

    url = h.accounts.authorize_url(
        "state-xyz", "challenge-abc", ["user-read-private", "user-modify-playback-state"]
    )

    parts = urlsplit(url)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://accounts.spotify.test/authorize"
    )
    assert "scope=user-read-private%20user-modify-playback-state" in parts.query
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "client_id": "client-id",
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1:8000/api/v1/auth/callback",
        "state": "state-xyz",
        "scope": "user-read-private user-modify-playback-state",
        "code_challenge_method": "S256",
        "code_challenge": "challenge-abc",
    }


# --- client authentication ------------------------------------------------------------------


async def test_confidential_client_uses_basic_auth(make_accounts):
    h = make_accounts(lambda request: token_response(refresh_token="AQB-refresh"))

    grant = await h.accounts.exchange_code("the-code", VERIFIER)

    request = h.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://accounts.spotify.test/api/token"
    expected = base64.b64encode(b"client-id:client-secret").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(request) == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "http://127.0.0.1:8000/api/v1/auth/callback",
        "code_verifier": VERIFIER,
    }
    assert grant.access_token == "BQD-access"
    assert grant.refresh_token == "AQB-refresh"
    assert grant.expires_at == NOW + timedelta(seconds=3600)
    assert grant.expires_at.tzinfo is UTC
    assert grant.scopes == {"user-read-private", "user-read-recently-played"}


async def test_public_client_sends_client_id_in_the_body(make_accounts):
    h = make_accounts(
        lambda request: token_response(refresh_token="AQB-refresh"), spotify_client_secret=""
    )

    await h.accounts.exchange_code("the-code", VERIFIER)

    request = h.requests[0]
    assert "Authorization" not in request.headers
    body = form(request)
    assert body["client_id"] == "client-id"
    assert body["code_verifier"] == VERIFIER
    assert "client_secret" not in body


async def test_public_refresh_sends_client_id_and_takes_the_rotated_token(make_accounts):
    h = make_accounts(
        lambda request: token_response(refresh_token="AQB-rotated"), spotify_client_secret=""
    )

    grant = await h.accounts.refresh("AQB-old", user_id="u1")

    assert form(h.requests[0]) == {
        "grant_type": "refresh_token",
        "refresh_token": "AQB-old",
        "client_id": "client-id",
    }
    assert grant.refresh_token == "AQB-rotated"
    assert h.recorder.records[0].user_id == "u1"


async def test_refresh_keeps_the_old_refresh_token_when_none_is_returned(make_accounts):
    h = make_accounts(lambda request: token_response(expires_in=1800))

    grant = await h.accounts.refresh("AQB-old")

    assert grant.refresh_token == "AQB-old"
    assert grant.access_token == "BQD-access"
    assert grant.expires_at == NOW + timedelta(seconds=1800)


# --- errors ---------------------------------------------------------------------------------


async def test_invalid_grant_raises_invalid_grant(make_accounts):
    h = make_accounts(
        lambda request: httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "Refresh token revoked"}
        )
    )

    with pytest.raises(InvalidGrant) as caught:
        await h.accounts.refresh("AQB-old")

    error = caught.value
    assert isinstance(error, Unauthenticated)
    assert error.reason == "INVALID_GRANT"
    assert "Refresh token revoked" in error.message
    assert error.spotify_reason == "invalid_grant"
    assert error.status_code == 400
    assert len(h.requests) == 1


async def test_invalid_client_raises_invalid_client(make_accounts):
    h = make_accounts(
        lambda request: httpx.Response(
            400, json={"error": "invalid_client", "error_description": "Invalid client secret"}
        )
    )

    with pytest.raises(InvalidClient) as caught:
        await h.accounts.exchange_code("code", VERIFIER)

    assert isinstance(caught.value, Unauthenticated)
    assert caught.value.reason == "INVALID_CLIENT"
    assert "Invalid client secret" in caught.value.message


async def test_other_refusals_are_invalid_argument(make_accounts):
    h = make_accounts(
        lambda request: httpx.Response(
            400,
            json={"error": "unsupported_grant_type", "error_description": "grant_type missing"},
        )
    )

    with pytest.raises(TokenRequestRejected) as caught:
        await h.accounts.exchange_code("code", VERIFIER)

    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.reason == "UNSUPPORTED_GRANT_TYPE"
    assert "grant_type missing" in caught.value.message


async def test_5xx_is_retried_and_recorded(make_accounts):
    answers = [httpx.Response(503, text="<html>down</html>"), token_response(refresh_token="r")]
    h = make_accounts(lambda request: answers.pop(0))

    grant = await h.accounts.exchange_code("code", VERIFIER)

    assert grant.refresh_token == "r"
    assert [(r.method, r.endpoint, r.status_code) for r in h.recorder.records] == [
        ("POST", "/api/token", 503),
        ("POST", "/api/token", 200),
    ]
    assert all(r.caller == "auth" for r in h.recorder.records)
    assert len(h.sleep.slept) == 1


async def test_network_failures_end_in_upstream_error(make_accounts):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    h = make_accounts(refuse, spotify_max_retries=2)

    with pytest.raises(SpotifyUpstreamError) as caught:
        await h.accounts.refresh("AQB-old")

    assert caught.value.status_code == 0
    assert [r.status_code for r in h.recorder.records] == [0, 0, 0]


async def test_long_429_raises_rate_limited(make_accounts):
    h = make_accounts(lambda request: httpx.Response(429, headers={"Retry-After": "3600"}))

    with pytest.raises(RateLimited) as caught:
        await h.accounts.refresh("AQB-old")

    assert caught.value.retry_after == 3600
    assert h.sleep.slept == []


async def test_token_answer_without_access_token_is_an_upstream_error(make_accounts):
    h = make_accounts(lambda request: httpx.Response(200, text="not json"))

    with pytest.raises(SpotifyUpstreamError):
        await h.accounts.refresh("AQB-old")


def test_token_grant_repr_hides_tokens():
    grant = TokenGrant(
        access_token="secret-access", refresh_token="secret-refresh", expires_at=NOW, scope="a b"
    )

    assert "secret" not in repr(grant)
    assert grant.expires_within(60, now=NOW - timedelta(seconds=30))
    assert not grant.expires_within(60, now=NOW - timedelta(seconds=120))
