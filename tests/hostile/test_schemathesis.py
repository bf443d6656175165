"""Schemathesis against the gateway's own OpenAPI document, every operation, signed in and not.

Each operation gets a few deterministic examples (derandomized Hypothesis, no example
database). They go to a gateway replica of the test stack (same services, same document)
whose rate limit is raised out of the way: schemathesis's own probes (the same request
without credentials, with another method) are sent on fresh connections without the
caller's session, so they cannot be routed through the trusted proxy address with a
client of their own, and the fuzzer would soon be answered 429. The rate limit has tests
of its own (test_gateway_edges.py, test_hostile_input.py). Every built-in
check runs: no 5xx, only documented status codes, bodies and headers matching the document,
invalid input refused, and security enforced (an operation that declares a session scheme
must refuse the same request without it).

Signed in, the examples go out with the session of a user who has synced plays; logout gets
a session of its own per example (it would otherwise end the shared one). Nothing is
skipped: every operation in the document, those added later included, is fuzzed both ways.
"""

from __future__ import annotations

import http.cookiejar
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway.main import create_app
from gateway.settings import GatewaySettings
from tests.hostile.support import bearer, fetch_openapi

pytestmark = pytest.mark.integration

# A few examples per operation keeps the whole run within a couple of minutes in CI.
EXAMPLES_PER_OPERATION = 3
# The gateway's own budget: a slow answer is not a failure, its 504 is.
REQUEST_TIMEOUT_SECONDS = 35
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
LOGOUT = ("POST", "/api/v1/auth/logout")


def excluded_checks(case) -> list:
    """Checks that do not apply to this operation.

    An operation that documents 400 says that well-formed input can still be refused on
    what only the server knows (an OAuth state it never issued, an upload that is not a
    Spotify export): "schema-valid data must be accepted" does not hold there. Every other
    check still runs on it.
    """
    if "400" in case.operation.definition.raw.get("responses", {}):
        return [positive_data_acceptance]
    return []


def gateway_document() -> dict[str, Any]:
    """The gateway's OpenAPI document, built from its code at collection time."""
    return create_app(GatewaySettings()).openapi()


# Collected per operation (one test id each); the live document must be the same.
schema = schemathesis.openapi.from_dict(gateway_document())


def test_the_served_document_is_the_one_fuzzed(gateway_url):
    assert fetch_openapi(gateway_url) == gateway_document()


@pytest.fixture(scope="module")
def fuzz_gateway(stack) -> str:
    """A gateway replica with the rate limit out of the way; its URL."""
    return stack.start_extra_gateway({"ECHOSTATS_RATE_LIMIT_REQUESTS": "100000000"})


@pytest.fixture(scope="module")
def http_session() -> requests.Session:
    session = requests.Session()
    # No cookie jar: a session cookie one answer sets (dev-login) must not sign in the
    # requests that follow.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    yield session
    session.close()


def dev_login_token(gateway_url: str) -> str:
    """A new session of the demo user (a disposable one, for logout)."""
    with httpx.Client(timeout=60) as client:
        response = client.get(f"{gateway_url}/api/v1/auth/dev-login")
    assert response.status_code == 200, response.text
    return response.json()["token"]


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_signed_out(case, fuzz_gateway, http_session):
    case.call_and_validate(
        base_url=fuzz_gateway,
        session=http_session,
        excluded_checks=excluded_checks(case),
        timeout=REQUEST_TIMEOUT_SECONDS,
    )


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_signed_in(case, fuzz_gateway, http_session, fuzz_user):
    token = fuzz_user["token"]
    if (case.method.upper(), case.path) == LOGOUT:
        token = dev_login_token(fuzz_gateway)
    case.call_and_validate(
        base_url=fuzz_gateway,
        session=http_session,
        headers=bearer(token),
        excluded_checks=excluded_checks(case),
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
