"""The STREAM format: round trips, ranges, and every kind of tampering refused."""

import os

import pytest

from medvault.crypto import CryptoError
from medvault.crypto.stream import HEADER_SIZE, StreamDecryptor, StreamEncryptor

KEY = bytes(range(32))
AD = b"record-1:1"


def seal(data: bytes, chunk: int = 1024, pieces: int = 7) -> tuple[bytes, bytes]:
    enc = StreamEncryptor(KEY, AD, chunk_size=chunk)
    out = bytearray(enc.header())
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        out += enc.update(data[i : i + step])
    out += enc.finalize()
    return enc.header(), bytes(out)


def read_all(blob: bytes, size: int, header: bytes, start: int = 0, end: int | None = None) -> bytes:
    dec = StreamDecryptor(KEY, AD, header, size)
    end = size if end is None else end
    out = bytearray()
    for index, lo, hi in dec.chunks_for_range(start, end):
        off = dec.chunk_offset(index)
        out += dec.open_chunk(index, blob[off : off + dec.sealed_length(index)])[lo:hi]
    return bytes(out)


@pytest.mark.parametrize("pieces", [1, 7, 1000])
@pytest.mark.parametrize("size", [1, 1023, 1024, 1025, 4096, 10_000])
def test_round_trip_at_chunk_boundaries(size, pieces):
    """Any size, fed in any pieces, including exact multiples of the chunk size, decrypts to the original."""
    data = os.urandom(size)
    header, blob = seal(data, pieces=pieces)
    assert read_all(blob, size, header) == data


def test_ranges_decrypt_only_what_is_asked():
    """A byte range across chunk boundaries returns exactly those bytes."""
    data = os.urandom(5000)
    header, blob = seal(data)
    for start, end in [(0, 1), (1000, 1030), (1023, 2049), (4999, 5000), (0, 5000)]:
        assert read_all(blob, len(data), header, start, end) == data[start:end]


def test_flipped_byte_is_detected():
    """One flipped ciphertext bit makes its chunk fail authentication."""
    data = os.urandom(3000)
    header, blob = seal(data)
    bad = bytearray(blob)
    bad[HEADER_SIZE + 1500] ^= 1
    with pytest.raises(CryptoError):
        read_all(bytes(bad), len(data), header)


def test_truncation_is_detected():
    """Dropping the final chunk cannot pass as a shorter file: the new last chunk lacks the last flag."""
    data = os.urandom(3072)
    header, blob = seal(data)
    with pytest.raises(CryptoError):
        read_all(blob[: HEADER_SIZE + 2 * (1024 + 16)], 2048, header)


def test_reordered_chunks_are_detected():
    """Swapping two chunks breaks their counter-bound nonces."""
    data = os.urandom(3000)
    header, blob = seal(data)
    c = 1024 + 16
    swapped = blob[:HEADER_SIZE] + blob[HEADER_SIZE + c : HEADER_SIZE + 2 * c] + blob[HEADER_SIZE : HEADER_SIZE + c]
    swapped += blob[HEADER_SIZE + 2 * c :]
    with pytest.raises(CryptoError):
        read_all(swapped, len(data), header)


def test_other_record_context_is_refused():
    """Ciphertext moved to another record (different associated data) does not decrypt."""
    data = os.urandom(100)
    header, blob = seal(data)
    dec = StreamDecryptor(KEY, b"record-2:1", header, len(data))
    with pytest.raises(CryptoError):
        dec.open_chunk(0, blob[HEADER_SIZE:])


def test_nonce_prefix_is_random_per_stream():
    """Two streams under one key never share a nonce prefix (fresh randomness per stream)."""
    assert StreamEncryptor(KEY, AD).header() != StreamEncryptor(KEY, AD).header()
