"""Accounts service look-alike: `GET /authorize` and `POST /api/token` (ref §1).

`/authorize` skips the consent page: it validates the request like Spotify and redirects
at once with a code. Simulator-only query parameters pick the outcome:
- `sim_user=<user id>`: who signs in (default: the first seeded user, `sim_alice`);
- `sim_deny=1`: the user refuses (`error=access_denied`).

A bad client id or redirect URI is never redirected: it gets a 400 page such as
`INVALID_CLIENT: Invalid redirect URI`, as on Spotify. Errors found after the redirect
URI is trusted (bad response_type, PKCE parameters, unknown scope) are redirected with
an OAuth `error`.

`/api/token` takes form-encoded bodies for the authorization_code and refresh_token
grants, authenticates the client from a Basic header or body fields, and answers with
Spotify's exact error pairs; the token rules themselves live in `tokens.py`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from html import escape
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from .errors import AccountsError, invalid_client
from .state import RegisteredApp, SimulatorState, get_state

router = APIRouter(tags=["accounts"])
State = Annotated[SimulatorState, Depends(get_state)]

# Every scope Spotify's authorization server accepts; anything else is `invalid_scope`.
KNOWN_SCOPES = frozenset(
    {
        "ugc-image-upload",
        "user-read-playback-state",
        "user-modify-playback-state",
        "user-read-currently-playing",
        "app-remote-control",
        "streaming",
        "playlist-read-private",
        "playlist-read-collaborative",
        "playlist-modify-private",
        "playlist-modify-public",
        "user-follow-modify",
        "user-follow-read",
        "user-read-playback-position",
        "user-top-read",
        "user-read-recently-played",
        "user-library-modify",
        "user-library-read",
        "user-read-email",
        "user-read-private",
        "user-personalized",
        "user-soa-link",
        "user-soa-unlink",
        "soa-manage-entitlements",
        "soa-manage-partner",
        "soa-create-partner",
    }
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url(SHA-256), no padding


# --- redirect URIs ------------------------------------------------------------------------


def redirect_uri_allowed(uri: str, registered: tuple[str, ...]) -> bool:
    """Apply Spotify's 2025 redirect rules (ref §1) to `uri`.

    `localhost` is always refused and so are fragments. With no registered list any
    HTTPS URI or loopback literal (127.0.0.1, [::1], any port) passes; with a list, only
    its exact entries do, except that a loopback entry registered without a port accepts
    any port.
    """
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.fragment:
        return False
    if host == "localhost":
        return False
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        return False
    if not registered:
        return True
    for entry in registered:
        if entry == uri:
            return True
        try:
            reg = urlsplit(entry)
            reg_port = reg.port
        except ValueError:
            continue
        if (
            reg.scheme == "http"
            and (reg.hostname or "") in LOOPBACK_HOSTS
            and reg_port is None
            and port is not None
            and (reg.scheme, reg.hostname, reg.path, reg.query)
            == (parts.scheme, parts.hostname, parts.path, parts.query)
        ):
            return True
    return False


def _with_query(uri: str, params: dict[str, str | None]) -> str:
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _error_page(message: str) -> HTMLResponse:
    # Spotify renders these on its own page instead of redirecting (ref §1).
    text = escape(message)
    return HTMLResponse(
        f"<!DOCTYPE html><html><head><title>Error</title></head>"
        f"<body><h1>{text}</h1></body></html>",
        status_code=400,
    )


# --- /authorize ---------------------------------------------------------------------------


@router.get("/authorize", response_model=None)
async def authorize(request: Request, state: State) -> HTMLResponse | RedirectResponse:
    """Approve (or, with `sim_deny=1`, refuse) at once and redirect back with a code."""
    q = request.query_params
    app = state.app(q.get("client_id"))
    if app is None:
        return _error_page("INVALID_CLIENT: Invalid client")
    redirect_uri = q.get("redirect_uri") or ""
    if not redirect_uri_allowed(redirect_uri, app.redirect_uris):
        return _error_page("INVALID_CLIENT: Invalid redirect URI")
    user = state.user(q.get("sim_user")) if q.get("sim_user") else state.default_user()
    if user is None:
        return _error_page("INVALID_REQUEST: Unknown sim_user")
    request.state.sim_user_id = user.id
    request.state.sim_client_id = app.client_id
    st = q.get("state")

    def fail(error: str, description: str | None = None) -> RedirectResponse:
        params = {"error": error, "error_description": description, "state": st}
        return RedirectResponse(_with_query(redirect_uri, params), status_code=302)

    if q.get("response_type") != "code":
        # The implicit grant (`token`) stopped working on 27 Nov 2025.
        return fail("unsupported_response_type", "response_type must be code")
    challenge = q.get("code_challenge")
    method = q.get("code_challenge_method")
    if challenge is not None or method is not None:
        if method != "S256":
            return fail("invalid_request", "code_challenge_method must be S256")
        if not challenge or not _CHALLENGE_RE.match(challenge):
            return fail("invalid_request", "code_challenge must be base64url(SHA-256)")
    scopes = tuple(dict.fromkeys((q.get("scope") or "").split()))
    if any(s not in KNOWN_SCOPES for s in scopes):
        return fail("invalid_scope", "Invalid scope")
    if q.get("sim_deny") in ("1", "true", "yes"):
        return fail("access_denied")
    code = state.tokens.issue_code(
        client_id=app.client_id,
        user_id=user.id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        code_challenge=challenge,
    )
    return RedirectResponse(_with_query(redirect_uri, {"code": code, "state": st}), 302)


# --- /api/token ---------------------------------------------------------------------------


def _authenticate_client(
    state: SimulatorState, header: str | None, form: dict[str, str]
) -> tuple[RegisteredApp, bool]:
    """Find the calling app and whether it proved its secret (confidential client)."""
    client_id = form.get("client_id")
    secret = form.get("client_secret")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client("Invalid client")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise invalid_client("Invalid client") from exc
        basic_id, sep, basic_secret = decoded.partition(":")
        if not sep:
            raise invalid_client("Invalid client")
        if client_id is not None and client_id != basic_id:
            raise invalid_client("Invalid client")
        client_id, secret = basic_id, basic_secret
    app = state.app(client_id)
    if app is None:
        raise invalid_client("Invalid client")
    if secret is None or secret == "":
        return app, False  # a public (PKCE) client
    if not hmac.compare_digest(secret.encode(), app.client_secret.encode()):
        raise invalid_client("Invalid client secret")
    return app, True


@router.post("/api/token")
async def token(request: Request, state: State) -> JSONResponse:
    """The token endpoint: authorization_code and refresh_token grants."""
    # Parsed by hand (not FastAPI Form) so no multipart dependency is needed and any
    # content type is read the way Spotify does: as a urlencoded body.
    raw = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(raw, keep_blank_values=True))
    grant_type = form.get("grant_type")
    if grant_type not in ("authorization_code", "refresh_token"):
        description = (
            "grant_type parameter is missing" if not grant_type else "Unsupported grant type"
        )
        raise AccountsError("unsupported_grant_type", description)
    app, confidential = _authenticate_client(state, request.headers.get("authorization"), form)
    request.state.sim_client_id = app.client_id
    if grant_type == "authorization_code":
        code = form.get("code")
        if not code:
            raise AccountsError("invalid_request", "code must be supplied")
        issued = state.tokens.exchange_code(
            client_id=app.client_id,
            code=code,
            redirect_uri=form.get("redirect_uri"),
            code_verifier=form.get("code_verifier"),
            confidential=confidential,
        )
    else:
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            raise AccountsError("invalid_request", "refresh_token must be supplied")
        issued = state.tokens.refresh(
            client_id=app.client_id, refresh_token=refresh_token, confidential=confidential
        )
    request.state.sim_user_id = issued.user_id
    # Token responses must not be cached (RFC 6749 §5.1).
    return JSONResponse(issued.body(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
