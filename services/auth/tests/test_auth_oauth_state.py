"""OAuthStateStore against a real Redis: one-time use, expiry, only a hash of the binding."""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis

from auth_service.oauth_state import OAuthStateStore, binding_matches, hash_binding

VERIFIER = "v" * 64
STATE_KEY_PREFIX = "auth:oauth-state:"


async def test_consume_returns_the_state_once(redis: Redis) -> None:
    store = OAuthStateStore(redis, ttl_seconds=600)
    state, binding = await store.create(code_verifier=VERIFIER)

    first = await store.consume(state.state)
    second = await store.consume(state.state)

    assert first == state
    assert first is not None and first.code_verifier == VERIFIER
    assert binding_matches(first, binding)
    assert second is None
    assert await redis.exists(STATE_KEY_PREFIX + state.state) == 0


async def test_concurrent_callbacks_consume_a_state_at_most_once(redis: Redis) -> None:
    store = OAuthStateStore(redis, ttl_seconds=600)
    state, _ = await store.create(code_verifier=VERIFIER)

    results = await asyncio.gather(*(store.consume(state.state) for _ in range(10)))

    assert sum(result is not None for result in results) == 1


async def test_state_is_stored_with_its_ttl_and_without_the_raw_binding(redis: Redis) -> None:
    store = OAuthStateStore(redis, ttl_seconds=600)
    state, binding = await store.create(code_verifier=VERIFIER)

    raw = await redis.get(STATE_KEY_PREFIX + state.state)
    ttl = await redis.ttl(STATE_KEY_PREFIX + state.state)

    assert raw is not None
    assert json.loads(raw) == {"binding": hash_binding(binding), "verifier": VERIFIER}
    assert binding not in raw
    assert 590 <= ttl <= 600
    # Every login gets its own state and binding.
    other, other_binding = await store.create(code_verifier=VERIFIER)
    assert other.state != state.state and other_binding != binding


async def test_state_expires_after_its_ttl(redis: Redis) -> None:
    store = OAuthStateStore(redis, ttl_seconds=1)
    state, _ = await store.create(code_verifier=VERIFIER)

    await asyncio.sleep(1.2)

    assert await store.consume(state.state) is None


async def test_unknown_empty_and_oversized_states_are_refused(redis: Redis) -> None:
    store = OAuthStateStore(redis, ttl_seconds=600)

    assert await store.consume("never-issued") is None
    assert await store.consume("") is None
    # Refused before Redis is asked: an attacker cannot make us look up huge keys.
    huge = "x" * 257
    await redis.set(STATE_KEY_PREFIX + huge, json.dumps({"binding": "b", "verifier": "v"}), ex=60)
    assert await store.consume(huge) is None
