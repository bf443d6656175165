"""CapabilityRegistry: classification, TTL in memory and in a real Redis, degraded storage."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from echostats_spotify import (
    Capability,
    CapabilityRegistry,
    InMemoryCapabilityStore,
    RedisCapabilityStore,
    capability_for,
)
from echostats_spotify.capabilities import indicates_closure


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("/v1/audio-features", Capability.AUDIO_FEATURES),
        ("/v1/audio-features/4uLU6hMCjMI75M1A2tKUQC", Capability.AUDIO_FEATURES),
        ("/v1/recommendations", Capability.RECOMMENDATIONS),
        ("/v1/browse/featured-playlists", Capability.FEATURED_PLAYLISTS),
        ("/v1/browse/new-releases", Capability.NEW_RELEASES),
        ("/v1/tracks", Capability.BATCH_TRACKS),
        ("/v1/artists", Capability.BATCH_ARTISTS),
        ("/v1/albums", Capability.BATCH_ALBUMS),
        ("/v1/tracks/4uLU6hMCjMI75M1A2tKUQC", None),
        ("/v1/me/player", None),
    ],
)
def test_capability_for_classifies_endpoint_families(endpoint, expected):
    assert capability_for(endpoint) == expected


def test_closure_needs_the_right_status_and_a_json_error():
    forbidden = {"error": {"status": 403, "message": "Forbidden"}}
    assert indicates_closure("/v1/tracks", 403, forbidden, "Forbidden")
    assert indicates_closure("/v1/audio-features", 403, {"error": {"status": 403}}, None)
    # A 404 for one id is an unknown track, not a withdrawn endpoint.
    assert not indicates_closure("/v1/audio-features/abc", 404, {"error": {"status": 404}}, None)
    assert not indicates_closure("/v1/me/player", 403, forbidden, "Forbidden")
    assert not indicates_closure(
        "/v1/audio-features",
        403,
        {"error": {"status": 403, "message": "Insufficient client scope"}},
        "Insufficient client scope",
    )


async def test_in_memory_closure_expires_after_its_ttl():
    clock = FakeClock()
    registry = CapabilityRegistry(InMemoryCapabilityStore(clock), default_ttl=100)

    await registry.mark_closed(Capability.AUDIO_FEATURES)
    await registry.mark_closed(Capability.RECOMMENDATIONS, ttl=10)
    assert await registry.is_closed(Capability.AUDIO_FEATURES)
    assert await registry.is_closed(Capability.RECOMMENDATIONS)

    clock.now += 11
    assert await registry.is_closed(Capability.AUDIO_FEATURES)
    assert not await registry.is_closed(Capability.RECOMMENDATIONS)

    clock.now += 90
    assert not await registry.is_closed(Capability.AUDIO_FEATURES)


async def test_mark_open_forgets_a_closure():
    registry = CapabilityRegistry(InMemoryCapabilityStore())
    await registry.mark_closed("batch-tracks")

    await registry.mark_open("batch-tracks")

    assert not await registry.is_closed("batch-tracks")


async def test_redis_store_shares_closures_with_a_ttl(redis):
    prefix = f"test-{uuid.uuid4().hex}:spotify-closed:"
    replica_a = CapabilityRegistry(RedisCapabilityStore(redis, key_prefix=prefix))
    replica_b = CapabilityRegistry(RedisCapabilityStore(redis, key_prefix=prefix))

    await replica_a.mark_closed(Capability.FEATURED_PLAYLISTS, ttl=0.3)

    assert await replica_b.is_closed(Capability.FEATURED_PLAYLISTS)
    assert await redis.exists(f"{prefix}featured-playlists") == 1
    assert 0 < await redis.pttl(f"{prefix}featured-playlists") <= 300
    assert not await replica_b.is_closed(Capability.AUDIO_FEATURES)

    await asyncio.sleep(0.4)
    assert not await replica_b.is_closed(Capability.FEATURED_PLAYLISTS)


async def test_redis_store_clear(redis):
    store = RedisCapabilityStore(redis, key_prefix=f"test-{uuid.uuid4().hex}:")
    registry = CapabilityRegistry(store)
    await registry.mark_closed("batch-albums")

    await registry.mark_open("batch-albums")

    assert not await registry.is_closed("batch-albums")


async def test_unreachable_storage_counts_as_open():
    class Down:
        async def set_closed(self, capability: str, ttl_seconds: float) -> None:
            raise ConnectionError("redis down")

        async def is_closed(self, capability: str) -> bool:
            raise ConnectionError("redis down")

        async def clear(self, capability: str) -> None:
            raise ConnectionError("redis down")

    registry = CapabilityRegistry(Down())

    await registry.mark_closed("audio-features")
    assert await registry.is_closed("audio-features") is False
    await registry.mark_open("audio-features")
