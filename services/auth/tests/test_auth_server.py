"""The real auth gRPC server on real Redis, FerretDB and the Spotify simulator.

Each test signs in a simulated Spotify user of its own, so tests share the server and
the simulator without sharing users. Spotify traffic is counted from the simulator's
request log (POST /api/token is every code exchange and every refresh). The `simulator`
fixture (conftest.py) is typed `Any` here: test modules cannot import conftest under
--import-mode=importlib.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from bson import ObjectId

from auth_service.server import open_server
from auth_service.settings import AuthSettings
from echostats.auth.v1 import auth_service_pb2 as pb
from echostats.auth.v1 import auth_service_pb2_grpc as pb_grpc
from echostats_devstack.pytest_plugin import RedisServer
from echostats_grpc.client import create_channel, error_reason

RPC_TIMEOUT = 15.0


@dataclass
class AuthServer:
    """A running auth server and a stub on a channel to it."""

    settings: AuthSettings
    port: int
    stub: pb_grpc.AuthServiceStub


@contextlib.asynccontextmanager
async def serve(settings: AuthSettings) -> AsyncIterator[AuthServer]:
    """Run the real auth server (port 0) for the block, with a channel to it."""
    async with open_server(settings, port=0) as built:
        await built.start()
        channel = create_channel(f"127.0.0.1:{built.port}", default_timeout=RPC_TIMEOUT)
        try:
            yield AuthServer(settings, built.port, pb_grpc.AuthServiceStub(channel))
        finally:
            await channel.close()
            await built.stop(grace=1.0)


@pytest.fixture(scope="module")
def sim_settings(auth_settings: AuthSettings, simulator: Any) -> AuthSettings:
    """The module's settings, with Spotify pointed at the simulator."""
    return auth_settings.model_copy(
        update={"spotify_accounts_url": simulator.url, "spotify_api_url": simulator.url}
    )


@pytest.fixture(scope="module")
async def auth(sim_settings: AuthSettings) -> AsyncIterator[AuthServer]:
    """The auth server under test, one per module."""
    async with serve(sim_settings) as server:
        yield server


async def sign_in(auth: AuthServer, simulator: Any, sim_user: str) -> pb.CompleteLoginResponse:
    """StartLogin → the simulator's /authorize → CompleteLogin, as the gateway drives it."""
    start = await auth.stub.StartLogin(pb.StartLoginRequest())
    callback = await simulator.authorize(start.authorize_url, sim_user=sim_user)
    assert callback["state"] == start.state
    return await auth.stub.CompleteLogin(
        pb.CompleteLoginRequest(
            code=callback["code"], state=start.state, browser_binding=start.browser_binding
        )
    )


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """Await a call that must fail and return its error."""
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    return failed.value


def user_request(user_id: str, *, force_refresh: bool = False) -> pb.GetAccessTokenRequest:
    """A GetAccessToken request."""
    return pb.GetAccessTokenRequest(user_id=user_id, force_refresh=force_refresh)


# -- login ----------------------------------------------------------------------------------


