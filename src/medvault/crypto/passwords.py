"""One Argon2id run per login, split by HKDF into a login verifier and a key-encryption key.

Deriving both from a single run keeps logins to one expensive step while making sure the value the server
stores (a hash of the verifier) says nothing about the key that unwraps the user's private keys.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@dataclass(frozen=True)
class Argon2Profile:
    """Argon2id cost parameters; `memory_kib` and `time_cost` at or above OWASP's recommendation."""

    time_cost: int = 2
    memory_kib: int = 65536
    parallelism: int = 1


DEFAULT_PROFILE = Argon2Profile()


@dataclass(frozen=True)
class LoginSecrets:
    verifier: bytes
    kek: bytes


def _hkdf(secret: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


def derive_login_secrets(password: str, salt: bytes, profile: Argon2Profile = DEFAULT_PROFILE) -> LoginSecrets:
    """Run Argon2id once and split its output into a verifier and a key-encryption key."""
    raw = hash_secret_raw(
        password.encode("utf-8"),
        salt,
        time_cost=profile.time_cost,
        memory_cost=profile.memory_kib,
        parallelism=profile.parallelism,
        hash_len=32,
        type=Type.ID,
    )
    return LoginSecrets(
        verifier=_hkdf(raw, b"medvault/login-verifier/v1"),
        kek=_hkdf(raw, b"medvault/key-encryption-key/v1"),
    )


def hash_verifier(verifier: bytes) -> bytes:
    """What the database stores: a dump of it cannot be replayed as a verifier."""
    return hashlib.sha256(b"medvault/verifier-hash/v1" + verifier).digest()


def verifier_matches(verifier: bytes, stored_hash: bytes) -> bool:
    """Constant-time comparison of a fresh verifier with the stored hash."""
    return hmac.compare_digest(hash_verifier(verifier), stored_hash)


def derive_subkey(secret: bytes, label: str, length: int = 32) -> bytes:
    """Domain-separated subkey from any high-entropy secret (recovery key, session token, data key)."""
    return _hkdf(secret, b"medvault/" + label.encode("ascii"), length)
