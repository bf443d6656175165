"""Spotify Accounts: the authorize URL, PKCE helpers, code exchange and token refresh.

A confidential client (client secret configured) authenticates to /api/token with
`Authorization: Basic base64(id:secret)`; a public PKCE client (empty secret) sends its
`client_id` in the form body instead. Login always uses PKCE (S256), for both kinds.

Errors: `invalid_grant` raises `InvalidGrant` (the user must authorize again);
`invalid_client` raises `InvalidClient` (our configuration is wrong); other refusals raise
`TokenRequestRejected`; 5xx, network errors and timeouts are retried (bounded, see
`transport`) and then raise `SpotifyUpstreamError`; 429 behaves as for the Web API.
Every exchange with /api/token is recorded like a Web API call.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from echostats_platform.settings import SpotifySettings
from echostats_spotify.errors import (
    InvalidClient,
    InvalidGrant,
    SpotifyHTTPError,
    SpotifyUnauthorized,
    SpotifyUpstreamError,
    TokenRequestRejected,
    error_details,
    error_from_response,
    parse_json_body,
)
from echostats_spotify.recording import CallRecorder, utc_now
from echostats_spotify.transport import RetryPolicy, exchange, send_with_retries

TOKEN_ENDPOINT = "/api/token"  # noqa: S105 - a URL path, not a secret
AUTHORIZE_ENDPOINT = "/authorize"

# RFC 7636 §4.1: the verifier is 43-128 characters of [A-Z a-z 0-9 - . _ ~].
_VERIFIER_ALPHABET = string.ascii_letters + string.digits + "-._~"
_VERIFIER_CHARS = frozenset(_VERIFIER_ALPHABET)


def new_code_verifier(length: int = 64) -> str:
    """A random PKCE code verifier (RFC 7636: 43-128 unreserved characters)."""
    if not 43 <= length <= 128:
        raise ValueError("a PKCE code verifier is 43 to 128 characters long")
    return "".join(secrets.choice(_VERIFIER_ALPHABET) for _ in range(length))


def code_challenge_s256(verifier: str) -> str:
    """The S256 challenge: base64url(SHA-256(verifier)) without padding."""
    if not 43 <= len(verifier) <= 128 or not set(verifier) <= _VERIFIER_CHARS:
        raise ValueError("not a valid PKCE code verifier (RFC 7636 §4.1)")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """Tokens from Spotify Accounts. Tokens are kept out of repr so they never reach logs."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    # Aware UTC: when the access token stops working (now + expires_in at receipt).
    expires_at: datetime
    # Space-separated, as Spotify returns it.
    scope: str

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes as a set."""
        return frozenset(self.scope.split())

    def expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        """Whether the access token expires in less than `seconds` (refresh ahead of time)."""
        return (now or utc_now()) + timedelta(seconds=seconds) >= self.expires_at


class SpotifyAccountsClient:
    """Talks to accounts.spotify.com (or the simulator): authorize URL, exchange, refresh."""

    def __init__(
        self,
        settings: SpotifySettings,
        http: httpx.AsyncClient,
        recorder: CallRecorder,
        *,
        caller: str,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._http = http
        self._recorder = recorder
        self._caller = caller
        self._policy = policy or RetryPolicy()
        self._clock = clock
        self._base = settings.spotify_accounts_url.rstrip("/")

    @property
    def is_confidential(self) -> bool:
        """True when a client secret is configured (Basic auth), False for a PKCE client."""
        return bool(self._settings.spotify_client_secret)

    def authorize_url(
        self,
        state: str,
        code_challenge: str,
        scopes: Sequence[str],
        *,
        show_dialog: bool = False,
    ) -> str:
        """The URL to send the browser to: authorization code flow with PKCE (S256)."""
        params = {
            "client_id": self._settings.spotify_client_id,
            "response_type": "code",
            "redirect_uri": self._settings.spotify_redirect_uri,
            "state": state,
            "scope": " ".join(scopes),
            "code_challenge_method": "S256",
            "code_challenge": code_challenge,
        }
        if show_dialog:
            params["show_dialog"] = "true"
        # quote (not quote_plus): scopes are joined by %20, as Spotify documents.
        return f"{self._base}{AUTHORIZE_ENDPOINT}?{urlencode(params, quote_via=quote)}"

    async def exchange_code(
        self, code: str, code_verifier: str, *, user_id: str | None = None
    ) -> TokenGrant:
        """Exchange an authorization code (and its PKCE verifier) for tokens."""
        payload = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._settings.spotify_redirect_uri,
                "code_verifier": code_verifier,
            },
            user_id=user_id,
        )
        return self._grant(payload, previous_refresh_token=None)

    async def refresh(self, refresh_token: str, *, user_id: str | None = None) -> TokenGrant:
        """New tokens from a refresh token; keeps the old refresh token if none comes back."""
        payload = await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            user_id=user_id,
        )
        return self._grant(payload, previous_refresh_token=refresh_token)

    async def _token_request(self, form: dict[str, str], *, user_id: str | None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if self.is_confidential:
            raw = f"{self._settings.spotify_client_id}:{self._settings.spotify_client_secret}"
            headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode("ascii")
        else:
            form = {**form, "client_id": self._settings.spotify_client_id}
        url = self._base + TOKEN_ENDPOINT
        attempt = 0

        async def send() -> httpx.Response:
            nonlocal attempt
            attempt += 1
            return await exchange(
                self._http,
                self._recorder,
                settings=self._settings,
                caller=self._caller,
                method="POST",
                url=url,
                endpoint=TOKEN_ENDPOINT,
                user_id=user_id,
                attempt=attempt,
                data=form,
                headers=headers,
            )

        # Retried like a GET: a token request that failed on Spotify's side left nothing
        # behind worth protecting (a consumed code or a rotated refresh token is lost
        # either way), and a transient failure at login is worth another try.
        response = await send_with_retries(
            send,
            settings=self._settings,
            policy=self._policy,
            method="POST",
            endpoint=TOKEN_ENDPOINT,
            idempotent=True,
        )
        if response.status_code >= 400:
            raise _token_error(response)
        payload = parse_json_body(response)
        if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
            raise SpotifyUpstreamError(
                "Spotify Accounts answered without an access token",
                status_code=response.status_code,
                method="POST",
                endpoint=TOKEN_ENDPOINT,
                text=response.text[:300],
            )
        return payload

    def _grant(self, payload: dict[str, Any], *, previous_refresh_token: str | None) -> TokenGrant:
        refresh_token = payload.get("refresh_token") or previous_refresh_token
        if not isinstance(refresh_token, str) or not refresh_token:
            raise SpotifyUpstreamError(
                "Spotify Accounts answered a code exchange without a refresh token",
                status_code=200,
                method="POST",
                endpoint=TOKEN_ENDPOINT,
            )
        try:
            expires_in = float(payload.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600.0
        scope = payload.get("scope")
        return TokenGrant(
            access_token=payload["access_token"],
            refresh_token=refresh_token,
            expires_at=self._clock() + timedelta(seconds=expires_in),
            scope=scope if isinstance(scope, str) else "",
        )


def _token_error(response: httpx.Response) -> SpotifyHTTPError:
    """Map an /api/token refusal (RFC 6749 §5.2 error codes) to a domain error."""
    status = response.status_code
    if status == 429 or status >= 500:
        return error_from_response(response, method="POST", endpoint=TOKEN_ENDPOINT)
    details = error_details(response)
    code = details.reason
    description = details.message or f"Spotify Accounts answered {status}"
    common: dict[str, Any] = {
        "status_code": status,
        "method": "POST",
        "endpoint": TOKEN_ENDPOINT,
        "body": details.body,
        "text": response.text[:300] if response.content else "",
        "spotify_reason": code,
    }
    if code == "invalid_grant":
        return InvalidGrant(f"Spotify refused the grant (invalid_grant): {description}", **common)
    if code == "invalid_client" or (status == 401 and code is None):
        return InvalidClient(
            f"Spotify refused the app's client credentials: {description}", **common
        )
    if status == 401:
        return SpotifyUnauthorized(f"Spotify Accounts refused the request: {description}", **common)
    reason = code.upper() if code else None
    return TokenRequestRejected(
        f"Spotify Accounts refused the token request ({code or status}): {description}",
        reason=reason,
        **common,
    )