async def test_full_login_then_authenticate_session(auth: AuthServer, simulator: Any) -> None:
    sim_user = await simulator.add_user(display_name="Login Tester", product="premium")
    exchanges_before = await simulator.token_requests()

    start = await auth.stub.StartLogin(pb.StartLoginRequest())
    authorize = simulator.url + "/authorize?"
    assert start.authorize_url.startswith(authorize)
    assert start.state_ttl_seconds == 600
    assert start.browser_binding and start.browser_binding != start.state
    callback = await simulator.authorize(start.authorize_url, sim_user=sim_user)
    assert callback["state"] == start.state
    completed = await auth.stub.CompleteLogin(
        pb.CompleteLoginRequest(
            code=callback["code"], state=start.state, browser_binding=start.browser_binding
        )
    )

    assert completed.created is True
    assert completed.user.spotify_id == sim_user
    assert completed.user.display_name == "Login Tester"
    assert completed.user.product == "premium"
    assert completed.user.reauth_required is False
    assert ObjectId.is_valid(completed.user.id)
    assert completed.session.token
    session_expiry = completed.session.expires_at.ToDatetime(tzinfo=UTC)
    expected_expiry = datetime.now(UTC) + timedelta(seconds=auth.settings.session_ttl_seconds)
    assert abs(session_expiry - expected_expiry) < timedelta(minutes=1)
    # One code exchange at Spotify, nothing more.
    assert await simulator.token_requests() == exchanges_before + 1

    authenticated = await auth.stub.AuthenticateSession(
        pb.AuthenticateSessionRequest(token=completed.session.token)
    )
    assert authenticated.user == completed.user
    assert authenticated.session_id
    token_expiry = authenticated.token_expires_at.ToDatetime(tzinfo=UTC)
    assert datetime.now(UTC) + timedelta(minutes=50) < token_expiry
    assert token_expiry <= datetime.now(UTC) + timedelta(hours=1)

    # A second sign-in of the same Spotify account finds the same user.
    again = await sign_in(auth, simulator, sim_user)
    assert again.created is False
    assert again.user.id == completed.user.id
    assert again.session.token != completed.session.token


async def test_authorize_url_asks_for_pkce_and_every_needed_scope(auth: AuthServer) -> None:
    start = await auth.stub.StartLogin(pb.StartLoginRequest())
    query = {k: v[0] for k, v in parse_qs(urlsplit(start.authorize_url).query).items()}

    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert query["state"] == start.state
    needed = {"user-modify-playback-state", "user-follow-read", "user-read-recently-played"}
    assert needed <= set(query["scope"].split())


async def test_a_login_state_works_once_and_only_for_its_browser(
    auth: AuthServer, simulator: Any
) -> None:
    sim_user = await simulator.add_user()
    start = await auth.stub.StartLogin(pb.StartLoginRequest())
    callback = await simulator.authorize(start.authorize_url, sim_user=sim_user)

    wrong_browser = await rpc_error(
        auth.stub.CompleteLogin(
            pb.CompleteLoginRequest(
                code=callback["code"], state=start.state, browser_binding="another-browser"
            )
        )
    )
    # The failed attempt spent the state: not even the right browser can use it now.
    replay = await rpc_error(
        auth.stub.CompleteLogin(
            pb.CompleteLoginRequest(
                code=callback["code"], state=start.state, browser_binding=start.browser_binding
            )
        )
    )

    assert wrong_browser.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(wrong_browser) == "STATE_BINDING_MISMATCH"
    assert replay.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(replay) == "INVALID_STATE"


async def test_a_code_spotify_refuses_is_an_invalid_argument(
    auth: AuthServer, simulator: Any
) -> None:
    start = await auth.stub.StartLogin(pb.StartLoginRequest())

    refused = await rpc_error(
        auth.stub.CompleteLogin(
            pb.CompleteLoginRequest(
                code="a-code-spotify-never-issued",
                state=start.state,
                browser_binding=start.browser_binding,
            )
        )
    )

    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused) == "INVALID_CODE"


async def test_logout_ends_the_session(auth: AuthServer, simulator: Any) -> None:
    session = (await sign_in(auth, simulator, await simulator.add_user())).session

    first = await auth.stub.RevokeSession(pb.RevokeSessionRequest(token=session.token))
    second = await auth.stub.RevokeSession(pb.RevokeSessionRequest(token=session.token))
    ended = await rpc_error(
        auth.stub.AuthenticateSession(pb.AuthenticateSessionRequest(token=session.token))
    )

    assert first.revoked is True
    assert second.revoked is False
    assert ended.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(ended) == "SESSION_ENDED"


async def test_login_during_a_redis_outage_is_unavailable_then_recovers(
    auth: AuthServer, redis_server: RedisServer
) -> None:
    redis_server.stop()
    try:
        down = await rpc_error(auth.stub.StartLogin(pb.StartLoginRequest()))
    finally:
        # Shared by the whole session: bring it back whatever happened.
        redis_server.start()

    assert down.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(down) == "CACHE_UNAVAILABLE"
    # The service's client reconnects by itself once Redis is back.
    start = await auth.stub.StartLogin(pb.StartLoginRequest())
    assert start.state


