"""Per-version data keys, their wrapping to readers (HPKE, RFC 9180) and the signed upload manifest.

A data key never encrypts anything directly: HKDF derives the content, metadata and commitment subkeys
from it. AES-GCM does not commit to its key, so the manifest signs a key commitment that readers check.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from medvault.crypto import CryptoError
from medvault.crypto.passwords import derive_subkey

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


@dataclass(frozen=True)
class DataKey:
    secret: bytes

    @classmethod
    def generate(cls) -> DataKey:
        return cls(os.urandom(32))

    @property
    def content_key(self) -> bytes:
        return derive_subkey(self.secret, "record/content/v1")

    @property
    def metadata_key(self) -> bytes:
        return derive_subkey(self.secret, "record/metadata/v1")

    @property
    def commitment(self) -> str:
        return derive_subkey(self.secret, "record/commitment/v1").hex()


def _wrap_info(record_id: str, reader_id: str) -> bytes:
    return f"medvault/record-key/v1:{record_id}:{reader_id}".encode()


def seal_to(public: bytes, plaintext: bytes, info: bytes) -> bytes:
    """HPKE base mode (RFC 9180): seal to an X25519 public key, bound to `info`."""
    return _SUITE.encrypt(plaintext, X25519PublicKey.from_public_bytes(public), info=info)


def open_sealed_to(private: X25519PrivateKey, sealed: bytes, info: bytes) -> bytes:
    try:
        return _SUITE.decrypt(sealed, private, info=info)
    except Exception:
        raise CryptoError("cannot open sealed value") from None


def wrap_data_key(key: DataKey, reader_public: bytes, record_id: str, reader_id: str) -> bytes:
    """Seal the data key to one reader, bound to this record and this reader."""
    return seal_to(reader_public, key.secret, _wrap_info(record_id, reader_id))


def unwrap_data_key(wrapped: bytes, reader_private: X25519PrivateKey, record_id: str, reader_id: str) -> DataKey:
    return DataKey(open_sealed_to(reader_private, wrapped, _wrap_info(record_id, reader_id)))


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_manifest(manifest: dict, signer: Ed25519PrivateKey) -> dict:
    """Return the manifest with an Ed25519 signature over its canonical JSON."""
    return {"manifest": manifest, "signature": signer.sign(canonical_json(manifest)).hex()}


def verify_manifest(signed: dict, signer_public: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(signer_public).verify(
            bytes.fromhex(signed["signature"]), canonical_json(signed["manifest"])
        )
    except (InvalidSignature, ValueError, KeyError):
        return False
    return True


def metadata_digest(metadata: dict) -> str:
    return hashlib.sha256(canonical_json(metadata)).hexdigest()
