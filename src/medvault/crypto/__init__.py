"""Cryptographic recipes for MedVault: key derivation, key wrapping, streaming AEAD and signatures.

Pure functions over bytes and keys: nothing here reads files, settings or the clock, so every recipe
can be tested with known vectors. Only well-known constructions from `cryptography` and `argon2-cffi`.
"""


class CryptoError(Exception):
    """One opaque error for every failed decryption or verification (no oracle about why)."""
