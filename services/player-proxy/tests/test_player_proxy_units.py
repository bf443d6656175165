"""Units: followed-artist cursor paging, auth errors as domain errors, refusal table."""

from __future__ import annotations

import grpc
import httpx
import pytest

from echostats_grpc.status import REASON_METADATA_KEY
from echostats_platform.errors import Unauthenticated, Unavailable
from echostats_platform.settings import SpotifySettings
from echostats_spotify.client import SpotifyClient
from echostats_spotify.errors import SpotifyNotFound, SpotifyPermissionDenied
from echostats_spotify.recording import LoggingRecorder
from player_proxy_service.errors import (
    NoActiveDevice,
    PlayerPermissionDenied,
    PlayerRefused,
    player_error,
)
from player_proxy_service.spotify_calls import SpotifyPlayerCalls
from player_proxy_service.tokens import AuthTokens

API = "http://spotify.test"


class StaticTokens:
    async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
        return "token"


async def test_followed_artists_follow_the_cursor_when_spotify_sends_short_pages() -> None:
    artists = [{"id": f"a{n:03d}", "name": f"Artist {n}"} for n in range(120)]
    asked: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append(params)
        start = 0
        if "after" in params:
            start = next(i for i, a in enumerate(artists) if a["id"] == params["after"]) + 1
        # Spotify may hand out fewer items than asked: at most 20 here.
        page = artists[start : start + min(20, int(params["limit"]))]
        more = start + len(page) < len(artists)
        return httpx.Response(
            200,
            json={
                "artists": {
                    "items": page,
                    "limit": int(params["limit"]),
                    "next": f"{API}/v1/me/following?after={page[-1]['id']}" if more else None,
                    "cursors": {"after": page[-1]["id"] if more else None},
                    "total": len(artists),
                }
            },
        )

    settings = SpotifySettings(spotify_api_url=API)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = SpotifyClient(settings, http, LoggingRecorder(), StaticTokens(), caller="test")
        items, total = await SpotifyPlayerCalls(api).followed_artists("u", limit=50, max_pages=10)
    assert [a["id"] for a in items] == [a["id"] for a in artists[:50]]
    assert total == 120
    assert [p.get("after") for p in asked] == [None, "a019", "a039"]
    assert [p["limit"] for p in asked] == ["50", "30", "10"]


def _rpc_error(code: grpc.StatusCode, reason: str | None = None) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata((REASON_METADATA_KEY, reason)) if reason else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details="from auth")


class FailingProvider:
    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.error = error

    async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
        raise self.error


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
        (grpc.StatusCode.NOT_FOUND, Unauthenticated),
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, Unavailable),
    ],
)
async def test_auth_refusals_become_domain_errors(code, expected) -> None:
    tokens = AuthTokens(FailingProvider(_rpc_error(code, "REAUTH_REQUIRED")))  # type: ignore[arg-type]
    with pytest.raises(expected):
        await tokens.get_token("u")


async def test_unexpected_auth_errors_propagate() -> None:
    tokens = AuthTokens(FailingProvider(_rpc_error(grpc.StatusCode.INTERNAL)))  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError):
        await tokens.get_token("u")


def _spotify(cls: type, status: int, reason: str | None):
    return cls(
        "Player command failed: x",
        status_code=status,
        method="PUT",
        endpoint="/v1/me/player/play",
        spotify_reason=reason,
        reason=reason,
    )


def test_refusal_table() -> None:
    assert isinstance(
        player_error(_spotify(SpotifyNotFound, 404, "NO_ACTIVE_DEVICE")), NoActiveDevice
    )
    premium = player_error(_spotify(SpotifyPermissionDenied, 403, "PREMIUM_REQUIRED"))
    assert isinstance(premium, PlayerPermissionDenied) and premium.reason == "PREMIUM_REQUIRED"
    refused = player_error(_spotify(SpotifyPermissionDenied, 403, "ALREADY_PAUSED"))
    assert isinstance(refused, PlayerRefused) and refused.status == "FAILED_PRECONDITION"
    assert refused.message == "Player command failed: x (ALREADY_PAUSED)"
    plain = _spotify(SpotifyNotFound, 404, None)
    assert player_error(plain) is plain
