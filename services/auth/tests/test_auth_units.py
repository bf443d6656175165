"""Unit tests without servers: the /v1/me profile, the dev-login switch, the state binding."""

from __future__ import annotations

import base64

import pytest

from auth_service.login import profile_from_me
from auth_service.models import OAuthState
from auth_service.oauth_state import binding_matches, hash_binding
from auth_service.settings import AuthSettings

# /v1/me as an Extended Quota app with user-read-private and user-read-email sees it.
FULL_ME = {
    "id": "sim_alice",
    "display_name": "Alice Example",
    "images": [
        {"url": "https://i.scdn.test/alice-300.jpg", "height": 300, "width": 300},
        {"url": "https://i.scdn.test/alice-64.jpg", "height": 64, "width": 64},
    ],
    "product": "premium",
    "email": "alice@example.com",
    "country": "SE",
    "account_id": "acc123",
    "followers": {"href": None, "total": 12},
}


def test_profile_from_full_me_keeps_every_field() -> None:
    profile = profile_from_me(FULL_ME)

    assert profile.spotify_id == "sim_alice"
    assert profile.display_name == "Alice Example"
    # The first image is the largest one Spotify lists.
    assert profile.image_url == "https://i.scdn.test/alice-300.jpg"
    assert profile.product == "premium"
    assert profile.email == "alice@example.com"
    assert profile.country == "SE"
    assert profile.account_id == "acc123"


def test_profile_from_dev_mode_me_leaves_missing_fields_none() -> None:
    # A Development Mode app gets no product, email, country, followers (Feb 2026).
    dev_me = {
        key: value
        for key, value in FULL_ME.items()
        if key not in {"product", "email", "country", "followers", "explicit_content"}
    }

    profile = profile_from_me(dev_me)

    assert profile.product is None
    assert profile.email is None
    assert profile.country is None
    assert profile.spotify_id == "sim_alice"
    assert profile.display_name == "Alice Example"
    assert profile.account_id == "acc123"


def test_profile_without_name_or_images_falls_back_to_the_id() -> None:
    profile = profile_from_me({"id": "sim_bob", "display_name": None, "images": []})

    assert profile.display_name == "sim_bob"
    assert profile.image_url is None
    assert profile.account_id is None


# Non-default secrets: production refuses to start with the development ones.
PRODUCTION_SECRETS = {
    "ECHOSTATS_SESSION_SECRET": "s" * 48,
    "ECHOSTATS_TOKEN_ENCRYPTION_KEYS": "k1:" + base64.urlsafe_b64encode(b"p" * 32).decode(),
    "ECHOSTATS_SPOTIFY_CLIENT_SECRET": "a-real-looking-client-secret",
}


@pytest.mark.parametrize(
    ("environment", "enabled", "allowed"),
    [
        # Production never allows it, whatever the switch says.
        ("production", None, False),
        ("production", "true", False),
        ("production", "false", False),
        # Development allows it by default and honours an explicit "off".
        ("development", None, True),
        ("development", "true", True),
        ("development", "false", False),
        ("demo", None, True),
        ("test", "false", False),
    ],
)
def test_dev_login_allowed_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, environment: str, enabled: str | None, allowed: bool
) -> None:
    monkeypatch.setenv("ECHOSTATS_ENVIRONMENT", environment)
    for name, value in PRODUCTION_SECRETS.items():
        monkeypatch.setenv(name, value)
    if enabled is None:
        monkeypatch.delenv("ECHOSTATS_DEV_LOGIN_ENABLED", raising=False)
    else:
        monkeypatch.setenv("ECHOSTATS_DEV_LOGIN_ENABLED", enabled)

    assert AuthSettings().dev_login_allowed is allowed


def test_binding_matches_only_the_browser_that_started_the_login() -> None:
    state = OAuthState(
        state="st", browser_binding_hash=hash_binding("the-cookie-value"), code_verifier="v"
    )

    assert binding_matches(state, "the-cookie-value") is True
    assert binding_matches(state, "another-browser") is False
    assert binding_matches(state, "") is False
    # Only the hash is stored: presenting the stored hash itself must not pass.
    assert binding_matches(state, state.browser_binding_hash) is False
