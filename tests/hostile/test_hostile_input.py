"""Hostile requests against every operation of the gateway's OpenAPI document.

Malformed and forged credentials on every user-scoped operation, oversized headers and
bodies, path traversal and absurd ids on every path-parameter route and on the API prefix,
X-Forwarded-For chains forged behind the trusted proxy, and dev-login on a gateway in
production configuration. The operations come from the live document, so routes added
later are covered without a line here.

Already proven elsewhere and not repeated: OAuth login-CSRF (a callback without or with a
foreign browser binding) and state replay (test_auth_flow.py: test_callback_without_the_
browser_binding_is_refused, test_callback_with_a_foreign_binding_is_refused,
test_bad_or_missing_state, test_spotify_error_is_400_and_spends_the_state), forged JWTs
(test_forged_and_expired_tokens_are_refused), tokens encrypted at rest
(test_tokens_are_encrypted_at_rest), X-Forwarded-For from an untrusted peer
(test_gateway_edges.py: test_forwarded_for_is_ignored_from_untrusted_peers).
"""

from __future__ import annotations

import httpx
import pytest

from tests.hostile.support import Operation, bearer, fetch_openapi, operations

pytestmark = pytest.mark.integration

NOT_AUTHENTICATED = {"detail": "Not authenticated"}

# Credentials that must never sign anyone in, nor break anything.
MALFORMED_CREDENTIALS: dict[str, dict[str, str | bytes]] = {
    "bearer-garbage": {"Authorization": "Bearer garbage"},
    "bearer-two-words": {"Authorization": "Bearer a b"},
    "bearer-three-dots": {"Authorization": "Bearer a.b.c"},
    "bearer-jwt-header-only": {"Authorization": "Bearer eyJhbGciOiJub25lIn0.."},
    "bearer-8k": {"Authorization": "Bearer " + "A" * 8000},
    "bearer-latin1": {"Authorization": b"Bearer \xe9\xe8\xff"},
    "bearer-sql": {"Authorization": "Bearer ' OR '1'='1"},
    "bearer-mongo-operator": {"Authorization": 'Bearer {"$ne": null}'},
    "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    "scheme-only": {"Authorization": "Bearer"},
    "cookie-empty": {"Cookie": "echostats_session="},
    "cookie-garbage": {"Cookie": "echostats_session=%%%;;;==="},
    "cookie-quoted": {"Cookie": 'echostats_session="a\\"b"'},
    "cookie-twice": {"Cookie": "echostats_session=x; echostats_session=y"},
    "cookie-8k": {"Cookie": "echostats_session=" + "B" * 8000},
    "cookie-no-name": {"Cookie": "=value; ; ;"},
}

# Values for a path parameter that must never escape it.
HOSTILE_IDS: dict[str, str] = {
    "dotdot-encoded-slash": "..%2F..%2Fetc%2Fpasswd",
    "double-encoded": "..%252F..%252Fetc%252Fpasswd",
    "encoded-slash": "a%2Fb",
    "backslash": "..%5C..%5Cwindows",
    "nul": "abc%00def",
    "mongo-operator": "%7B%22%24ne%22%3Anull%7D",
    "regex": ".%2A",
    "very-long": "x" * 4096,
    "unicode": "%E2%80%AE%F0%9F%92%A9",
}

# Paths that try to climb out of the API or smuggle a route.
TRAVERSAL_PATHS = (
    "/api/v1/../../etc/passwd",
    "/api/v1/%2e%2e/%2e%2e/etc/passwd",
    "/api/v1/history/..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/v1/history%2F..%2Fsync-jobs",
    "/api/v1/sync-jobs/%2e%2e%2fstats",
    "/api/v1//history",
    "/api/" + "a/" * 2000,
)


def concrete_path(operation: Operation, value: str = "x") -> str:
    path = operation.path
    for name in operation.path_parameters:
        path = path.replace("{" + name + "}", value)
    return path


@pytest.fixture(scope="module")
def document(gateway_url) -> dict:
    return fetch_openapi(gateway_url)


@pytest.fixture(scope="module")
def user_scoped(document) -> list[Operation]:
    scoped = [operation for operation in operations(document) if operation.needs_session]
    assert scoped, "the document lists no user-scoped operation: security schemes missing?"
    return scoped


