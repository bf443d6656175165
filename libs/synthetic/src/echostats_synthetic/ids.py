"""Spotify-style identifiers, stable image URLs and derived seeds.

Random ids come from a caller-supplied seeded `random.Random`, so the catalog is the same
on every start; `stable_id` and `stable_seed` derive an id or an RNG seed from names (user
`account_id`s, playlist ids, per-user history seeds) without any RNG state at all.
"""

from __future__ import annotations

import hashlib
import random

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SPOTIFY_ID_LENGTH = 22


def random_id(rng: random.Random, length: int = SPOTIFY_ID_LENGTH) -> str:
    """Draw a base62 id of `length` characters from `rng`."""
    return "".join(rng.choices(BASE62, k=length))


def stable_id(*parts: str, length: int = SPOTIFY_ID_LENGTH) -> str:
    """Derive a base62 id deterministically from `parts` (SHA-256, not secret)."""
    number = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest(), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    return "".join(chars)


def is_spotify_id(value: str) -> bool:
    """True if `value` looks like a Spotify base62 id."""
    return len(value) == SPOTIFY_ID_LENGTH and all(c in BASE62 for c in value)


def image_set(kind: str, entity_id: str, sizes: tuple[int, ...] = (640, 300, 64)) -> list[dict]:
    """Spotify-like image objects (largest first) whose URLs are stable for an entity."""
    images = []
    for size in sizes:
        # Spotify image ids are 40 hex characters starting with "ab67".
        digest = hashlib.sha256(f"{kind}:{entity_id}:{size}".encode()).hexdigest()
        images.append(
            {"url": f"https://i.scdn.co/image/ab67{digest[:36]}", "height": size, "width": size}
        )
    return images


def image_url(kind: str, entity_id: str, size: int = 640) -> str:
    """The URL of one image in `image_set(kind, entity_id)` (the largest by default)."""
    return image_set(kind, entity_id, (size,))[0]["url"]


def stable_seed(*parts: str) -> int:
    """A 64-bit RNG seed derived from `parts`; unlike `hash()`, the same in every process."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")
