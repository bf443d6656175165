"""The OpenAPI document says what every route can really answer.

FastAPI documents only what a route declares. The middleware and the session dependency add
answers of their own to every route: 401 `Not authenticated` where a session is required,
429 from the rate limiter, 503 when a dependency is down, 504 when the budget runs out, 500
without internals. `install_openapi` adds those to every operation, so routes added later
are documented the same way without a line of their own. Routes that depend on
`current_user` carry its security schemes (Bearer token or the session cookie, either one),
so a client (or a fuzzer, or the IDOR test) can tell user-scoped operations from public ones
by their `security`, and those get the 401.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.dependencies import SESSION_BEARER, SESSION_COOKIE
from gateway.settings import GatewaySettings

SESSION_BEARER_SCHEME = SESSION_BEARER.scheme_name
SESSION_COOKIE_SCHEME = SESSION_COOKIE.scheme_name
SESSION_SCHEMES = (SESSION_BEARER_SCHEME, SESSION_COOKIE_SCHEME)
ERROR_SCHEMA = "ErrorDetail"

_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
_RETRY_AFTER = {
    "description": "Seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 0},
}


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR_REF}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": _RETRY_AFTER}
    return response


# Answers every route can give, whatever it declares itself.
COMMON_RESPONSES: dict[str, dict[str, Any]] = {
    "429": _error("Rate limit exceeded", retry_after=True),
    "500": _error("Internal server error (no internals)"),
    "503": _error("A dependency is unavailable", retry_after=True),
    "504": _error("Request timed out"),
}
UNAUTHENTICATED_RESPONSE = _error("Not authenticated")


def build_openapi(app: FastAPI, settings: GatewaySettings) -> dict[str, Any]:
    """FastAPI's document plus the answers and security every route really has."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})[ERROR_SCHEMA] = {
        "title": ERROR_SCHEMA,
        "type": "object",
        "properties": {"detail": {"title": "Detail", "type": "string"}},
        "required": ["detail"],
    }
    schemes = components.get("securitySchemes", {})
    if SESSION_COOKIE_SCHEME in schemes:
        schemes[SESSION_COOKIE_SCHEME]["name"] = settings.session_cookie_name
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, response in COMMON_RESPONSES.items():
                responses.setdefault(status, response)
            if operation.get("security"):
                # Either scheme alone is enough (FastAPI lists them as required together).
                operation["security"] = [{name: []} for name in SESSION_SCHEMES]
                responses.setdefault("401", UNAUTHENTICATED_RESPONSE)
    return document


def install_openapi(app: FastAPI, settings: GatewaySettings) -> None:
    """Serve `build_openapi` (built once, on first request) as the app's OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
