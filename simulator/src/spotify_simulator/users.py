"""Simulated Spotify users: the seeded accounts and the user objects the API returns.

Seeded users are fixed values (no RNG, no clock), so every start serves the same people:
`sim_alice` (premium, the default sign-in), `sim_bob` (free) and `demo_user`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from echostats_synthetic.ids import image_set, stable_id

PRODUCTS = ("premium", "free", "open")


@dataclass(frozen=True, slots=True)
class SimUser:
    """One simulated Spotify account."""

    id: str
    display_name: str | None
    product: str = "premium"
    country: str = "SE"
    email: str | None = None
    followers: int = 0
    explicit_filter_enabled: bool = False
    explicit_filter_locked: bool = False
    has_image: bool = True
    account_id: str = field(default="")

    def __post_init__(self) -> None:
        if self.product not in PRODUCTS:
            raise ValueError(f"product must be one of {PRODUCTS}")
        if not self.account_id:
            # account_id is stable per user (ref §2, May 2026), so derive it from the id.
            object.__setattr__(self, "account_id", stable_id("account", self.id, length=10))
        if self.email is None:
            object.__setattr__(self, "email", f"{self.id}@example.com")

    @property
    def is_premium(self) -> bool:
        """Player commands need Premium (ref §2, PREMIUM_REQUIRED)."""
        return self.product == "premium"

    @property
    def uri(self) -> str:
        """The user's Spotify URI."""
        return f"spotify:user:{self.id}"

    def images(self) -> list[dict[str, Any]]:
        """Profile images; users without a picture get an empty list, as on Spotify."""
        return image_set("user", self.id, (300, 64)) if self.has_image else []


def seeded_users() -> list[SimUser]:
    """The deterministic starting population, default sign-in first."""
    return [
        SimUser(
            id="sim_alice",
            display_name="Alice Example",
            product="premium",
            country="SE",
            email="alice@example.com",
            followers=12,
        ),
        SimUser(
            id="sim_bob",
            display_name="Bob Example",
            product="free",
            country="US",
            email="bob@example.com",
            followers=3,
            has_image=False,
        ),
        SimUser(
            id="demo_user",
            display_name="Demo User",
            product="premium",
            country="GB",
            email="demo@example.com",
            followers=42,
        ),
    ]


def public_user_object(user: SimUser, api_base: str) -> dict[str, Any]:
    """The public user object (playlist owners, `GET /users/{id}`)."""
    return {
        "display_name": user.display_name,
        "external_urls": {"spotify": f"https://open.spotify.com/user/{user.id}"},
        "href": f"{api_base}/v1/users/{user.id}",
        "id": user.id,
        "images": user.images(),
        "type": "user",
        "uri": user.uri,
    }


def private_user_object(user: SimUser, api_base: str, scopes: frozenset[str]) -> dict[str, Any]:
    """`GET /me` with every field; callers strip fields for scope and mode.

    As on Spotify, `email` needs `user-read-email` and `country`, `product` and
    `explicit_content` need `user-read-private`.
    """
    body = public_user_object(user, api_base)
    body["account_id"] = user.account_id
    body["followers"] = {"href": None, "total": user.followers}
    if "user-read-private" in scopes:
        body["country"] = user.country
        body["product"] = user.product
        body["explicit_content"] = {
            "filter_enabled": user.explicit_filter_enabled,
            "filter_locked": user.explicit_filter_locked,
        }
    if "user-read-email" in scopes:
        body["email"] = user.email
    return body
