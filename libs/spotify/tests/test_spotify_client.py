"""SpotifyClient against a fake Spotify peer: retries, 429, refresh, bodies, errors, records."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC

import httpx
import pytest

from echostats_platform.context import deadline_var, request_id_var
from echostats_platform.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    UpstreamError,
)
from echostats_spotify import (
    Capability,
    CapabilityRegistry,
    InMemoryCapabilityStore,
    Priority,
    PriorityGate,
    RateLimited,
    SpotifyBadRequest,
    SpotifyNotFound,
    SpotifyPermissionDenied,
    SpotifyUnauthorized,
    SpotifyUpstreamError,
)

ME = {"id": "user123", "display_name": "Ada"}
HTML_503 = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"


def json_response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def spotify_error(status: int, message: str | None = None, reason: str | None = None) -> dict:
    error: dict[str, object] = {"status": status}
    if message is not None:
        error["message"] = message
    if reason is not None:
        error["reason"] = reason
    return {"error": error}


def sequence(*responses: httpx.Response | Exception):
    """A handler answering the given responses (or raising the given errors) in turn."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


# --- 5xx and network errors ------------------------------------------------------------


async def test_5xx_is_retried_with_backoff_then_succeeds(make_client):
    h = make_client(
        sequence(
            httpx.Response(503, text=HTML_503, headers={"content-type": "text/html"}),
            httpx.Response(502, text=""),
            json_response(200, ME),
        )
    )

    response = await h.client.request("GET", "/v1/me", user_id="u1")

    assert response.status == 200
    assert response.json == ME
    assert h.recorder.statuses == [503, 502, 200]
    assert [r.attempt for r in h.recorder.records] == [1, 2, 3]
    # Exponential backoff: 0.01 * 2**(n-1), jitter turned off for the test.
    assert h.sleep.slept == pytest.approx([0.01, 0.02])
    assert h.recorder.records[0].error is not None
    assert h.recorder.records[0].error.startswith("HTTP 503")
    assert h.recorder.records[2].error is None


async def test_5xx_exhaustion_raises_upstream_error(make_client):
    h = make_client(sequence(httpx.Response(500, text=HTML_503)))

    with pytest.raises(SpotifyUpstreamError) as caught:
        await h.client.request("GET", "/v1/me/player/recently-played", user_id="u1")

    assert isinstance(caught.value, UpstreamError)
    assert caught.value.status_code == 500
    assert caught.value.reason == "UPSTREAM_ERROR"
    # One attempt plus spotify_max_retries (3) retries, each recorded.
    assert h.recorder.statuses == [500, 500, 500, 500]
    assert len(h.sleep.slept) == 3


async def test_post_is_not_replayed_after_a_5xx(make_client):
    h = make_client(sequence(httpx.Response(503), httpx.Response(204)))

    with pytest.raises(SpotifyUpstreamError):
        await h.client.request("POST", "/v1/me/player/next", user_id="u1")

    assert h.recorder.statuses == [503]
    assert h.sleep.slept == []


async def test_post_is_retried_when_the_connection_never_opened(make_client):
    h = make_client(sequence(httpx.ConnectError("connection refused"), httpx.Response(204)))

    response = await h.client.request("POST", "/v1/me/player/next", user_id="u1")

    assert response.status == 204
    assert h.recorder.statuses == [0, 204]


async def test_network_error_is_recorded_with_status_zero(make_client):
    h = make_client(sequence(httpx.ConnectError("connection refused")))

    with pytest.raises(SpotifyUpstreamError) as caught:
        await h.client.request("GET", "/v1/me", user_id="u1")

    assert caught.value.status_code == 0
    assert "ConnectError" in caught.value.message
    assert h.recorder.statuses == [0, 0, 0, 0]
    assert all(
        r.error is not None and r.error.startswith("ConnectError") for r in h.recorder.records
    )


async def test_read_timeout_is_retried_for_get(make_client):
    h = make_client(sequence(httpx.ReadTimeout("slow"), json_response(200, ME)))

    assert await h.client.get_json("/v1/me", user_id="u1") == ME
    assert h.recorder.statuses == [0, 200]
    assert h.recorder.records[0].error == "ReadTimeout: slow"


# --- 429 ----------------------------------------------------------------------------------


