"""Spotify's error shapes and the exceptions that produce them.

Two families (ref §1, §3):
- Web API (`/v1/...`): `{"error": {"status": <int>, "message": "<text>"[, "reason": ".."]}}`,
  with a few quirks kept on purpose: some 403s carry no message, some bodies are plain text.
- Accounts (`/api/token`): `{"error": "<code>", "error_description": "<text>"}`.

Routers raise `WebApiError` / `AccountsError`; `install_error_handlers` turns them (and
FastAPI's own 404/405/validation errors on `/v1`) into those bodies.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

WEB_API_PREFIX = "/v1"

# The WWW-Authenticate header Spotify sends with its 401s.
_WWW_AUTHENTICATE = 'Bearer realm="spotify", error="invalid_token", error_description="{}"'


def web_api_body(status: int, message: str | None, reason: str | None = None) -> dict[str, Any]:
    """Build a Web API error object; `message=None` mimics the bare `{"error":{"status":403}}`."""
    error: dict[str, Any] = {"status": status}
    if message is not None:
        error["message"] = message
    if reason is not None:
        error["reason"] = reason
    return {"error": error}


def accounts_body(error: str, description: str) -> dict[str, str]:
    """Build an Accounts (OAuth) error object."""
    return {"error": error, "error_description": description}


class WebApiError(Exception):
    """An error answered in the Web API shape."""

    def __init__(
        self,
        status: int,
        message: str | None,
        *,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
        plain_text: bool = False,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.reason = reason
        self.headers = dict(headers or {})
        # Some Spotify errors (e.g. "User not registered in the Developer Dashboard") are
        # plain text, not JSON; clients must cope, so the simulator can produce them.
        self.plain_text = plain_text

    def response(self) -> Response:
        """Render the error as an HTTP response."""
        if self.plain_text:
            return PlainTextResponse(self.message or "", self.status, headers=self.headers)
        return JSONResponse(
            web_api_body(self.status, self.message, self.reason), self.status, headers=self.headers
        )


def unauthorized(message: str) -> WebApiError:
    """A 401 with Spotify's WWW-Authenticate header."""
    return WebApiError(
        401, message, headers={"WWW-Authenticate": _WWW_AUTHENTICATE.format(message)}
    )


class AccountsError(Exception):
    """An error answered in the Accounts (OAuth) shape; 400 unless told otherwise."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> Response:
        """Render the error as an HTTP response."""
        return JSONResponse(accounts_body(self.error, self.description), self.status)


def invalid_grant(description: str) -> AccountsError:
    """The most common token-endpoint refusal."""
    return AccountsError("invalid_grant", description)


def invalid_client(description: str = "Invalid client") -> AccountsError:
    """Client authentication failed (Spotify answers 400 here, not 401: observed)."""
    return AccountsError("invalid_client", description)


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers that render simulator errors in Spotify's shapes."""

    async def on_web_api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebApiError)
        return exc.response()

    async def on_accounts_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AccountsError)
        return exc.response()

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith(WEB_API_PREFIX):
            # Spotify answers unknown API paths with "Service not found".
            message = "Service not found" if exc.status_code == 404 else _phrase(exc.status_code)
            return JSONResponse(
                web_api_body(exc.status_code, message), exc.status_code, headers=exc.headers
            )
        return await http_exception_handler(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if request.url.path.startswith(WEB_API_PREFIX):
            # Spotify reports bad query values as 400 with a short message, never 422.
            first = exc.errors()[0] if exc.errors() else {}
            name = str(first.get("loc", ("", "request"))[-1])
            return JSONResponse(web_api_body(400, f"Invalid {name}"), 400)
        return await request_validation_exception_handler(request, exc)

    app.add_exception_handler(WebApiError, on_web_api_error)
    app.add_exception_handler(AccountsError, on_accounts_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
