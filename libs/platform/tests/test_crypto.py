"""AES-256-GCM token encryption with key ids."""

from __future__ import annotations

import os

import pytest

from echostats_platform.crypto import DecryptionError, TokenCipher

OLD = os.urandom(32)
NEW = os.urandom(32)


def test_round_trip_and_format():
    cipher = TokenCipher({"k1": OLD})
    value = cipher.encrypt("BQD-access-token", associated_data="spotify:alice:access_token")
    assert value.startswith("v1.k1.")
    assert "BQD" not in value
    assert cipher.decrypt(value, associated_data="spotify:alice:access_token") == "BQD-access-token"


def test_each_encryption_uses_a_fresh_nonce():
    cipher = TokenCipher({"k1": OLD})
    assert cipher.encrypt("same", associated_data="a") != cipher.encrypt(
        "same", associated_data="a"
    )


def test_associated_data_binds_the_owner():
    cipher = TokenCipher({"k1": OLD})
    value = cipher.encrypt("secret", associated_data="spotify:alice:access_token")
    with pytest.raises(DecryptionError):
        cipher.decrypt(value, associated_data="spotify:bob:access_token")


def test_tampering_is_detected():
    cipher = TokenCipher({"k1": OLD})
    value = cipher.encrypt("secret", associated_data="a")
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    with pytest.raises(DecryptionError):
        cipher.decrypt(flipped, associated_data="a")


def test_rotation_keeps_old_values_readable():
    old_cipher = TokenCipher({"k1": OLD})
    stored = old_cipher.encrypt("refresh", associated_data="a")
    rotated = TokenCipher({"k2": NEW, "k1": OLD})
    assert rotated.active_key_id == "k2"
    assert rotated.needs_rotation(stored)
    assert rotated.decrypt(stored, associated_data="a") == "refresh"
    fresh = rotated.encrypt("refresh", associated_data="a")
    assert fresh.startswith("v1.k2.") and not rotated.needs_rotation(fresh)


def test_unknown_key_id_and_garbage_are_refused():
    stored = TokenCipher({"k1": OLD}).encrypt("x", associated_data="a")
    with pytest.raises(DecryptionError, match="unknown key id"):
        TokenCipher({"k2": NEW}).decrypt(stored, associated_data="a")
    with pytest.raises(DecryptionError):
        TokenCipher({"k1": OLD}).decrypt("not-a-ciphertext", associated_data="a")


def test_key_length_is_enforced():
    with pytest.raises(ValueError, match="32 bytes"):
        TokenCipher({"k1": b"short"})
