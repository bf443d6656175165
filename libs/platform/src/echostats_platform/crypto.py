"""AES-256-GCM encryption of secrets at rest (Spotify tokens), with key ids for rotation.

A ciphertext is `v1.<key id>.<base64url(nonce || ciphertext+tag)>`: the key id travels with
the value, so new keys can be added in front and old values still decrypt until rewritten.
`associated_data` binds a ciphertext to its owner and field, so a value copied to another
user or field fails to decrypt.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """The value is malformed, uses an unknown key id, or fails authentication."""


class TokenCipher:
    """Encrypts with the active key; decrypts with whichever key id the value names."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {kid!r} must be 32 bytes")
            if "." in kid:
                raise ValueError(f"key id {kid!r} must not contain '.'")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = next(iter(keys))

    def encrypt(self, plaintext: str, *, associated_data: str) -> str:
        """Encrypt `plaintext` with the active key."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.active_key_id].encrypt(
            nonce, plaintext.encode(), associated_data.encode()
        )
        payload = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self.active_key_id}.{payload}"

    def decrypt(self, value: str, *, associated_data: str) -> str:
        """Decrypt a value produced by `encrypt` with any configured key."""
        version, kid, payload = self._split(value)
        if version != _VERSION:
            raise DecryptionError(f"unsupported ciphertext version {version!r}")
        aead = self._keys.get(kid)
        if aead is None:
            raise DecryptionError(f"unknown key id {kid!r}")
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            plain = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated_data.encode())
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("ciphertext failed authentication") from exc
        return plain.decode()

    def needs_rotation(self, value: str) -> bool:
        """True when `value` was encrypted with a key other than the active one."""
        return self._split(value)[1] != self.active_key_id

    @staticmethod
    def _split(value: str) -> tuple[str, str, str]:
        parts = value.split(".", 2)
        if len(parts) != 3:
            raise DecryptionError("malformed ciphertext")
        return parts[0], parts[1], parts[2]
