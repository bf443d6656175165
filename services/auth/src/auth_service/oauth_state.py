"""One-time OAuth login states in Redis: created at /login, consumed atomically at /callback."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from redis.asyncio import Redis

from auth_service.models import OAuthState

_KEY_PREFIX = "auth:oauth-state:"


def hash_binding(browser_binding: str) -> str:
    """SHA-256 of the browser binding; only the hash is stored."""
    return hashlib.sha256(browser_binding.encode()).hexdigest()


def binding_matches(state: OAuthState, browser_binding: str) -> bool:
    """Constant-time check that the callback comes from the browser that started the login."""
    return hmac.compare_digest(state.browser_binding_hash, hash_binding(browser_binding))


class OAuthStateStore:
    """Stores states with a TTL; `consume` is GETDEL, so a state works at most once."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self.ttl_seconds = ttl_seconds

    async def create(self, *, code_verifier: str) -> tuple[OAuthState, str]:
        """Make a new state; returns it and the raw browser binding for the cookie."""
        browser_binding = secrets.token_urlsafe(32)
        state = OAuthState(
            state=secrets.token_urlsafe(32),
            browser_binding_hash=hash_binding(browser_binding),
            code_verifier=code_verifier,
        )
        payload = json.dumps(
            {"binding": state.browser_binding_hash, "verifier": state.code_verifier}
        )
        await self._redis.set(_KEY_PREFIX + state.state, payload, ex=self.ttl_seconds)
        return state, browser_binding

    async def consume(self, state: str) -> OAuthState | None:
        """Atomically fetch and delete a state; None when unknown, expired or already used."""
        if not state or len(state) > 256:
            return None
        payload = await self._redis.getdel(_KEY_PREFIX + state)
        if payload is None:
            return None
        data = json.loads(payload)
        return OAuthState(
            state=state, browser_binding_hash=data["binding"], code_verifier=data["verifier"]
        )
