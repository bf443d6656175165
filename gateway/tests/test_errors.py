"""Error shapes and the gRPC-to-HTTP table, through real FastAPI exception handling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import grpc
import httpx
import pymongo.errors
import pytest
import redis.exceptions
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel

from echostats_grpc.status import REASON_METADATA_KEY, RETRY_AFTER_METADATA_KEY
from echostats_platform import errors as domain
from gateway.errors import ApiError, http_error_for_rpc, install_error_handlers
from gateway.settings import GatewaySettings

RETRY_AFTER = 7


def rpc_error(
    code: grpc.StatusCode,
    details: str = "",
    *,
    reason: str | None = None,
    retry_after: int | None = None,
) -> grpc.aio.AioRpcError:
    """A failed call as the client stub raises it, with the kit's trailing metadata."""
    trailing: list[tuple[str, str]] = []
    if reason:
        trailing.append((REASON_METADATA_KEY, reason))
    if retry_after is not None:
        trailing.append((RETRY_AFTER_METADATA_KEY, str(retry_after)))
    return grpc.aio.AioRpcError(
        code,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(*trailing),
        details=details,
    )


class Playlist(BaseModel):
    name: str


def build_app() -> FastAPI:
    app = FastAPI()
    raised: dict[str, BaseException] = {}
    app.state.raised = raised

    @app.get("/items")
    async def items(limit: Annotated[int, Query(ge=1, le=100)] = 50) -> dict[str, int]:
        return {"limit": limit}

    @app.post("/playlists")
    async def create_playlist(playlist: Playlist) -> Playlist:
        return playlist

    @app.get("/raise")
    async def raise_configured() -> None:
        # Each test puts the exception the route should raise here.
        raise raised["error"]

    install_error_handlers(
        app, GatewaySettings(environment="test", unavailable_retry_after_seconds=RETRY_AFTER)
    )
    return app


