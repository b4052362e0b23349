"""A user's long-term key pairs: X25519 for receiving record keys, Ed25519 for signing.

The private halves exist in plaintext only in memory; at rest they are sealed (AES-256-GCM) under a
password-derived KEK, a recovery key or a session key. The X25519 public key is signed by the Ed25519 key
so an operator who swaps a reader's key is caught by the fingerprint check.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medvault.crypto import CryptoError

_PUBKEY_LABEL = b"medvault/x25519-public-key/v1:"


@dataclass(frozen=True)
class PublicKeys:
    x25519: bytes
    ed25519: bytes
    signature: bytes

    def verify(self) -> bool:
        """True when the encryption key is vouched for by the signing key."""
        try:
            Ed25519PublicKey.from_public_bytes(self.ed25519).verify(self.signature, _PUBKEY_LABEL + self.x25519)
        except (InvalidSignature, ValueError):
            return False
        return True

    @property
    def fingerprint(self) -> str:
        """Short, human-comparable digest of both public keys (groups of four hex digits)."""
        digest = hashlib.sha256(self.ed25519 + self.x25519).hexdigest()[:32]
        return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True)
class PrivateKeys:
    x25519: X25519PrivateKey
    ed25519: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> PrivateKeys:
        return cls(X25519PrivateKey.generate(), Ed25519PrivateKey.generate())

    def public(self) -> PublicKeys:
        x_pub = self.x25519.public_key().public_bytes_raw()
        return PublicKeys(
            x25519=x_pub,
            ed25519=self.ed25519.public_key().public_bytes_raw(),
            signature=self.ed25519.sign(_PUBKEY_LABEL + x_pub),
        )

    def to_bytes(self) -> bytes:
        return self.x25519.private_bytes_raw() + self.ed25519.private_bytes_raw()

    @classmethod
    def from_bytes(cls, raw: bytes) -> PrivateKeys:
        if len(raw) != 64:
            raise CryptoError("bad key material")
        return cls(
            X25519PrivateKey.from_private_bytes(raw[:32]),
            Ed25519PrivateKey.from_private_bytes(raw[32:]),
        )


def seal(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """AES-256-GCM with a random nonce; `context` is bound as associated data."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def open_sealed(key: bytes, sealed: bytes, context: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], context)
    except (InvalidTag, ValueError):
        raise CryptoError("decryption failed") from None


def wrap_private_keys(keys: PrivateKeys, wrapping_key: bytes, user_id: str) -> bytes:
    return seal(wrapping_key, keys.to_bytes(), b"medvault/user-keys/v1:" + user_id.encode())


def unwrap_private_keys(sealed: bytes, wrapping_key: bytes, user_id: str) -> PrivateKeys:
    return PrivateKeys.from_bytes(open_sealed(wrapping_key, sealed, b"medvault/user-keys/v1:" + user_id.encode()))


def new_recovery_key() -> str:
    """160 random bits as grouped base32, easy to write down and type back."""
    text = base64.b32encode(os.urandom(20)).decode().rstrip("=")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def recovery_secret(recovery_key: str) -> bytes:
    """Normalise what the user typed (case, spaces, dashes) to the key's bytes."""
    cleaned = "".join(ch for ch in recovery_key.upper() if ch.isalnum())
    try:
        raw = base64.b32decode(cleaned)
    except ValueError:
        raise CryptoError("malformed recovery key") from None
    if len(raw) != 20:
        raise CryptoError("malformed recovery key")
    return raw
