"""The middleware stack on a tiny app: headers on every response, limits, timeouts, gzip."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from redis.asyncio import Redis
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from echostats_devstack.pytest_plugin import RedisServer
from echostats_platform.context import deadline_var, request_id_var
from gateway.errors import install_error_handlers
from gateway.middleware import (
    SLOW_ROUTES,
    RateLimitMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
    TimeoutMiddleware,
    install_middleware,
)
from gateway.ratelimit import KEY_PREFIX
from gateway.settings import GatewaySettings

ORIGIN = "https://app.example"
DEFAULT_BUDGET = 0.3
SLOW_BUDGET = 1.5


def make_settings(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "rate_limit_requests": 5,
        "rate_limit_window_seconds": 60,
        "request_timeout_seconds": DEFAULT_BUDGET,
        "slow_request_timeout_seconds": SLOW_BUDGET,
        "cors_origins": [ORIGIN],
        "trusted_proxies": ["10.0.0.0/8"],
        "unavailable_retry_after_seconds": 7,
    }
    values.update(overrides)
    return GatewaySettings(**values)


class Probe:
    """What the routes observed, for assertions after the response."""

    def __init__(self) -> None:
        self.cancelled = False
        self.finished = False


def build_app(settings: GatewaySettings, redis: Redis) -> tuple[FastAPI, Probe]:
    app = FastAPI(docs_url="/api/docs", openapi_url="/api/openapi.json")
    probe = Probe()

    @app.get("/ok")
    async def ok(request: Request) -> dict[str, Any]:
        return {
            "request_id": request_id_var.get(),
            "state_request_id": request.state.request_id,
            "client_ip": request.state.client_ip,
        }

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        try:
            await asyncio.sleep(5)
            probe.finished = True
        except asyncio.CancelledError:
            probe.cancelled = True
            raise
        return {"status": "done"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("mongodb://admin:hunter2@db.internal failed")

    @app.get("/big")
    async def big() -> dict[str, list[str]]:
        return {"items": ["listening history entry"] * 100}

    @app.get("/deadline")
    async def deadline() -> dict[str, float]:
        current = deadline_var.get()
        assert current is not None
        return {"remaining": current - time.monotonic()}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first,"
            await asyncio.sleep(DEFAULT_BUDGET + 0.3)
            yield b"second"

        return StreamingResponse(chunks(), media_type="text/plain")

    async def timed(delay: float = 0.0) -> dict[str, float]:
        current = deadline_var.get()
        assert current is not None
        remaining = current - time.monotonic()
        await asyncio.sleep(delay)
        return {"remaining": remaining}

    for _, path in SLOW_ROUTES:
        app.add_api_route(path, timed, methods=["POST", "GET"])

    install_error_handlers(app, settings)
    install_middleware(app, settings, redis)
    return app, probe


def client_for(
    app: FastAPI, peer: str = "1.2.3.4", base_url: str = "http://testserver"
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 123))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def app_and_probe(redis: Redis) -> tuple[FastAPI, Probe]:
    return build_app(make_settings(), redis)


@pytest.fixture
async def client(app_and_probe: tuple[FastAPI, Probe]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app_and_probe[0]) as http:
        yield http


def assert_edge_headers(response: httpx.Response, *, rate_limited: bool = True) -> None:
    """The headers the outer middleware promise on every response."""
    assert len(response.headers["x-request-id"]) > 0
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    assert "camera=()" in response.headers["permissions-policy"]
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "X-Request-ID" in response.headers["access-control-expose-headers"]
    if rate_limited:
        assert response.headers["x-ratelimit-limit"] == "5"
        assert "x-ratelimit-remaining" in response.headers
        assert int(response.headers["x-ratelimit-reset"]) >= 1


def test_middleware_order_is_outermost_first(redis: Redis) -> None:
    app, _ = build_app(make_settings(), redis)

    assert [m.cls for m in app.user_middleware] == [
        RequestIdMiddleware,
        SecurityHeadersMiddleware,
        CORSMiddleware,
        RateLimitMiddleware,
        TimeoutMiddleware,
        GZipMiddleware,
    ]


async def test_ok_response_carries_every_edge_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/ok", headers={"Origin": ORIGIN})

    assert response.status_code == 200
    assert_edge_headers(response)
    assert response.headers["x-ratelimit-remaining"] == "4"
    assert "strict-transport-security" not in response.headers


async def test_429_carries_every_edge_header(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await client.get("/ok")).status_code == 200

    response = await client.get("/ok", headers={"Origin": ORIGIN})

    assert response.status_code == 429
    assert response.json() == {"detail": "Rate limit exceeded"}
    assert_edge_headers(response)
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_504_carries_every_edge_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/slow", headers={"Origin": ORIGIN})

    assert response.status_code == 504
    assert response.json() == {"detail": "Request timed out"}
    assert_edge_headers(response)


async def test_500_carries_every_edge_header_and_no_internals(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="gateway.middleware"):
        response = await client.get("/boom", headers={"Origin": ORIGIN})

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert_edge_headers(response)
    # The traceback goes to the log, with the request id, instead.
    logged = [r for r in caplog.records if r.name == "gateway.middleware"]
    assert logged and logged[0].exc_info is not None
    assert "hunter2" in caplog.text


async def test_default_rate_limit_is_100_per_client(redis: Redis) -> None:
    settings = make_settings(rate_limit_requests=100, rate_limit_window_seconds=60)
    app, _ = build_app(settings, redis)
    async with client_for(app) as http:
        statuses = [(await http.get("/ok")).status_code for _ in range(100)]
        response = await http.get("/ok")

    assert statuses == [200] * 100
    assert response.status_code == 429
    assert response.headers["x-ratelimit-limit"] == "100"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert int(response.headers["retry-after"]) >= 1


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/ok", headers={"X-Request-ID": "req-42.abc_DEF"})

    assert response.headers["x-request-id"] == "req-42.abc_DEF"
    # The route saw the same id through the context variable and request.state.
    assert response.json()["request_id"] == "req-42.abc_DEF"
    assert response.json()["state_request_id"] == "req-42.abc_DEF"


async def test_request_id_is_generated_when_missing(client: httpx.AsyncClient) -> None:
    first = await client.get("/ok")
    second = await client.get("/ok")

    generated = first.headers["x-request-id"]
    assert len(generated) == 32 and all(c in "0123456789abcdef" for c in generated)
    assert first.json()["request_id"] == generated
    assert second.headers["x-request-id"] != generated


@pytest.mark.parametrize(
    "hostile",
    ["<script>alert(1)</script>", "a" * 129, "id with spaces", "id;drop", "ünicode"],
)
async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient, hostile: str) -> None:
    response = await client.get("/ok", headers={"X-Request-ID": hostile.encode()})

    replaced = response.headers["x-request-id"]
    assert replaced != hostile
    assert len(replaced) == 32
    assert response.json()["request_id"] == replaced


async def test_forwarded_for_from_untrusted_peer_is_ignored(redis: Redis) -> None:
    app, _ = build_app(make_settings(rate_limit_requests=3), redis)
    async with client_for(app, peer="1.2.3.4") as http:
        # A fresh spoofed address on each request must not buy a fresh budget.
        responses = [
            await http.get("/ok", headers={"X-Forwarded-For": f"9.9.9.{i}"}) for i in range(4)
        ]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].json()["client_ip"] == "1.2.3.4"
    assert await redis.zcard(KEY_PREFIX + "1.2.3.4") == 3


async def test_forwarded_for_from_trusted_proxy_is_honoured(redis: Redis) -> None:
    app, _ = build_app(make_settings(rate_limit_requests=3), redis)
    async with client_for(app, peer="10.0.0.5") as http:
        # The client prepends forged addresses; the proxy appended the real one last.
        responses = [
            await http.get("/ok", headers={"X-Forwarded-For": f"7.7.7.{i}, 9.9.9.9"})
            for i in range(4)
        ]
        other_client = await http.get("/ok", headers={"X-Forwarded-For": "8.8.8.8"})

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].json()["client_ip"] == "9.9.9.9"
    # Clients behind the same proxy have their own budgets; the proxy has none of its own.
    assert other_client.status_code == 200
    assert other_client.json()["client_ip"] == "8.8.8.8"
    assert await redis.exists(KEY_PREFIX + "10.0.0.5") == 0


async def test_limiter_fails_open_when_redis_is_down(
    redis: Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = build_app(make_settings(), redis)
    try:
        async with client_for(app) as http:
            before = await http.get("/ok")
            redis_server.stop()
            with caplog.at_level(logging.WARNING, logger="gateway.ratelimit"):
                during = await http.get("/ok", headers={"Origin": ORIGIN})
    finally:
        # The server is shared by the session: bring it back for the tests that follow.
        redis_server.start()

    assert before.headers["x-ratelimit-remaining"] == "4"
    assert during.status_code == 200
    assert "x-ratelimit-limit" not in during.headers
    assert_edge_headers(during, rate_limited=False)
    assert "failing open" in caplog.text


async def test_cors_preflight_is_answered_without_using_the_budget(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    response = await client.options(
        "/ok",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in response.headers
    assert response.headers["x-frame-options"] == "DENY"
    assert await redis.exists(KEY_PREFIX + "1.2.3.4") == 0


async def test_cors_ignores_unknown_origins(client: httpx.AsyncClient) -> None:
    response = await client.get("/ok", headers={"Origin": "https://evil.example"})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_wildcard_origin_with_credentials_is_refused(redis: Redis) -> None:
    with pytest.raises(ValueError, match="explicit"):
        build_app(make_settings(cors_origins=["*"]), redis)


async def test_hsts_only_over_https(app_and_probe: tuple[FastAPI, Probe]) -> None:
    async with client_for(app_and_probe[0], base_url="https://testserver") as http:
        secure = await http.get("/ok")
    async with client_for(app_and_probe[0], base_url="http://testserver") as http:
        plain = await http.get("/ok")

    assert secure.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in plain.headers


async def test_hsts_behind_a_trusted_tls_proxy_only(redis: Redis) -> None:
    app, _ = build_app(make_settings(), redis)
    https = {"X-Forwarded-Proto": "https"}
    async with client_for(app, peer="10.0.0.5") as http:
        via_proxy = await http.get("/ok", headers=https)
        proxy_over_http = await http.get("/ok", headers={"X-Forwarded-Proto": "http"})
    async with client_for(app, peer="1.2.3.4") as http:
        spoofed = await http.get("/ok", headers=https)

    assert "strict-transport-security" in via_proxy.headers
    assert "strict-transport-security" not in proxy_over_http.headers
    assert "strict-transport-security" not in spoofed.headers


async def test_docs_page_gets_a_csp_that_lets_swagger_load(client: httpx.AsyncClient) -> None:
    docs = await client.get("/api/docs")
    api = await client.get("/ok")

    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" in docs.text
    docs_csp = docs.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in docs_csp
    assert "frame-ancestors 'none'" in docs_csp
    assert api.headers["content-security-policy"] == (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


async def test_timeout_answers_504_in_budget_and_cancels_the_work(
    app_and_probe: tuple[FastAPI, Probe], client: httpx.AsyncClient
) -> None:
    _, probe = app_and_probe

    started = time.monotonic()
    response = await client.get("/slow")
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert DEFAULT_BUDGET <= elapsed < DEFAULT_BUDGET + 0.5
    # The work was cancelled, not left running behind the 504.
    assert probe.cancelled is True
    await asyncio.sleep(0.1)
    assert probe.finished is False


async def test_deadline_is_set_for_downstream_calls(client: httpx.AsyncClient) -> None:
    remaining = (await client.get("/deadline")).json()["remaining"]

    assert 0 < remaining <= DEFAULT_BUDGET
    # Outside a request there is no deadline.
    assert deadline_var.get() is None


@pytest.mark.parametrize(("method", "path"), sorted(SLOW_ROUTES))
async def test_slow_routes_get_the_long_budget(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    # Twice the default budget: only the slow budget lets this finish.
    response = await client.request(method, path, params={"delay": DEFAULT_BUDGET * 2})

    assert response.status_code == 200
    assert DEFAULT_BUDGET < response.json()["remaining"] <= SLOW_BUDGET


async def test_slow_budget_is_only_for_the_listed_method(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/history/import", params={"delay": DEFAULT_BUDGET * 2})

    assert response.status_code == 504


async def test_started_response_is_allowed_to_finish(client: httpx.AsyncClient) -> None:
    response = await client.get("/stream")

    assert response.status_code == 200
    assert response.text == "first,second"


async def test_large_bodies_are_gzipped(client: httpx.AsyncClient) -> None:
    big = await client.get("/big", headers={"Accept-Encoding": "gzip"})
    small = await client.get("/ok", headers={"Accept-Encoding": "gzip"})
    plain = await client.get("/big", headers={"Accept-Encoding": "identity"})

    assert big.headers["content-encoding"] == "gzip"
    assert int(big.headers["content-length"]) < len(plain.content)
    assert big.json() == plain.json()
    assert "content-encoding" not in small.headers
    assert "content-encoding" not in plain.headers