@pytest.fixture
def app() -> FastAPI:
    return build_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("1.2.3.4", 123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def raising(app: FastAPI, client: httpx.AsyncClient, error: BaseException) -> httpx.Response:
    app.state.raised["error"] = error
    return await client.get("/raise")


async def test_validation_error_has_exactly_the_documented_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/items", params={"limit": 500})

    assert response.status_code == 422
    body = response.json()
    assert list(body) == ["detail"]
    [item] = body["detail"]
    assert set(item) == {"loc", "msg", "type"}
    assert item["loc"] == ["query", "limit"]
    assert "100" in item["msg"]
    assert isinstance(item["type"], str) and item["type"]


async def test_validation_error_in_body_lists_every_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/playlists", json={"name": 12, "extra": True})
    missing = await client.post("/playlists", json={})

    assert response.status_code == 422
    assert [item["loc"] for item in response.json()["detail"]] == [["body", "name"]]
    assert missing.json()["detail"] == [
        {"loc": ["body", "name"], "msg": "Field required", "type": "missing"}
    ]


async def test_unknown_route_is_plain_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/items")

    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert "GET" in response.headers["allow"]


async def test_any_401_says_not_authenticated(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await raising(app, client, HTTPException(401, "Invalid session token"))

    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


async def test_api_error_renders_detail_and_headers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await raising(
        app, client, ApiError(404, "Track not found", headers={"X-Extra": "1"})
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Track not found"}
    assert response.headers["x-extra"] == "1"


Code = grpc.StatusCode
DOWN = "Service temporarily unavailable"
OOPS = "Internal server error"
WAIT = str(RETRY_AFTER)

# (code, details, reason, retry-after metadata) -> (status, body detail, Retry-After)
RPC_CASES = [
    (Code.UNAUTHENTICATED, "session expired", None, None, 401, "Not authenticated", None),
    (Code.NOT_FOUND, "Track not found", None, None, 404, "Track not found", None),
    (Code.NOT_FOUND, "", None, None, 404, "Not Found", None),
    (Code.INVALID_ARGUMENT, "limit too big", None, None, 400, "limit too big", None),
    (Code.OUT_OF_RANGE, "page out of range", None, None, 400, "page out of range", None),
    (Code.FAILED_PRECONDITION, "Import running", None, None, 409, "Import running", None),
    (Code.ALREADY_EXISTS, "Already queued", None, None, 409, "Already queued", None),
    (Code.ABORTED, "Concurrent update", None, None, 409, "Concurrent update", None),
    (Code.PERMISSION_DENIED, "Not your playlist", None, None, 403, "Not your playlist", None),
    (Code.RESOURCE_EXHAUSTED, "Slow down", "RATE_LIMITED", 30, 429, "Slow down", "30"),
    (Code.RESOURCE_EXHAUSTED, "", None, None, 429, "Rate limit exceeded", "1"),
    # Internals in the message of a 5xx never reach the client.
    (Code.UNAVAILABLE, "connect to catalog:50053 refused", None, None, 503, DOWN, WAIT),
    (Code.UNAVAILABLE, "database not connected", "DATABASE_UNAVAILABLE", None, 503, DOWN, WAIT),
    (Code.UNAVAILABLE, "Spotify said 500", "UPSTREAM_ERROR", None, 502, "Spotify said 500", None),
    (Code.UNAVAILABLE, "", "UPSTREAM_ERROR", None, 502, "Spotify API error", None),
    (Code.DEADLINE_EXCEEDED, "deadline", None, None, 504, "Request timed out", None),
    (Code.CANCELLED, "cancelled", None, None, 503, DOWN, WAIT),
    (Code.UNIMPLEMENTED, "no such method", None, None, 501, "Not implemented", None),
    (Code.INTERNAL, "Traceback: KeyError 'user_id'", None, None, 500, OOPS, None),
    (Code.UNKNOWN, "boom", None, None, 500, OOPS, None),
    (Code.DATA_LOSS, "disk", None, None, 500, OOPS, None),
]


@pytest.mark.parametrize(
    ("code", "details", "reason", "retry_after", "status", "detail", "retry_header"),
    RPC_CASES,
    ids=[f"{case[0].name}-{case[2] or ''}-{case[4]}" for case in RPC_CASES],
)
async def test_rpc_errors_map_through_the_table(
    app: FastAPI,
    client: httpx.AsyncClient,
    code: grpc.StatusCode,
    details: str,
    reason: str | None,
    retry_after: int | None,
    status: int,
    detail: str,
    retry_header: str | None,
) -> None:
    error = rpc_error(code, details, reason=reason, retry_after=retry_after)

    response = await raising(app, client, error)

    assert response.status_code == status
    assert response.json() == {"detail": detail}
    assert response.headers.get("retry-after") == retry_header


def test_http_error_for_rpc_is_reusable_by_routers() -> None:
    status, detail, headers = http_error_for_rpc(
        rpc_error(grpc.StatusCode.UNAVAILABLE, "down"), unavailable_retry_after=11
    )
    assert (status, detail, headers) == (503, DOWN, {"Retry-After": "11"})

    # A service's own Retry-After wins over the configured one.
    _, _, headers = http_error_for_rpc(rpc_error(grpc.StatusCode.UNAVAILABLE, retry_after=3))
    assert headers == {"Retry-After": "3"}

    assert http_error_for_rpc(rpc_error(grpc.StatusCode.NOT_FOUND, "Artist not found")) == (
        404,
        "Artist not found",
        {},
    )


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Error 111 connecting to redis:6379"),
        redis.exceptions.TimeoutError("Timeout reading from redis:6379"),
        pymongo.errors.ServerSelectionTimeoutError("mongo:27017: [Errno 111]"),
        pymongo.errors.ConnectionFailure("mongo:27017 closed"),
    ],
    ids=["redis-connection", "redis-timeout", "mongo-selection", "mongo-connection"],
)
async def test_gateway_dependency_outage_is_503_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, error: Exception
) -> None:
    response = await raising(app, client, error)

    assert response.status_code == 503
    assert response.json() == {"detail": "Service temporarily unavailable"}
    assert response.headers["retry-after"] == str(RETRY_AFTER)


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (domain.NotFound("Track not found"), 404, "Track not found"),
        (domain.Unauthenticated("bad cookie"), 401, "Not authenticated"),
        (domain.UpstreamError("Spotify API error"), 502, "Spotify API error"),
        (domain.Unavailable("cache unreachable"), 503, "Service temporarily unavailable"),
        (domain.DomainError("invariant broken"), 500, "Internal server error"),
    ],
)
async def test_domain_errors_use_the_same_table(
    app: FastAPI, client: httpx.AsyncClient, error: Exception, status: int, detail: str
) -> None:
    response = await raising(app, client, error)

    assert response.status_code == status
    assert response.json() == {"detail": detail}
