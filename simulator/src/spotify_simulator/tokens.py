"""OAuth state: authorization codes, grants, access tokens and refresh tokens.

This module owns Spotify's token rules (ref §1) as atomic operations behind one lock:
- codes are single-use, live `auth_code_ttl_s` (10 min), remember client, redirect URI,
  scopes and PKCE challenge;
- a successful exchange creates a *grant* (user + client + scopes). A grant is *public*
  when the exchange was done without a client secret (PKCE app) and *confidential*
  otherwise. Public grants rotate their refresh token on every refresh and the old one
  answers `Refresh token revoked`; confidential grants keep theirs (not returned again);
- refresh tokens die `refresh_token_ttl_s` after the user's authorization (6 months);
  refreshing does not extend that;
- access tokens are bound to user, client and scopes and expire after `access_token_ttl_s`.

HTTP parsing and client authentication live in `accounts.py`; Bearer checks in `auth.py`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass, field

from .clock import Clock
from .errors import invalid_client, invalid_grant

_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass(slots=True)
class AuthCode:
    """An issued authorization code."""

    code: str
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    expires_at: float
    used: bool = False


@dataclass(slots=True)
class Grant:
    """One user's authorization of one client (what a refresh token stands for)."""

    id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    public: bool
    authorized_at: float


@dataclass(slots=True)
class AccessToken:
    """An issued access token."""

    token: str
    client_id: str
    user_id: str
    scopes: frozenset[str]
    expires_at: float
    force_expired: bool = False

    def is_expired(self, now: float) -> bool:
        """True once the lifetime ran out or a test expired it."""
        return self.force_expired or now >= self.expires_at


@dataclass(slots=True)
class RefreshToken:
    """An issued refresh token."""

    token: str
    grant: Grant
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class TokenIssue:
    """What the token endpoint answers with."""

    access_token: str
    scope: str
    expires_in: int
    user_id: str
    refresh_token: str | None = None

    def body(self) -> dict[str, object]:
        """The 200 JSON body of `POST /api/token`."""
        body: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "scope": self.scope,
            "expires_in": self.expires_in,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


