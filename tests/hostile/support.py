"""What the hostile-input tests share: the gateway's OpenAPI operations and client headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.integration.support import unique_client_address

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


def fresh_client_headers() -> dict[str, str]:
    """A new client identity: its own rate-limit bucket."""
    return {"X-Forwarded-For": unique_client_address()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