async def test_dev_mode_app_signs_in_without_product(auth: AuthServer, simulator: Any) -> None:
    sim_user = await simulator.add_user(product="free")
    await simulator.http.put("/_sim/mode", json={"mode": "development"})
    try:
        completed = await sign_in(auth, simulator, sim_user)
    finally:
        await simulator.http.put("/_sim/mode", json={"mode": "extended"})

    # /v1/me of a Development Mode app has no product: the user has none, not a guess.
    assert completed.user.spotify_id == sim_user
    assert not completed.user.HasField("product")


# -- access tokens --------------------------------------------------------------------------


async def test_fresh_access_token_is_served_without_calling_spotify(
    auth: AuthServer, simulator: Any
) -> None:
    sim_user = await simulator.add_user()
    user = (await sign_in(auth, simulator, sim_user)).user
    calls_before = await simulator.token_requests()

    first = await auth.stub.GetAccessToken(user_request(user.id))
    second = await auth.stub.GetAccessToken(user_request(user.id))

    assert first.access_token == second.access_token
    assert first.expires_at == second.expires_at
    assert await simulator.token_requests() == calls_before
    # It is the token Spotify granted for this user, and it works.
    me = await simulator.me(first.access_token)
    assert me.status_code == 200 and me.json()["id"] == sim_user


async def test_stale_access_token_is_refreshed(
    sim_settings: AuthSettings, auth: AuthServer, simulator: Any
) -> None:
    sim_user = await simulator.add_user()
    user = (await sign_in(auth, simulator, sim_user)).user
    stored = await auth.stub.GetAccessToken(user_request(user.id))
    # A replica whose refresh margin exceeds the token's lifetime sees every token as stale.
    eager = sim_settings.model_copy(update={"access_token_refresh_margin_seconds": 7200})
    calls_before = await simulator.token_requests()

    async with serve(eager) as eager_auth:
        refreshed = await eager_auth.stub.GetAccessToken(user_request(user.id))

    assert await simulator.token_requests() == calls_before + 1
    assert refreshed.access_token != stored.access_token
    # The new token is stored: the ordinary replica now hands it out without refreshing.
    assert (await auth.stub.GetAccessToken(user_request(user.id))).access_token == (
        refreshed.access_token
    )
    assert await simulator.token_requests() == calls_before + 1


async def test_concurrent_forced_refreshes_refresh_once(auth: AuthServer, simulator: Any) -> None:
    sim_user = await simulator.add_user()
    user = (await sign_in(auth, simulator, sim_user)).user
    old = await auth.stub.GetAccessToken(user_request(user.id))
    calls_before = await simulator.token_requests()

    responses = await asyncio.gather(
        *(auth.stub.GetAccessToken(user_request(user.id, force_refresh=True)) for _ in range(8))
    )

    tokens = {response.access_token for response in responses}
    assert await simulator.token_requests() == calls_before + 1
    assert len(tokens) == 1
    (new_token,) = tokens
    assert new_token != old.access_token
    assert (await simulator.me(new_token)).status_code == 200
    # The refresh was stored: a plain call afterwards gets the same token.
    assert (await auth.stub.GetAccessToken(user_request(user.id))).access_token == new_token