async def send(client: httpx.AsyncClient, operation: Operation, path: str, **kwargs):
    return await client.request(operation.method.upper(), path, **kwargs)


@pytest.mark.parametrize("credentials", list(MALFORMED_CREDENTIALS), ids=str)
async def test_malformed_credentials_are_401_everywhere(make_client, user_scoped, credentials):
    client = make_client()
    for operation in user_scoped:
        response = await send(
            client,
            operation,
            concrete_path(operation),
            headers=MALFORMED_CREDENTIALS[credentials],
        )
        assert response.status_code == 401, (operation.label, response.status_code, response.text)
        assert response.json() == NOT_AUTHENTICATED, operation.label


async def test_oversized_headers_are_refused_and_nothing_breaks(make_client, document):
    client = make_client()
    for operation in operations(document):
        path = concrete_path(operation)
        for headers in (
            {"X-Padding": "p" * 70_000},
            {f"X-Many-{index}": "v" * 100 for index in range(400)},
        ):
            try:
                response = await send(client, operation, path, headers=headers)
            except httpx.RemoteProtocolError:
                continue  # the server closed the connection on it: refused, fine
            assert response.status_code < 500, (operation.label, response.status_code)
    assert (await make_client().get("/api/health")).status_code == 200


async def test_oversized_bodies_never_break_an_operation(make_client, document, fuzz_user):
    client = make_client()
    big_json = b'{"a":"' + b"x" * 4_000_000 + b'"}'
    deep_json = b"[" * 100_000 + b"]" * 100_000
    for operation in operations(document):
        if operation.method not in ("post", "put", "patch"):
            continue
        for body in (big_json, deep_json):
            response = await send(
                client,
                operation,
                concrete_path(operation),
                content=body,
                headers={"Content-Type": "application/json", **bearer(fuzz_user["token"])},
                timeout=60,
            )
            assert response.status_code < 500, (operation.label, response.status_code)
    assert (await make_client().get("/api/health")).status_code == 200


@pytest.mark.parametrize("value", list(HOSTILE_IDS), ids=str)
async def test_hostile_ids_in_every_path_parameter(make_client, document, fuzz_user, value):
    client = make_client()
    with_ids = [op for op in operations(document) if op.path_parameters]
    for operation in with_ids:
        path = concrete_path(operation, HOSTILE_IDS[value])
        response = await send(client, operation, path, headers=bearer(fuzz_user["token"]))
        assert response.status_code in (400, 404, 405, 414, 422), (
            operation.label,
            response.status_code,
            response.text[:300],
        )
        assert "root:" not in response.text


@pytest.mark.parametrize("path", TRAVERSAL_PATHS, ids=range(len(TRAVERSAL_PATHS)))
async def test_traversal_never_leaves_the_api(make_client, fuzz_user, path):
    client = make_client()
    response = await client.get(path, headers=bearer(fuzz_user["token"]))
    assert response.status_code in (400, 404, 405, 414, 422), (response.status_code, path)
    assert "root:" not in response.text


async def test_forged_forwarded_chain_behind_the_proxy_does_not_dodge_the_limit(make_client):
    # The proxy appends the address it saw (the real client) on the right; whatever the
    # client wrote to the left of it is forged and must not become a fresh bucket.
    from tests.integration.support import unique_client_address

    real_client = unique_client_address()
    client = make_client(headers={})
    statuses = []
    for number in range(101):
        forged = f"203.0.113.{number % 250}, 127.0.0.2"
        response = await client.get(
            "/api/health", headers={"X-Forwarded-For": f"{forged}, {real_client}"}
        )
        statuses.append(response.status_code)
    assert statuses[:100] == [200] * 100
    assert statuses[100] == 429


@pytest.mark.parametrize("enabled", [None, "true"], ids=["default", "explicitly-enabled"])
async def test_dev_login_is_refused_in_production(stack, make_client, enabled):
    overrides = {"ECHOSTATS_ENVIRONMENT": "production"}
    if enabled is not None:
        overrides["ECHOSTATS_DEV_LOGIN_ENABLED"] = enabled
    gateway = stack.start_extra_gateway(overrides)
    client = make_client(base_url=gateway)
    response = await client.get("/api/v1/auth/dev-login")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert "set-cookie" not in response.headers
    assert (await client.get("/api/health")).status_code == 200
