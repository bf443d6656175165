"""Spotify credentials: encrypt on the way in, hand out valid access tokens on the way out.

At most one refresh per user runs at a time across every auth replica (a Redis lock);
callers that waited on the lock reuse the token the winner stored instead of refreshing
again, which matters because PKCE refresh tokens rotate and a second refresh with the old
token would be refused.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from auth_service.models import StoredCredentials, User
from auth_service.repository import UserRepository
from auth_service.sessions import SessionService
from echostats_platform.crypto import DecryptionError, TokenCipher
from echostats_platform.errors import (
    REASON_NO_SPOTIFY_CREDENTIALS,
    REASON_REAUTH_REQUIRED,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from echostats_spotify.accounts import InvalidGrant, SpotifyAccountsClient, TokenGrant

log = logging.getLogger(__name__)

_LOCK_PREFIX = "auth:refresh-lock:"


def _aad(spotify_id: str, field: str) -> str:
    return f"spotify:{spotify_id}:{field}"


class CredentialService:
    """Stores Spotify tokens encrypted and returns valid access tokens on request."""

    def __init__(
        self,
        *,
        users: UserRepository,
        sessions: SessionService,
        cipher: TokenCipher,
        accounts: SpotifyAccountsClient,
        redis: Redis,
        refresh_margin_seconds: int,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._cipher = cipher
        self._accounts = accounts
        self._redis = redis
        self._margin = timedelta(seconds=refresh_margin_seconds)

    def encrypt(self, user: User, grant: TokenGrant) -> StoredCredentials:
        """Encrypt a token grant for storage on `user`."""
        return StoredCredentials(
            access_token_encrypted=self._cipher.encrypt(
                grant.access_token, associated_data=_aad(user.spotify_id, "access_token")
            ),
            refresh_token_encrypted=self._cipher.encrypt(
                grant.refresh_token, associated_data=_aad(user.spotify_id, "refresh_token")
            ),
            expires_at=grant.expires_at,
            scope=grant.scope,
        )

    async def store(self, user: User, grant: TokenGrant) -> None:
        """Save a grant (after login or refresh)."""
        await self._users.save_credentials(user.id, self.encrypt(user, grant))

    async def _load(self, user_id: str) -> tuple[User, StoredCredentials]:
        user = await self._users.get(user_id)
        if user is None:
            raise NotFound("User not found", reason="USER_NOT_FOUND")
        if user.reauth_required:
            raise Unauthenticated("Spotify sign-in required", reason=REASON_REAUTH_REQUIRED)
        if user.credentials is None:
            raise Unauthenticated(
                "No Spotify credentials for this user", reason=REASON_NO_SPOTIFY_CREDENTIALS
            )
        return user, user.credentials

    def _decrypt(self, user: User, value: str, field: str) -> str:
        try:
            return self._cipher.decrypt(value, associated_data=_aad(user.spotify_id, field))
        except DecryptionError as exc:
            # Unreadable tokens (lost key, tampering) cannot be used: ask for a new sign-in.
            log.error("stored spotify token cannot be decrypted", extra={"user_id": user.id})
            raise Unauthenticated(
                "Spotify sign-in required", reason=REASON_REAUTH_REQUIRED
            ) from exc

    async def get_access_token(
        self, user_id: str, *, force_refresh: bool = False, rejected_token: str = ""
    ) -> tuple[str, datetime]:
        """A valid access token and its expiry, refreshing when needed.

        With `rejected_token` (the token Spotify just refused), a stored token that already
        differs from it is returned as is: someone else refreshed meanwhile, and callers
        that saw a 401 at slightly different times share one refresh.
        """
        user, creds = await self._load(user_id)
        current = self._decrypt(user, creds.access_token_encrypted, "access_token")
        if rejected_token and current != rejected_token:
            return current, creds.expires_at
        still_fresh = creds.expires_at - self._margin > datetime.now(UTC)
        if still_fresh and not force_refresh and not rejected_token:
            return current, creds.expires_at
        return await self._refresh(user_id, seen=creds)

    async def refresh_now(self, user_id: str) -> datetime:
        """Refresh the user's access token now; returns the new expiry."""
        _, creds = await self._load(user_id)
        _, expires_at = await self._refresh(user_id, seen=creds)
        return expires_at

    async def _refresh(self, user_id: str, *, seen: StoredCredentials) -> tuple[str, datetime]:
        lock = self._redis.lock(_LOCK_PREFIX + user_id, timeout=30, blocking_timeout=20)
        if not await lock.acquire():
            raise Unavailable("token refresh is busy, try again", reason="REFRESH_BUSY")
        try:
            user, creds = await self._load(user_id)
            if creds.access_token_encrypted != seen.access_token_encrypted:
                # Another caller refreshed while we waited for the lock: use its token.
                token = self._decrypt(user, creds.access_token_encrypted, "access_token")
                return token, creds.expires_at
            refresh_token = self._decrypt(user, creds.refresh_token_encrypted, "refresh_token")
            try:
                grant = await self._accounts.refresh(refresh_token, user_id=user.id)
            except InvalidGrant as exc:
                now = datetime.now(UTC)
                await self._users.mark_reauth_required(user.id, now)
                await self._sessions.revoke_all(user.id)
                log.warning("spotify refused the refresh token", extra={"user_id": user.id})
                raise Unauthenticated(
                    "Spotify sign-in required", reason=REASON_REAUTH_REQUIRED
                ) from exc
            await self.store(user, grant)
            return grant.access_token, grant.expires_at
        finally:
            try:
                await lock.release()
            except Exception:
                log.debug("refresh lock already released")
