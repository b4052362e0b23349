"""Password derivation, key wrapping, HPKE record keys and signed manifests."""

import pytest

from medvault.crypto import CryptoError
from medvault.crypto.envelope import DataKey, sign_manifest, unwrap_data_key, verify_manifest, wrap_data_key
from medvault.crypto.keyring import (
    PrivateKeys,
    PublicKeys,
    new_recovery_key,
    recovery_secret,
    unwrap_private_keys,
    wrap_private_keys,
)
from medvault.crypto.passwords import Argon2Profile, derive_login_secrets, hash_verifier, verifier_matches

FAST = Argon2Profile(time_cost=1, memory_kib=8, parallelism=1)
# Recorded from the first release: a change here would lock every existing user out.
KAT_VERIFIER = "b3848157374afd971ad5374a09dd4debc241682a7a3dc94ca76f683f4418a683"


def test_login_derivation_known_answer():
    """Argon2id + HKDF split is deterministic: a fixed password and salt give fixed, distinct outputs."""
    a = derive_login_secrets("correct horse battery", b"0123456789abcdef", FAST)
    b = derive_login_secrets("correct horse battery", b"0123456789abcdef", FAST)
    assert a == b
    assert a.verifier != a.kek
    assert a.verifier.hex() == KAT_VERIFIER
    assert derive_login_secrets("correct horse batterz", b"0123456789abcdef", FAST).verifier != a.verifier


def test_verifier_comparison():
    """Only the right verifier matches the stored hash."""
    secrets = derive_login_secrets("pw-one-two-three", b"s" * 16, FAST)
    stored = hash_verifier(secrets.verifier)
    assert verifier_matches(secrets.verifier, stored)
    assert not verifier_matches(secrets.kek, stored)


def test_private_keys_wrap_and_refuse_wrong_key_or_user():
    """Wrapped private keys open only with the same key and the same user id."""
    keys = PrivateKeys.generate()
    sealed = wrap_private_keys(keys, b"k" * 32, "user-1")
    assert unwrap_private_keys(sealed, b"k" * 32, "user-1").to_bytes() == keys.to_bytes()
    with pytest.raises(CryptoError):
        unwrap_private_keys(sealed, b"j" * 32, "user-1")
    with pytest.raises(CryptoError):
        unwrap_private_keys(sealed, b"k" * 32, "user-2")


def test_public_key_signature_catches_a_swapped_key():
    """An operator who swaps the encryption key under someone's signing key is caught."""
    alice, mallory = PrivateKeys.generate(), PrivateKeys.generate()
    good = alice.public()
    assert good.verify()
    swapped = PublicKeys(mallory.public().x25519, good.ed25519, good.signature)
    assert not swapped.verify()
    assert len(good.fingerprint.split()) == 8


def test_record_key_is_bound_to_record_and_reader():
    """An HPKE-wrapped data key opens only for its reader and its record."""
    reader = PrivateKeys.generate()
    key = DataKey.generate()
    wrapped = wrap_data_key(key, reader.public().x25519, "rec-1", "reader-1")
    assert unwrap_data_key(wrapped, reader.x25519, "rec-1", "reader-1") == key
    for rec, who in [("rec-2", "reader-1"), ("rec-1", "reader-2")]:
        with pytest.raises(CryptoError):
            unwrap_data_key(wrapped, reader.x25519, rec, who)
    with pytest.raises(CryptoError):
        unwrap_data_key(wrapped, PrivateKeys.generate().x25519, "rec-1", "reader-1")


def test_subkeys_are_distinct():
    """Content, metadata and commitment keys are independent derivations of the data key."""
    key = DataKey.generate()
    assert len({key.content_key, key.metadata_key, bytes.fromhex(key.commitment)}) == 3


def test_manifest_signature():
    """A signed manifest verifies with its signer's key and fails after any change."""
    signer = PrivateKeys.generate()
    signed = sign_manifest({"record_id": "r", "size": 3}, signer.ed25519)
    public = signer.public().ed25519
    assert verify_manifest(signed, public)
    tampered = {"manifest": {"record_id": "r", "size": 4}, "signature": signed["signature"]}
    assert not verify_manifest(tampered, public)
    assert not verify_manifest(signed, PrivateKeys.generate().public().ed25519)


def test_recovery_key_tolerates_typing():
    """Recovery keys survive lower case, spaces and missing dashes; malformed ones are refused."""
    key = new_recovery_key()
    assert recovery_secret(key.lower().replace("-", " ")) == recovery_secret(key)
    with pytest.raises(CryptoError):
        recovery_secret("not-a-key")
