"""Web API: Bearer authentication, GET /v1/me in both app modes, mode/scope dependencies."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, Query

from spotify_simulator import Mode, SimulatorConfig, create_app
from spotify_simulator.auth import AuthContext, require_scopes
from spotify_simulator.modes import closed_in_development, strip_dev_fields

PRIVATE_ONLY = {"country", "email", "product", "followers", "explicit_content"}


async def test_me_extended_mode_has_every_field(sim) -> None:
    tokens = await sim.login_public()
    response = await sim.me(tokens["access_token"])
    assert response.status_code == 200
    me = response.json()
    assert me == {
        "id": "sim_alice",
        "display_name": "Alice Example",
        "type": "user",
        "uri": "spotify:user:sim_alice",
        "href": "http://127.0.0.1:8090/v1/users/sim_alice",
        "external_urls": {"spotify": "https://open.spotify.com/user/sim_alice"},
        "images": me["images"],
        "account_id": me["account_id"],
        "country": "SE",
        "email": "alice@example.com",
        "product": "premium",
        "followers": {"href": None, "total": 12},
        "explicit_content": {"filter_enabled": False, "filter_locked": False},
    }
    assert len(me["account_id"]) == 10
    assert me["images"] and all(
        i["url"].startswith("https://i.scdn.co/image/") for i in me["images"]
    )


async def test_me_development_mode_drops_private_fields(sim, client) -> None:
    tokens = await sim.login_public()
    switched = await client.put("/_sim/mode", json={"mode": "development"})
    assert switched.json() == {"mode": "development"}
    me = (await sim.me(tokens["access_token"])).json()
    assert PRIVATE_ONLY.isdisjoint(me)
    assert me["id"] == "sim_alice"
    assert me["display_name"] == "Alice Example"
    assert me["account_id"]  # the stable linking field survives
    # And back again.
    await client.put("/_sim/mode", json={"mode": "extended"})
    assert set((await sim.me(tokens["access_token"])).json()) >= PRIVATE_ONLY


async def test_development_mode_from_config() -> None:
    app = create_app(SimulatorConfig(mode="development"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        token = (await client.post("/_sim/tokens", json={"user_id": "demo_user"})).json()
        me = (
            await client.get("/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"})
        ).json()
        mode = (await client.get("/_sim/mode")).json()
    assert mode == {"mode": "development"}
    assert me["display_name"] == "Demo User"
    assert PRIVATE_ONLY.isdisjoint(me)


async def test_me_fields_follow_scopes(sim) -> None:
    only_email = await sim.login_public(scope="user-read-email")
    me = (await sim.me(only_email["access_token"])).json()
    assert me["email"] == "alice@example.com"
    assert "country" not in me and "product" not in me and "explicit_content" not in me
    no_scopes = await sim.login_public(scope="")
    me = (await sim.me(no_scopes["access_token"])).json()
    assert "email" not in me and "product" not in me
    assert me["id"] == "sim_alice"


async def test_seeded_users_are_deterministic(client) -> None:
    first = (await client.get("/_sim/users")).json()["users"]
    again = (await client.get("/_sim/users")).json()["users"]
    other_app = create_app(SimulatorConfig())
    transport = httpx.ASGITransport(app=other_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8090") as c2:
        fresh = (await c2.get("/_sim/users")).json()["users"]
    assert first == again == fresh
    by_id = {u["id"]: u for u in first}
    assert list(by_id)[:3] == ["sim_alice", "sim_bob", "demo_user"]
    assert by_id["sim_alice"]["product"] == "premium"
    assert by_id["sim_bob"]["product"] == "free"
    assert by_id["sim_bob"]["display_name"] == "Bob Example"
    assert by_id["sim_bob"]["images"] == []
    assert by_id["demo_user"]["display_name"] == "Demo User"


# --- 400/401 variants ---------------------------------------------------------------------


async def test_no_token_provided(client) -> None:
    response = await client.get("/v1/me")
    assert response.status_code == 401
    assert response.json() == {"error": {"status": 401, "message": "No token provided"}}
    assert response.headers["www-authenticate"].startswith('Bearer realm="spotify"')


async def test_invalid_access_token(client) -> None:
    response = await client.get("/v1/me", headers={"Authorization": "Bearer BQnot-a-token"})
    assert response.status_code == 401
    assert response.json() == {"error": {"status": 401, "message": "Invalid access token"}}


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer a b", "Token BQxyz", "BQxyz"])
async def test_malformed_authorization_header(client, header: str) -> None:
    response = await client.get("/v1/me", headers={"Authorization": header})
    assert response.status_code == 400
    assert response.json() == {
        "error": {"status": 400, "message": "Only valid bearer authentication supported"}
    }


async def test_access_token_expires_with_time(sim, client) -> None:
    tokens = await sim.login_public()
    await client.post("/_sim/clock", json={"advance_s": 3599})
    assert (await sim.me(tokens["access_token"])).status_code == 200
    await client.post("/_sim/clock", json={"advance_s": 2})
    response = await sim.me(tokens["access_token"])
    assert response.status_code == 401
    assert response.json() == {"error": {"status": 401, "message": "The access token expired"}}
    # The refresh flow recovers, as a real client would.
    refreshed = await sim.token(
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": sim.CLIENT_ID,
        }
    )
    assert (await sim.me(refreshed.json()["access_token"])).status_code == 200


async def test_unknown_api_path_has_spotify_404_body(sim) -> None:
    tokens = await sim.login_public()
    response = await sim.client.get("/v1/nothing-here", headers=sim.bearer(tokens["access_token"]))
    assert response.status_code == 404
    assert response.json() == {"error": {"status": 404, "message": "Service not found"}}


# --- extension points for later endpoints -------------------------------------------------


def _app_with_probe_routes(mode: str = "extended"):
    """An app with extra routes built the way later issues add endpoints.

    They live under `/v1/probe` so that the real routers (which now serve audio features
    and top items) do not shadow them.
    """
    app = create_app(SimulatorConfig(mode=mode))
    probe = APIRouter(prefix="/v1/probe")

    @probe.get("/audio-features", dependencies=[Depends(closed_in_development(403, None))])
    async def audio_features() -> dict:
        return {"audio_features": []}

    @probe.get("/recommendations", dependencies=[Depends(closed_in_development(404))])
    async def recommendations() -> dict:
        return {"tracks": []}

    @probe.get("/browse/new-releases", dependencies=[Depends(closed_in_development())])
    async def new_releases(limit: Annotated[int, Query(ge=1, le=50)] = 20) -> dict:
        return {"limit": limit}

    @probe.get("/me/top/tracks")
    async def top(
        ctx: Annotated[AuthContext, Depends(require_scopes("user-top-read"))],
    ) -> dict:
        return {"user": ctx.user.id}

    app.include_router(probe)
    return app


async def test_closed_in_development_dependency() -> None:
    app = _app_with_probe_routes()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        token = (await client.post("/_sim/tokens", json={"user_id": "sim_alice"})).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        assert (await client.get("/v1/probe/audio-features", headers=auth)).status_code == 200
        assert (await client.get("/v1/probe/recommendations", headers=auth)).status_code == 200
        await client.put("/_sim/mode", json={"mode": "development"})
        af = await client.get("/v1/probe/audio-features", headers=auth)
        rec = await client.get("/v1/probe/recommendations", headers=auth)
        nr = await client.get("/v1/probe/browse/new-releases", headers=auth)
        # Authentication still comes first: 401 beats the dev-mode 403.
        anon = await client.get("/v1/probe/audio-features")
    assert af.status_code == 403
    assert af.json() == {"error": {"status": 403}}
    assert rec.status_code == 404
    assert rec.json() == {"error": {"status": 404, "message": "Service not found"}}
    assert nr.json() == {"error": {"status": 403, "message": "Forbidden"}}
    assert anon.status_code == 401


async def test_require_scopes_and_query_validation() -> None:
    app = _app_with_probe_routes()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        narrow = (
            await client.post(
                "/_sim/tokens", json={"user_id": "sim_bob", "scope": "user-read-email"}
            )
        ).json()
        wide = (await client.post("/_sim/tokens", json={"user_id": "sim_bob"})).json()
        denied = await client.get(
            "/v1/probe/me/top/tracks", headers={"Authorization": f"Bearer {narrow['access_token']}"}
        )
        allowed = await client.get(
            "/v1/probe/me/top/tracks", headers={"Authorization": f"Bearer {wide['access_token']}"}
        )
        bad_limit = await client.get(
            "/v1/probe/browse/new-releases?limit=99",
            headers={"Authorization": f"Bearer {wide['access_token']}"},
        )
    assert denied.status_code == 403
    assert denied.json() == {"error": {"status": 403, "message": "Insufficient client scope"}}
    assert allowed.json() == {"user": "sim_bob"}
    assert bad_limit.status_code == 400
    assert bad_limit.json() == {"error": {"status": 400, "message": "Invalid limit"}}


def test_strip_dev_fields_per_kind() -> None:
    track = {"id": "t", "popularity": 50, "available_markets": ["SE"], "name": "x"}
    assert strip_dev_fields("track", track, Mode.DEVELOPMENT) == {"id": "t", "name": "x"}
    assert strip_dev_fields("track", track, Mode.EXTENDED) is track
    artist = {"id": "a", "followers": {"total": 1}, "popularity": 3, "genres": ["pop"]}
    assert strip_dev_fields("artist", artist, Mode.DEVELOPMENT) == {"id": "a", "genres": ["pop"]}