async def test_short_retry_after_is_slept_then_retried(make_client):
    h = make_client(
        sequence(
            json_response(
                429, spotify_error(429, "API rate limit exceeded"), **{"Retry-After": "3"}
            ),
            json_response(200, ME),
        ),
        rate_limit_jitter=0.5,
    )

    assert await h.client.get_json("/v1/me", user_id="u1") == ME

    assert len(h.sleep.slept) == 1
    assert 3.0 <= h.sleep.slept[0] <= 3.5
    assert h.recorder.statuses == [429, 200]


async def test_missing_retry_after_means_one_second(make_client):
    h = make_client(sequence(httpx.Response(429, text="Too many requests"), json_response(200, ME)))

    await h.client.get_json("/v1/me", user_id="u1")

    assert h.sleep.slept == [1.0]


async def test_long_retry_after_raises_rate_limited_without_sleeping(make_client):
    h = make_client(
        sequence(json_response(429, spotify_error(429, "Too many"), **{"Retry-After": "19056"}))
    )

    with pytest.raises(RateLimited) as caught:
        await h.client.get_json("/v1/me/top/tracks", user_id="u1", priority=Priority.BACKGROUND)

    error = caught.value
    assert isinstance(error, ResourceExhausted)
    assert error.retry_after == 19056
    assert error.quota_exceeded is False
    assert error.reason == "RATE_LIMITED"
    assert error.status_code == 429
    assert h.sleep.slept == []
    assert h.recorder.statuses == [429]


async def test_quota_exceeded_raises_at_once_even_with_a_short_retry_after(make_client):
    body = spotify_error(429, "Too many requests", reason="QUOTA_EXCEEDED")
    h = make_client(sequence(json_response(429, body, **{"Retry-After": "5"})))

    with pytest.raises(RateLimited) as caught:
        await h.client.get_json("/v1/me", user_id="u1", priority=Priority.BACKGROUND)

    assert caught.value.quota_exceeded is True
    assert caught.value.reason == "QUOTA_EXCEEDED"
    assert caught.value.retry_after == 5
    assert h.sleep.slept == []
    assert len(h.requests) == 1


async def test_repeated_short_429s_are_bounded(make_client):
    h = make_client(sequence(json_response(429, spotify_error(429), **{"Retry-After": "2"})))

    with pytest.raises(RateLimited) as caught:
        await h.client.get_json("/v1/me", user_id="u1")

    assert caught.value.retry_after == 2
    assert h.sleep.slept == [2.0, 2.0, 2.0]
    assert len(h.requests) == 4


async def test_background_calls_pause_after_a_long_rate_limit(make_client):
    h = make_client(
        sequence(
            json_response(429, spotify_error(429), **{"Retry-After": "600"}),
            json_response(200, ME),
        )
    )
    with pytest.raises(RateLimited):
        await h.client.get_json("/v1/me", user_id="u1", priority=Priority.BACKGROUND)

    # Background work is refused without another call to Spotify...
    with pytest.raises(RateLimited) as caught:
        await h.client.get_json("/v1/me", user_id="u2", priority=Priority.BACKGROUND)
    assert 599 <= caught.value.retry_after <= 600
    assert len(h.requests) == 1
    assert h.client.background_paused_for > 590

    # ...while a user waiting on a page still gets Spotify's real answer.
    assert await h.client.get_json("/v1/me", user_id="u3") == ME
    assert len(h.requests) == 2


# --- 401 and token refresh --------------------------------------------------------------


async def test_401_forces_exactly_one_refresh_then_succeeds(make_client):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer token-0":
            return json_response(401, spotify_error(401, "The access token expired"))
        return json_response(200, ME)

    h = make_client(handler)

    assert await h.client.get_json("/v1/me", user_id="u1") == ME

    assert h.tokens.calls == [("u1", False), ("u1", True)]
    assert [r.headers["Authorization"] for r in h.requests] == [
        "Bearer token-0",
        "Bearer token-1",
    ]
    assert h.recorder.statuses == [401, 200]
    assert h.sleep.slept == []


