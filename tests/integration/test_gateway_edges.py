"""The gateway's global behaviour on the real stack: health, OpenAPI, request ids, headers,
rate limiting, gzip, timeouts."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from tests.integration.support import query_of

pytestmark = pytest.mark.integration

SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy")


def assert_edge_headers(response: httpx.Response, origin: str | None = None) -> None:
    """Request id, security headers and (for a browser origin) CORS are on every response."""
    assert response.headers.get("x-request-id")
    for header in SECURITY_HEADERS:
        assert header in response.headers, (header, response.status_code)
    assert response.headers["x-content-type-options"] == "nosniff"
    if origin:
        assert response.headers.get("access-control-allow-origin") == origin


async def test_health_body_is_exact(client):
    response = await client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "service": "echostats-api", "version": "0.1.0"}
    assert_edge_headers(response)


async def test_ready_when_everything_is_up(client):
    response = await client.get("/api/health/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_update_check_reads_github_releases(client):
    response = await client.get("/api/health/update")
    assert response.status_code == 200
    body = response.json()
    assert body["current_version"] == "0.1.0"
    assert body["latest_version"] == "0.2.0"
    assert body["update_available"] is True
    assert body["release_url"].endswith("/releases/tag/v0.2.0")
    assert body["published_at"] == "2025-01-15T12:00:00Z"
    assert set(body) == {
        "current_version",
        "latest_version",
        "update_available",
        "release_url",
        "release_notes",
        "published_at",
    }


async def test_openapi_and_docs(client):
    spec = await client.get("/api/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["info"]["title"] == "EchoStats API"
    paths = spec.json()["paths"]
    for path in (
        "/api/health",
        "/api/health/ready",
        "/api/v1/auth/login",
        "/api/v1/auth/dev-login",
    ):
        assert path in paths
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_gzip_for_clients_that_accept_it(client):
    response = await client.get("/api/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("content-encoding") == "gzip"
    assert response.json()["info"]["title"] == "EchoStats API"


async def test_unknown_route_is_404_json(client):
    response = await client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert_edge_headers(response)


async def test_request_id_is_echoed_and_reaches_the_services(client, stack):
    request_id = f"it-{uuid.uuid4().hex}"
    response = await client.get("/api/v1/auth/login", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    log = stack.log_path("auth")
    for _ in range(50):
        if request_id in log.read_text():
            break
        await asyncio.sleep(0.1)
    assert request_id in log.read_text(), "auth never logged the gateway's request id"


async def test_request_id_is_generated_when_missing(client):
    first = await client.get("/api/health")
    second = await client.get("/api/health")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_cors_preflight_for_the_frontend(client, stack):
    origin = stack.frontend_url
    response = await client.options(
        "/api/v1/auth/status",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-credentials"] == "true"
    foreign = await client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers


async def test_rate_limit_429_after_the_limit_with_headers(make_client, stack):
    # 127.0.0.3 is an untrusted peer of its own, so this bucket is ours alone.
    origin = stack.frontend_url
    client = make_client(
        via_proxy=False, transport=httpx.AsyncHTTPTransport(local_address="127.0.0.3")
    )
    limit = 100
    first = await client.get("/api/health", headers={"Origin": origin})
    assert first.headers["x-ratelimit-limit"] == str(limit)
    assert int(first.headers["x-ratelimit-remaining"]) == limit - 1
    for _ in range(limit - 1):
        response = await client.get("/api/health")
        assert response.status_code == 200
    limited = await client.get("/api/health", headers={"Origin": origin})
    assert limited.status_code == 429
    assert limited.json() == {"detail": "Rate limit exceeded"}
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert "x-ratelimit-reset" in limited.headers
    assert_edge_headers(limited, origin)


async def test_forwarded_for_is_ignored_from_untrusted_peers(make_client):
    client = make_client(
        via_proxy=False, transport=httpx.AsyncHTTPTransport(local_address="127.0.0.4")
    )
    statuses = []
    for number in range(101):
        response = await client.get(
            "/api/health", headers={"X-Forwarded-For": f"203.0.113.{number % 250}"}
        )
        statuses.append(response.status_code)
    assert statuses[:100] == [200] * 100
    assert statuses[100] == 429


async def test_forwarded_for_is_honoured_from_trusted_proxies(make_client):
    spender = make_client()  # via 127.0.0.2 with its own X-Forwarded-For
    for _ in range(100):
        assert (await spender.get("/api/health")).status_code == 200
    assert (await spender.get("/api/health")).status_code == 429
    other = make_client()  # same proxy, another client behind it
    assert (await other.get("/api/health")).status_code == 200


async def test_timeout_is_504_within_the_budget_with_headers(make_client, stack, simulator):
    gateway = stack.start_extra_gateway({"ECHOSTATS_REQUEST_TIMEOUT_SECONDS": "1"})
    client = make_client(base_url=gateway)
    login = await client.get("/api/v1/auth/login", headers={"Accept": "application/json"})
    binding = login.cookies["echostats_oauth_binding"]
    async with httpx.AsyncClient(timeout=30) as browser:
        authorize = await browser.get(login.json()["url"], follow_redirects=False)
    params = query_of(authorize.headers["location"])
    await simulator.put("/_sim/latency", json={"path_prefix": "/api/token", "ms": 4000})
    origin = stack.frontend_url
    started = time.monotonic()
    response = await client.get(
        "/api/v1/auth/callback",
        params={"code": params["code"], "state": params["state"]},
        headers={"Cookie": f"echostats_oauth_binding={binding}", "Origin": origin},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json() == {"detail": "Request timed out"}
    assert elapsed < 2.5
    assert_edge_headers(response, origin)
