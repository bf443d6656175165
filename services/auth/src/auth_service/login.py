"""Login use cases: start the OAuth flow, complete it, and the development demo sign-in."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auth_service.after_login import AfterLogin
from auth_service.credentials import CredentialService
from auth_service.models import Session, SpotifyProfile, User
from auth_service.oauth_state import OAuthStateStore, binding_matches
from auth_service.repository import UserRepository
from auth_service.sessions import SessionService
from echostats_platform.errors import InvalidArgument, NotFound, Unauthenticated, UpstreamError
from echostats_spotify.accounts import (
    InvalidGrant,
    SpotifyAccountsClient,
    code_challenge_s256,
    new_code_verifier,
)
from echostats_spotify.client import SpotifyClient
from echostats_spotify.errors import SpotifyHTTPError

log = logging.getLogger(__name__)

DEMO_SPOTIFY_ID = "demo_user"
DEMO_DISPLAY_NAME = "Demo User"


@dataclass(frozen=True)
class LoginStart:
    """What the gateway needs to send the browser to Spotify."""

    authorize_url: str
    state: str
    browser_binding: str
    state_ttl_seconds: int


@dataclass(frozen=True)
class SignedIn:
    """A signed-in user with a fresh session."""

    user: User
    token: str
    session: Session
    created: bool


class FreshGrantTokens:
    """Token provider for the moment between the code exchange and the user's creation.

    /v1/me is read with the access token just granted; it is held under a one-off key
    for that single call. A 401 on a brand-new token is not worth a refresh.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    @contextlib.contextmanager
    def hold(self, key: str, access_token: str) -> Iterator[str]:
        """Make `access_token` available under `key` for the duration of the block."""
        self._tokens[key] = access_token
        try:
            yield key
        finally:
            self._tokens.pop(key, None)

    async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
        """The held token; replacing a refused one is not possible."""
        token = self._tokens.get(user_id)
        if token is None or rejected_token is not None:
            raise Unauthenticated("Spotify refused the new access token")
        return token


def profile_from_me(me: dict[str, Any]) -> SpotifyProfile:
    """Keep what we need of GET /v1/me (dev-mode apps get fewer fields: absent stays None)."""
    images = me.get("images") or []
    return SpotifyProfile(
        spotify_id=str(me["id"]),
        display_name=me.get("display_name") or str(me["id"]),
        image_url=images[0].get("url") if images else None,
        product=me.get("product"),
        email=me.get("email"),
        country=me.get("country"),
        account_id=me.get("account_id"),
    )


class LoginService:
    """Runs the Spotify OAuth (authorization code + PKCE S256) sign-in."""

    def __init__(
        self,
        *,
        states: OAuthStateStore,
        accounts: SpotifyAccountsClient,
        spotify: SpotifyClient,
        fresh_tokens: FreshGrantTokens,
        users: UserRepository,
        sessions: SessionService,
        credentials: CredentialService,
        after_login: AfterLogin,
        scopes: list[str],
        dev_login_allowed: bool,
    ) -> None:
        self._states = states
        self._accounts = accounts
        self._spotify = spotify
        self._fresh_tokens = fresh_tokens
        self._users = users
        self._sessions = sessions
        self._credentials = credentials
        self._after_login = after_login
        self._scopes = scopes
        self._dev_login_allowed = dev_login_allowed

    async def start(self) -> LoginStart:
        """Create a one-time state bound to the browser and build the authorize URL."""
        verifier = new_code_verifier()
        state, binding = await self._states.create(code_verifier=verifier)
        url = self._accounts.authorize_url(
            state=state.state, code_challenge=code_challenge_s256(verifier), scopes=self._scopes
        )
        return LoginStart(
            authorize_url=url,
            state=state.state,
            browser_binding=binding,
            state_ttl_seconds=self._states.ttl_seconds,
        )

    async def complete(
        self, *, code: str, state: str, browser_binding: str, spotify_error: str
    ) -> SignedIn:
        """Check the state, exchange the code, upsert the user and open a session."""
        # Consume first: a state is spent by any callback, successful or not (no replays).
        stored = await self._states.consume(state)
        if stored is None:
            raise InvalidArgument("Invalid or expired login state", reason="INVALID_STATE")
        if spotify_error:
            raise InvalidArgument(
                f"Spotify authorization failed: {spotify_error[:100]}", reason="SPOTIFY_DENIED"
            )
        if not browser_binding or not binding_matches(stored, browser_binding):
            raise InvalidArgument(
                "Login state does not belong to this browser", reason="STATE_BINDING_MISMATCH"
            )
        if not code:
            raise InvalidArgument("Missing authorization code", reason="MISSING_CODE")
        try:
            grant = await self._accounts.exchange_code(code, stored.code_verifier)
        except InvalidGrant as exc:
            raise InvalidArgument(
                "Spotify refused the authorization code", reason="INVALID_CODE"
            ) from exc
        try:
            pending_key = f"login-pending:{secrets.token_hex(8)}"
            with self._fresh_tokens.hold(pending_key, grant.access_token) as key:
                me = await self._spotify.get_json("/v1/me", user_id=key)
        except (Unauthenticated, SpotifyHTTPError) as exc:
            if isinstance(exc, UpstreamError):
                raise
            raise UpstreamError("Spotify did not return the user profile") from exc
        profile = profile_from_me(me or {})
        now = datetime.now(UTC)
        user, created = await self._users.upsert_profile(profile, now)
        await self._credentials.store(user, grant)
        user = await self._users.get(user.id) or user
        token, session = await self._sessions.open(user, now)
        log.info("user signed in", extra={"user_id": user.id, "new_user": created})
        await self._after_login.start_initial_sync(user.id)
        return SignedIn(user=user, token=token, session=session, created=created)

    async def dev_login(self) -> SignedIn:
        """Sign in the demo user (development/demo configuration only)."""
        if not self._dev_login_allowed:
            raise NotFound("Not found", reason="DEV_LOGIN_DISABLED")
        now = datetime.now(UTC)
        user, created = await self._users.upsert_profile(
            SpotifyProfile(
                spotify_id=DEMO_SPOTIFY_ID,
                display_name=DEMO_DISPLAY_NAME,
                image_url=None,
                product=None,
                email=None,
                country=None,
                account_id=None,
            ),
            now,
        )
        token, session = await self._sessions.open(user, now)
        await self._after_login.seed_demo_history(user.id)
        return SignedIn(user=user, token=token, session=session, created=created)
