"""Schemathesis against the gateway's own OpenAPI document, every operation, signed in and not.

Each operation gets a few deterministic examples (derandomized Hypothesis, no shrinking
database), sent through the gateway from the trusted proxy address with a fresh client in
X-Forwarded-For per example, so the rate limit never answers for the fuzzer. Every built-in
check runs: no 5xx, only documented status codes, bodies and headers matching the document,
invalid input refused, and security enforced (an operation that declares a session scheme
must refuse the same request without it).

Signed in, the examples go out with the session of a user who has synced plays; logout gets
a session of its own per example (it would otherwise end the shared one). Nothing is
skipped: every operation in the document, those added later included, is fuzzed both ways.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway.main import create_app
from gateway.settings import GatewaySettings
from tests.hostile.support import bearer, fetch_openapi, fresh_client_headers, proxy_session
from tests.integration.support import TRUSTED_PROXY_ADDRESS, unique_client_address

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
def http_session() -> requests.Session:
    session = proxy_session()
    yield session
    session.close()


def dev_login_token(gateway_url: str) -> str:
    """A new session of the demo user (a disposable one, for logout)."""
    transport = httpx.HTTPTransport(local_address=TRUSTED_PROXY_ADDRESS)
    with httpx.Client(transport=transport, timeout=60) as client:
        response = client.get(
            f"{gateway_url}/api/v1/auth/dev-login",
            headers={"X-Forwarded-For": unique_client_address()},
        )
    assert response.status_code == 200, response.text
    return response.json()["token"]


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_signed_out(case, gateway_url, http_session):
    # On the session, not the call: checks that re-send the request (without the session,
    # with another method) must come from the same client.
    http_session.headers.update(fresh_client_headers())
    case.call_and_validate(
        base_url=gateway_url,
        session=http_session,
        excluded_checks=excluded_checks(case),
        timeout=REQUEST_TIMEOUT_SECONDS,
    )


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_signed_in(case, gateway_url, http_session, fuzz_user):
    token = fuzz_user["token"]
    if (case.method.upper(), case.path) == LOGOUT:
        token = dev_login_token(gateway_url)
    http_session.headers.update(fresh_client_headers())
    case.call_and_validate(
        base_url=gateway_url,
        session=http_session,
        headers=bearer(token),
        excluded_checks=excluded_checks(case),
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
