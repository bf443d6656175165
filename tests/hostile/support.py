"""What the hostile-input tests share: the gateway's OpenAPI operations, sync HTTP sessions
that play the trusted proxy, and signed-in users with data."""

from __future__ import annotations

import http.cookiejar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import requests
from requests.adapters import HTTPAdapter

from tests.integration.support import TRUSTED_PROXY_ADDRESS, unique_client_address

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
PATH_PARAMETER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Operation:
    """One operation of the OpenAPI document."""

    method: str
    path: str
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def needs_session(self) -> bool:
        """Whether the document lists a session scheme for it (the route answers 401 without)."""
        return bool(self.spec.get("security"))

    @property
    def path_parameters(self) -> list[str]:
        return PATH_PARAMETER.findall(self.path)


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    """Every operation of an OpenAPI document."""
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                yield Operation(method, path, item[method])


def fetch_openapi(gateway_url: str) -> dict[str, Any]:
    """The gateway's OpenAPI document."""
    response = httpx.get(f"{gateway_url}/api/openapi.json", timeout=30)
    response.raise_for_status()
    return response.json()


class _TrustedProxyAdapter(HTTPAdapter):
    """Connects from the trusted proxy address, so X-Forwarded-For names the client."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (TRUSTED_PROXY_ADDRESS, 0)
        super().init_poolmanager(*args, **kwargs)


def proxy_session() -> requests.Session:
    """A requests session (what schemathesis sends with) connecting from the trusted proxy."""
    session = requests.Session()
    # No cookie jar: a session cookie one answer sets (dev-login) must not sign in the
    # requests that follow.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = _TrustedProxyAdapter()
    session.mount("http://", adapter)
    return session


def fresh_client_headers() -> dict[str, str]:
    """A new client identity: its own rate-limit bucket."""
    return {"X-Forwarded-For": unique_client_address()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
