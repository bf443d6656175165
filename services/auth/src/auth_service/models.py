"""Domain records of the auth context (what the repository stores and returns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StoredCredentials:
    """Spotify tokens as stored: encrypted, with their key ids inside the ciphertexts."""

    access_token_encrypted: str
    refresh_token_encrypted: str
    expires_at: datetime
    scope: str


@dataclass(frozen=True)
class User:
    """An EchoStats user linked to one Spotify account."""

    id: str
    spotify_id: str
    display_name: str
    image_url: str | None
    product: str | None
    reauth_required: bool
    credentials: StoredCredentials | None


@dataclass(frozen=True)
class SpotifyProfile:
    """The fields of Spotify's GET /v1/me that we keep."""

    spotify_id: str
    display_name: str
    image_url: str | None
    product: str | None
    email: str | None
    country: str | None
    account_id: str | None


@dataclass(frozen=True)
class Session:
    """A server-side session; the token given to the browser names it."""

    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def is_active(self, now: datetime) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True)
class OAuthState:
    """What the login remembers between /login and /callback (kept in Redis)."""

    state: str
    browser_binding_hash: str
    code_verifier: str