async def test_second_401_raises_unauthenticated(make_client):
    h = make_client(sequence(json_response(401, spotify_error(401, "Invalid access token"))))

    with pytest.raises(SpotifyUnauthorized) as caught:
        await h.client.get_json("/v1/me", user_id="u1")

    assert isinstance(caught.value, Unauthenticated)
    assert caught.value.reason == "SPOTIFY_UNAUTHORIZED"
    assert caught.value.message == "Invalid access token"
    assert h.tokens.forced == 1
    assert h.recorder.statuses == [401, 401]


async def test_401_after_a_retried_5xx_still_refreshes_only_once(make_client):
    h = make_client(
        sequence(
            json_response(401, spotify_error(401)),
            httpx.Response(503),
            json_response(401, spotify_error(401)),
        )
    )

    with pytest.raises(SpotifyUnauthorized):
        await h.client.get_json("/v1/me", user_id="u1")

    assert h.tokens.forced == 1
    assert h.recorder.statuses == [401, 503, 401]


async def test_concurrent_401s_for_one_user_share_one_refresh(make_client):
    release = asyncio.Event()

    class SlowTokens:
        def __init__(self) -> None:
            self.forced = 0

        async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
            if rejected_token is None:
                return "old"
            self.forced += 1
            await release.wait()
            return "new"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer old":
            return json_response(401, spotify_error(401))
        return json_response(200, ME)

    tokens = SlowTokens()
    h = make_client(handler, tokens=tokens)

    calls = [asyncio.create_task(h.client.get_json("/v1/me", user_id="u1")) for _ in range(3)]
    await asyncio.sleep(0.05)
    release.set()

    assert await asyncio.gather(*calls) == [ME, ME, ME]
    assert tokens.forced == 1


# --- bodies ------------------------------------------------------------------------------


async def test_204_gives_no_json_and_empty_text(make_client):
    h = make_client(sequence(httpx.Response(204)))

    response = await h.client.request("GET", "/v1/me/player", user_id="u1")

    assert response.status == 204
    assert response.json is None
    assert response.text == ""


async def test_opaque_text_200_from_player_command_is_kept_as_text(make_client):
    token = "oPClBVDzidwlAlSqmFF-zKNO62E"
    h = make_client(
        sequence(httpx.Response(200, text=token, headers={"content-type": "application/json"}))
    )

    response = await h.client.request(
        "PUT", "/v1/me/player/play", user_id="u1", json={"uris": ["spotify:track:1"]}
    )

    assert response.status == 200
    assert response.json is None
    assert response.text == token
    assert h.requests[0].read() == b'{"uris":["spotify:track:1"]}'


# --- error table ----------------------------------------------------------------------------


async def test_403_keeps_spotify_reason_and_message(make_client):
    body = spotify_error(403, "Player command failed: Premium required", "PREMIUM_REQUIRED")
    h = make_client(sequence(json_response(403, body)))

    with pytest.raises(SpotifyPermissionDenied) as caught:
        await h.client.request("PUT", "/v1/me/player/pause", user_id="u1")

    error = caught.value
    assert isinstance(error, PermissionDenied)
    assert error.reason == "PREMIUM_REQUIRED"
    assert error.spotify_reason == "PREMIUM_REQUIRED"
    assert error.message == "Player command failed: Premium required"
    assert error.status_code == 403
    assert error.body == body
    assert error.capability is None
    assert h.sleep.slept == []