def s256_challenge(verifier: str) -> str:
    """The PKCE S256 challenge for `verifier`: base64url(SHA-256) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _new_token(prefix: str) -> str:
    # Spotify's tokens are long opaque strings with recognisable prefixes (BQ.., AQ..).
    return prefix + secrets.token_urlsafe(96)


@dataclass
class TokenStore:
    """Every code and token the simulator issued, with Spotify's rules."""

    clock: Clock
    access_ttl_s: int = 3600
    code_ttl_s: int = 600
    refresh_ttl_s: int | None = None
    _codes: dict[str, AuthCode] = field(default_factory=dict)
    _access: dict[str, AccessToken] = field(default_factory=dict)
    _refresh: dict[str, RefreshToken] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # --- codes ----------------------------------------------------------------------------

    def issue_code(
        self,
        *,
        client_id: str,
        user_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        code_challenge: str | None,
    ) -> str:
        """Create a single-use authorization code."""
        code = _new_token("AQ")
        with self._lock:
            self._drop_stale_codes()
            self._codes[code] = AuthCode(
                code=code,
                client_id=client_id,
                user_id=user_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                code_challenge=code_challenge,
                expires_at=self.clock.now() + self.code_ttl_s,
            )
        return code

    def exchange_code(
        self,
        *,
        client_id: str,
        code: str,
        redirect_uri: str | None,
        code_verifier: str | None,
        confidential: bool,
    ) -> TokenIssue:
        """Redeem a code for tokens, or raise the exact Spotify `AccountsError`."""
        with self._lock:
            entry = self._codes.get(code)
            if entry is None or entry.used or entry.client_id != client_id:
                raise invalid_grant("Invalid authorization code")
            # Any redemption attempt by the right client burns the code, as OAuth servers
            # do, so a leaked code cannot be retried with guessed verifiers.
            entry.used = True
            if self.clock.now() >= entry.expires_at:
                raise invalid_grant("Authorization code expired")
            if redirect_uri != entry.redirect_uri:
                raise invalid_grant("Invalid redirect URI")
            if entry.code_challenge is not None:
                if not code_verifier or not _VERIFIER_RE.match(code_verifier):
                    raise invalid_grant("code_verifier was incorrect")
                if not hmac.compare_digest(s256_challenge(code_verifier), entry.code_challenge):
                    raise invalid_grant("code_verifier was incorrect")
            elif not confidential:
                # Neither a secret nor PKCE: the client did not authenticate at all.
                raise invalid_client("Invalid client secret")
            grant = Grant(
                id=secrets.token_hex(8),
                client_id=client_id,
                user_id=entry.user_id,
                scopes=entry.scopes,
                public=not confidential,
                authorized_at=self.clock.now(),
            )
            return self._issue(grant, with_refresh=True)

    # --- refresh --------------------------------------------------------------------------

    def refresh(self, *, client_id: str, refresh_token: str, confidential: bool) -> TokenIssue:
        """Trade a refresh token for a new access token (rotating it for public grants)."""
        with self._lock:
            entry = self._refresh.get(refresh_token)
            if entry is None or entry.grant.client_id != client_id:
                raise invalid_grant("Invalid refresh token")
            if entry.revoked:
                raise invalid_grant("Refresh token revoked")
            grant = entry.grant
            if not grant.public and not confidential:
                # A server-side grant must keep authenticating with its secret.
                raise invalid_client("Invalid client secret")
            if (
                self.refresh_ttl_s is not None
                and self.clock.now() >= grant.authorized_at + self.refresh_ttl_s
            ):
                # Spotify documents only `invalid_grant` for the 6-month expiry.
                raise invalid_grant("Invalid refresh token")
            if grant.public:
                entry.revoked = True
                return self._issue(grant, with_refresh=True)
            return self._issue(grant, with_refresh=False)

    # --- minting for tests ----------------------------------------------------------------

    def mint(
        self, *, client_id: str, user_id: str, scopes: tuple[str, ...], public: bool
    ) -> TokenIssue:
        """Issue tokens directly, as if the user had just authorized (control API)."""
        with self._lock:
            grant = Grant(
                id=secrets.token_hex(8),
                client_id=client_id,
                user_id=user_id,
                scopes=scopes,
                public=public,
                authorized_at=self.clock.now(),
            )
            return self._issue(grant, with_refresh=True)

    # --- access tokens --------------------------------------------------------------------

    def lookup_access(self, token: str) -> AccessToken | None:
        """The access token record, expired or not; None if never issued."""
        with self._lock:
            return self._access.get(token)

    def expire_access(self, user_id: str | None) -> int:
        """Expire the current access tokens of one user (or everyone); return how many."""
        count = 0
        now = self.clock.now()
        with self._lock:
            for entry in self._access.values():
                if (user_id is None or entry.user_id == user_id) and not entry.is_expired(now):
                    entry.force_expired = True
                    count += 1
        return count

    def revoke_refresh(self, user_id: str | None) -> int:
        """Revoke the live refresh tokens of one user (or everyone); return how many."""
        count = 0
        with self._lock:
            for entry in self._refresh.values():
                if (user_id is None or entry.grant.user_id == user_id) and not entry.revoked:
                    entry.revoked = True
                    count += 1
        return count

    def clear(self) -> None:
        """Forget every code and token."""
        with self._lock:
            self._codes.clear()
            self._access.clear()
            self._refresh.clear()

    # --- internals ------------------------------------------------------------------------

    def _issue(self, grant: Grant, *, with_refresh: bool) -> TokenIssue:
        now = self.clock.now()
        self._drop_dead_access(now)
        access = AccessToken(
            token=_new_token("BQ"),
            client_id=grant.client_id,
            user_id=grant.user_id,
            scopes=frozenset(grant.scopes),
            expires_at=now + self.access_ttl_s,
        )
        self._access[access.token] = access
        refresh: str | None = None
        if with_refresh:
            refresh = _new_token("AQ")
            self._refresh[refresh] = RefreshToken(token=refresh, grant=grant)
        return TokenIssue(
            access_token=access.token,
            scope=" ".join(grant.scopes),
            expires_in=self.access_ttl_s,
            user_id=grant.user_id,
            refresh_token=refresh,
        )

    def _drop_stale_codes(self) -> None:
        # Keep memory bounded in long `make dev` runs; an hour past expiry a code can only
        # ever answer "Invalid authorization code" anyway, which a missing entry also does.
        cutoff = self.clock.now() - 3600
        for code in [c for c, e in self._codes.items() if e.expires_at < cutoff]:
            del self._codes[code]

    def _drop_dead_access(self, now: float) -> None:
        # Expired tokens must still answer "The access token expired" for a while (clients
        # refresh on that message), so only tokens a day past expiry are forgotten.
        if len(self._access) < 10_000:
            return
        cutoff = now - 86_400
        for token in [t for t, e in self._access.items() if e.expires_at < cutoff]:
            del self._access[token]


__all__ = [
    "AccessToken",
    "AuthCode",
    "Grant",
    "RefreshToken",
    "TokenIssue",
    "TokenStore",
    "s256_challenge",
]
