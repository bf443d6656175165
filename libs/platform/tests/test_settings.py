"""Typed settings: parsing, validation and the refusal of development secrets in production."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from echostats_platform.settings import (
    CommonSettings,
    Environment,
    SecretsGuard,
    SessionSettings,
    SpotifySettings,
    TokenEncryptionSettings,
)


class ExampleSettings(
    SecretsGuard, CommonSettings, SpotifySettings, TokenEncryptionSettings, SessionSettings
):
    pass


def _key() -> str:
    return "prod1:" + base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_development_accepts_built_in_defaults():
    settings = ExampleSettings(environment="development")
    assert settings.environment is Environment.DEVELOPMENT
    assert list(settings.token_keys()) == ["dev"]


def test_production_refuses_default_secrets(monkeypatch):
    monkeypatch.delenv("ECHOSTATS_ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="ECHOSTATS_SESSION_SECRET"):
        ExampleSettings()


def test_production_with_real_secrets_from_environment(monkeypatch):
    monkeypatch.setenv("ECHOSTATS_ENVIRONMENT", "production")
    monkeypatch.setenv("ECHOSTATS_SESSION_SECRET", "x" * 48)
    monkeypatch.setenv("ECHOSTATS_SPOTIFY_CLIENT_SECRET", "real-secret")
    monkeypatch.setenv(
        "ECHOSTATS_TOKEN_ENCRYPTION_KEYS", f"{_key()},{_key().replace('prod1', 'old')}"
    )
    settings = ExampleSettings()
    assert list(settings.token_keys()) == ["prod1", "old"]
    assert all(len(key) == 32 for key in settings.token_keys().values())


@pytest.mark.parametrize(
    "value, message",
    [
        ("nokeyid", "key id"),
        ("k1:not-base64!!", "32 bytes|base64"),
        ("k1:" + base64.urlsafe_b64encode(b"short").decode(), "32 bytes"),
    ],
)
def test_bad_encryption_keys_are_refused(monkeypatch, value, message):
    monkeypatch.setenv("ECHOSTATS_TOKEN_ENCRYPTION_KEYS", value)
    with pytest.raises(ValidationError, match=message):
        ExampleSettings(environment="development")


def test_short_session_secret_is_refused():
    with pytest.raises(ValidationError, match="at least 32"):
        ExampleSettings(environment="development", session_secret="short")