async def test_404_no_active_device(make_client):
    body = spotify_error(404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE")
    h = make_client(sequence(json_response(404, body)))

    with pytest.raises(SpotifyNotFound) as caught:
        await h.client.request("POST", "/v1/me/player/next", user_id="u1")

    assert isinstance(caught.value, NotFound)
    assert caught.value.reason == "NO_ACTIVE_DEVICE"


async def test_400_is_invalid_argument(make_client):
    h = make_client(sequence(json_response(400, spotify_error(400, "too many ids requested"))))

    with pytest.raises(SpotifyBadRequest) as caught:
        await h.client.get_json("/v1/artists", user_id="u1", params={"ids": "a,b"})

    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.message == "too many ids requested"
    assert len(h.requests) == 1


async def test_closed_endpoint_is_marked_in_the_capability_registry(make_client):
    registry = CapabilityRegistry(InMemoryCapabilityStore())
    h = make_client(sequence(json_response(403, {"error": {"status": 403}})), capabilities=registry)

    with pytest.raises(SpotifyPermissionDenied) as caught:
        await h.client.get_json(
            "/v1/audio-features", user_id="u1", params={"ids": "a,b"}, priority=Priority.BACKGROUND
        )

    assert caught.value.capability == Capability.AUDIO_FEATURES
    assert await registry.is_closed(Capability.AUDIO_FEATURES)
    assert not await registry.is_closed(Capability.RECOMMENDATIONS)


async def test_user_level_403_does_not_close_an_endpoint(make_client):
    registry = CapabilityRegistry(InMemoryCapabilityStore())
    h = make_client(
        sequence(httpx.Response(403, text="User not registered in the Developer Dashboard")),
        capabilities=registry,
    )

    with pytest.raises(SpotifyPermissionDenied) as caught:
        await h.client.get_json("/v1/audio-features", user_id="u1", params={"ids": "a"})

    assert caught.value.message == "User not registered in the Developer Dashboard"
    assert caught.value.capability is None
    assert not await registry.is_closed(Capability.AUDIO_FEATURES)


async def test_404_on_recommendations_marks_it_closed(make_client):
    registry = CapabilityRegistry(InMemoryCapabilityStore())
    h = make_client(
        sequence(json_response(404, spotify_error(404, "Not Found"))), capabilities=registry
    )

    with pytest.raises(SpotifyNotFound):
        await h.client.get_json("/recommendations", user_id="u1", params={"seed_tracks": "t"})

    assert await registry.is_closed(Capability.RECOMMENDATIONS)


# --- records, paths and timeouts ------------------------------------------------------------


async def test_every_attempt_is_recorded_with_request_id_and_path_only(make_client):
    h = make_client(sequence(httpx.Response(502), json_response(200, {"items": []})))
    token = request_id_var.set("req-42")
    try:
        await h.client.get_json(
            "/me/player/recently-played",
            user_id="u1",
            params={"limit": 50, "before": 1700000000000},
        )
    finally:
        request_id_var.reset(token)

    assert str(h.requests[0].url) == (
        "https://api.spotify.test/v1/me/player/recently-played?limit=50&before=1700000000000"
    )
    assert len(h.recorder.records) == 2
    for rec in h.recorder.records:
        assert rec.service == "spotify"
        assert rec.caller == "ingestion"
        assert rec.method == "GET"
        assert rec.endpoint == "/v1/me/player/recently-played"
        assert rec.request_id == "req-42"
        assert rec.user_id == "u1"
        assert rec.latency_ms >= 0.0
        assert rec.timestamp.tzinfo is UTC
    assert [r.status_code for r in h.recorder.records] == [502, 200]


async def test_a_failing_recorder_never_fails_the_call(make_client):
    class Broken:
        def record(self, rec: object) -> None:
            raise RuntimeError("log pipeline down")

    h = make_client(sequence(json_response(200, ME)), recorder=Broken())

    assert await h.client.get_json("/v1/me", user_id="u1") == ME


async def test_paging_url_on_the_api_host_is_followed(make_client):
    h = make_client(sequence(json_response(200, {"items": []})))

    await h.client.get_json(
        "https://api.spotify.test/v1/me/player/recently-played?before=17&limit=50", user_id="u1"
    )

    assert h.requests[0].url.params["before"] == "17"
    assert h.recorder.records[0].endpoint == "/v1/me/player/recently-played"


async def test_url_on_another_host_is_refused_before_sending_the_token(make_client):
    h = make_client(sequence(json_response(200, ME)))

    with pytest.raises(InvalidArgument):
        await h.client.get_json("https://evil.example/v1/me", user_id="u1")

    assert h.requests == []


async def test_timeout_is_the_smaller_of_setting_and_remaining_budget(make_client):
    h = make_client(sequence(json_response(200, ME)), settings={"spotify_timeout_seconds": 7.0})

    await h.client.get_json("/v1/me", user_id="u1")
    assert h.requests[0].extensions["timeout"]["read"] == pytest.approx(7.0)

    token = deadline_var.set(time.monotonic() + 2.0)
    try:
        await h.client.get_json("/v1/me", user_id="u1")
    finally:
        deadline_var.reset(token)
    assert 1.5 < h.requests[1].extensions["timeout"]["read"] <= 2.0


async def test_a_slow_answer_is_cut_at_the_deadline(make_client):
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return json_response(200, ME)

    h = make_client(slow)
    token = deadline_var.set(time.monotonic() + 0.2)
    started = time.monotonic()
    try:
        with pytest.raises(SpotifyUpstreamError):
            await h.client.get_json("/v1/me", user_id="u1")
    finally:
        deadline_var.reset(token)

    assert time.monotonic() - started < 1.5
    assert h.recorder.records[0].status_code == 0
    assert "TimeoutError" in (h.recorder.records[0].error or "")


async def test_no_retry_after_sleep_is_started_past_the_deadline(make_client):
    h = make_client(sequence(json_response(429, spotify_error(429), **{"Retry-After": "3"})))
    token = deadline_var.set(time.monotonic() + 1.0)
    try:
        with pytest.raises(RateLimited) as caught:
            await h.client.get_json("/v1/me", user_id="u1")
    finally:
        deadline_var.reset(token)

    # 3 s is within spotify_max_retry_after_seconds but not within the 1 s budget left.
    assert caught.value.retry_after == 3
    assert h.sleep.slept == []
    assert len(h.requests) == 1


async def test_expired_deadline_sends_nothing(make_client):
    h = make_client(sequence(json_response(200, ME)))
    token = deadline_var.set(time.monotonic() - 1)
    try:
        with pytest.raises(SpotifyUpstreamError) as caught:
            await h.client.get_json("/v1/me", user_id="u1")
    finally:
        deadline_var.reset(token)

    assert caught.value.reason == "DEADLINE_EXCEEDED"
    assert h.requests == []
    assert h.recorder.records == []


# --- priorities -----------------------------------------------------------------------------


async def test_interactive_calls_do_not_queue_behind_background_work(make_client):
    release_background = asyncio.Event()
    in_flight = 0
    peak_background = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak_background
        if request.url.path == "/v1/me/player":
            return json_response(200, {"is_playing": True})
        in_flight += 1
        peak_background = max(peak_background, in_flight)
        await release_background.wait()
        in_flight -= 1
        return json_response(200, {"items": []})

    gate = PriorityGate(background_concurrency=1)
    h = make_client(handler, gate=gate)
    background = [
        asyncio.create_task(
            h.client.get_json("/v1/me/top/tracks", user_id="u1", priority=Priority.BACKGROUND)
        )
        for _ in range(3)
    ]
    await asyncio.sleep(0.05)
    assert gate.background_in_flight == 1

    # The background slot is full and two more are queued, yet the player call answers.
    state = await asyncio.wait_for(h.client.get_json("/v1/me/player", user_id="u2"), timeout=1)
    assert state == {"is_playing": True}

    release_background.set()
    await asyncio.gather(*background)
    assert peak_background == 1


async def test_background_waits_while_an_interactive_call_is_in_flight(make_client):
    release_interactive = asyncio.Event()
    order: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/me/player":
            order.append("interactive-start")
            await release_interactive.wait()
            order.append("interactive-end")
        else:
            order.append("background")
        return httpx.Response(204)

    h = make_client(handler, gate=PriorityGate(background_concurrency=4, max_yield_seconds=5))
    interactive = asyncio.create_task(h.client.request("GET", "/v1/me/player", user_id="u1"))
    await asyncio.sleep(0.02)
    background = asyncio.create_task(
        h.client.request("GET", "/v1/me/top/artists", user_id="u1", priority=Priority.BACKGROUND)
    )
    await asyncio.sleep(0.05)
    assert order == ["interactive-start"]

    release_interactive.set()
    await asyncio.gather(interactive, background)
    assert order == ["interactive-start", "interactive-end", "background"]


async def test_background_yield_is_bounded(make_client):
    release_interactive = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/me/player":
            await release_interactive.wait()
        return httpx.Response(204)

    h = make_client(handler, gate=PriorityGate(max_yield_seconds=0.05))
    interactive = asyncio.create_task(h.client.request("GET", "/v1/me/player", user_id="u1"))
    await asyncio.sleep(0.01)

    response = await asyncio.wait_for(
        h.client.request("GET", "/v1/me/top/artists", user_id="u1", priority="background"),
        timeout=1,
    )

    assert response.status == 204
    release_interactive.set()
    await interactive