async def test_revoked_refresh_token_requires_a_new_sign_in(
    auth: AuthServer, simulator: Any
) -> None:
    sim_user = await simulator.add_user()
    signed_in = await sign_in(auth, simulator, sim_user)
    user_id = signed_in.user.id
    second_session = (await sign_in(auth, simulator, sim_user)).session
    assert await simulator.revoke_refresh_tokens(sim_user) >= 1

    refused = await rpc_error(auth.stub.GetAccessToken(user_request(user_id, force_refresh=True)))

    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused) == "REAUTH_REQUIRED"
    user = (await auth.stub.GetUser(pb.GetUserRequest(user_id=user_id))).user
    assert user.reauth_required is True
    # Every session of the user ended, not only one.
    for session in (signed_in.session, second_session):
        ended = await rpc_error(
            auth.stub.AuthenticateSession(pb.AuthenticateSessionRequest(token=session.token))
        )
        assert ended.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_reason(ended) == "SESSION_ENDED"
    # From now on the answer comes without asking Spotify again.
    calls_before = await simulator.token_requests()
    still_refused = await rpc_error(auth.stub.GetAccessToken(user_request(user_id)))
    assert error_reason(still_refused) == "REAUTH_REQUIRED"
    assert await simulator.token_requests() == calls_before

    # Signing in again clears the flag and tokens flow again.
    again = await sign_in(auth, simulator, sim_user)
    assert again.user.id == user_id and again.user.reauth_required is False
    token = await auth.stub.GetAccessToken(user_request(user_id))
    assert (await simulator.me(token.access_token)).status_code == 200


# -- dev-login and users --------------------------------------------------------------------


async def test_dev_login_is_not_found_when_not_allowed(sim_settings: AuthSettings) -> None:
    disabled = sim_settings.model_copy(update={"dev_login_enabled": False})
    assert disabled.dev_login_allowed is False

    async with serve(disabled) as closed:
        refused = await rpc_error(closed.stub.DevLogin(pb.DevLoginRequest()))

    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(refused) == "DEV_LOGIN_DISABLED"


async def test_dev_login_signs_in_the_demo_user_when_allowed(auth: AuthServer) -> None:
    assert auth.settings.dev_login_allowed is True

    signed_in = await auth.stub.DevLogin(pb.DevLoginRequest())
    authenticated = await auth.stub.AuthenticateSession(
        pb.AuthenticateSessionRequest(token=signed_in.session.token)
    )

    assert signed_in.user.spotify_id == "demo_user"
    assert authenticated.user.id == signed_in.user.id
    # The demo user never linked Spotify: no token expiry to report.
    assert not authenticated.HasField("token_expires_at")


@pytest.mark.parametrize(
    "user_id", [str(ObjectId()), "not-an-object-id", "0" * 23, "'; db.users.drop(); '"]
)
async def test_get_user_for_unknown_or_malformed_id_is_not_found(
    auth: AuthServer, user_id: str
) -> None:
    missing = await rpc_error(auth.stub.GetUser(pb.GetUserRequest(user_id=user_id)))

    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(missing) == "USER_NOT_FOUND"


async def test_get_user_returns_a_signed_in_user(auth: AuthServer, simulator: Any) -> None:
    sim_user = await simulator.add_user(display_name="Gina Getter")
    signed_in = await sign_in(auth, simulator, sim_user)

    found = await auth.stub.GetUser(pb.GetUserRequest(user_id=signed_in.user.id))

    assert found.user == signed_in.user
    assert found.user.display_name == "Gina Getter"


async def test_late_callers_naming_the_refused_token_share_one_refresh(
    auth: AuthServer, simulator: Any
) -> None:
    # Workers that got a 401 on the same token at different moments name that token; only
    # the first one causes a refresh, the others get the token it stored.
    sim_user = await simulator.add_user()
    user = (await sign_in(auth, simulator, sim_user)).user
    refused = (await auth.stub.GetAccessToken(user_request(user.id))).access_token
    calls_before = await simulator.token_requests()

    tokens = []
    for _ in range(5):
        response = await auth.stub.GetAccessToken(
            pb.GetAccessTokenRequest(
                user_id=user.id, force_refresh=True, rejected_access_token=refused
            )
        )
        tokens.append(response.access_token)
        await asyncio.sleep(0.05)

    assert await simulator.token_requests() == calls_before + 1
    assert len(set(tokens)) == 1 and tokens[0] != refused
    # Naming the new token as refused does refresh again.
    again = await auth.stub.GetAccessToken(
        pb.GetAccessTokenRequest(
            user_id=user.id, force_refresh=True, rejected_access_token=tokens[0]
        )
    )
    assert again.access_token not in (refused, tokens[0])
    assert await simulator.token_requests() == calls_before + 2
