"""Session tokens: a signed JWT naming a server-side session, so logout can end it.

The token is the cookie value and also works as a Bearer token. The signature rejects
forged or altered tokens before any database lookup; the stored session decides revocation.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt

from auth_service.models import Session, User
from auth_service.repository import SessionRepository, UserRepository
from echostats_platform.errors import Unauthenticated

_ALGORITHM = "HS256"
_ISSUER = "echostats"


class SessionService:
    """Opens, resolves and revokes sessions."""

    def __init__(
        self,
        *,
        sessions: SessionRepository,
        users: UserRepository,
        secret: str,
        ttl_seconds: int,
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_seconds)

    async def open(self, user: User, now: datetime) -> tuple[str, Session]:
        """Create a session for `user`; returns (token, session)."""
        session = Session(
            id=secrets.token_urlsafe(24),
            user_id=user.id,
            created_at=now,
            expires_at=now + self._ttl,
            revoked_at=None,
        )
        await self._sessions.create(session)
        token = jwt.encode(
            {
                "iss": _ISSUER,
                "sub": user.id,
                "sid": session.id,
                "iat": int(now.timestamp()),
                "exp": int(session.expires_at.timestamp()),
            },
            self._secret,
            algorithm=_ALGORITHM,
        )
        return token, session

    def _claims(self, token: str) -> dict[str, object]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={"require": ["exp", "sub", "sid", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("Not authenticated", reason="INVALID_SESSION") from exc
        return claims

    async def resolve(self, token: str) -> tuple[User, Session]:
        """The user and session a token names; Unauthenticated otherwise."""
        if not token or len(token) > 4096:
            raise Unauthenticated("Not authenticated", reason="INVALID_SESSION")
        claims = self._claims(token)
        session = await self._sessions.get(str(claims["sid"]))
        now = datetime.now(UTC)
        if session is None or session.user_id != claims["sub"] or not session.is_active(now):
            raise Unauthenticated("Not authenticated", reason="SESSION_ENDED")
        user = await self._users.get(session.user_id)
        if user is None:
            raise Unauthenticated("Not authenticated", reason="SESSION_ENDED")
        return user, session

    async def revoke(self, token: str) -> bool:
        """End the session a (validly signed) token names; False when nothing was revoked."""
        try:
            claims = self._claims(token)
        except Unauthenticated:
            return False
        return await self._sessions.revoke(str(claims["sid"]), datetime.now(UTC))

    async def revoke_all(self, user_id: str) -> int:
        """End every session of a user (they must sign in again)."""
        return await self._sessions.revoke_all_for_user(user_id, datetime.now(UTC))
