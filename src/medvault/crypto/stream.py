"""Chunked AEAD for record content: the STREAM construction over AES-256-GCM.

Each chunk's nonce is a random per-stream prefix, the chunk counter and a last-chunk flag, so chunks can
be neither reordered, dropped nor truncated, files of any size stream in constant memory, and any byte
range is served by decrypting only the chunks that hold it. The data key is fresh per record version, so
no (key, nonce) pair repeats.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medvault.crypto import CryptoError

MAGIC = b"MVS1"
CHUNK_SIZE = 256 * 1024
TAG_SIZE = 16
_PREFIX_SIZE = 7
HEADER_SIZE = len(MAGIC) + _PREFIX_SIZE + 4


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I?", counter, last)


class StreamEncryptor:
    """Feed plaintext in any pieces; get ciphertext out. One chunk is held back to flag the last one."""

    def __init__(self, key: bytes, associated_data: bytes, chunk_size: int = CHUNK_SIZE):
        self._aead = AESGCM(key)
        self._ad = associated_data
        self._prefix = os.urandom(_PREFIX_SIZE)
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._counter = 0

    def header(self) -> bytes:
        return MAGIC + self._prefix + struct.pack(">I", self._chunk_size)

    def _seal(self, chunk: bytes, last: bool) -> bytes:
        if self._counter > 0xFFFFFFFF:
            raise CryptoError("stream too long")
        out = self._aead.encrypt(_nonce(self._prefix, self._counter, last), chunk, self._ad)
        self._counter += 1
        return out

    def update(self, data: bytes) -> bytes:
        """Return ciphertext for all complete chunks except the newest, which may turn out to be the last.

        Whole chunks are sealed straight from the caller's buffer; only a partial chunk is staged (the
        copies this avoids cost more than AES itself, see bench/at_rest_format.py).
        """
        size = self._chunk_size
        buf = self._buffer
        if len(buf) + len(data) <= size:
            buf += data
            return b""
        out = []
        pos = 0
        with memoryview(data) as view:
            if buf:  # complete the staged chunk: more bytes follow it, so it is not the last
                pos = size - len(buf)
                buf += view[:pos]
                out.append(self._seal(bytes(buf), last=False))
                buf.clear()
            while len(data) - pos > size:  # hold the newest chunk back: it may be the last
                out.append(self._seal(view[pos : pos + size], last=False))
                pos += size
            buf += view[pos:]
        return b"".join(out)

    def finalize(self) -> bytes:
        return self._seal(bytes(self._buffer), last=True)


class StreamDecryptor:
    """Random-access reader of a sealed stream; every chunk is verified before any of its bytes leave."""

    def __init__(self, key: bytes, associated_data: bytes, header: bytes, plaintext_size: int):
        if len(header) != HEADER_SIZE or header[:4] != MAGIC:
            raise CryptoError("not a MedVault stream")
        self._aead = AESGCM(key)
        self._ad = associated_data
        self._prefix = header[4 : 4 + _PREFIX_SIZE]
        (self.chunk_size,) = struct.unpack(">I", header[4 + _PREFIX_SIZE :])
        self.size = plaintext_size
        self.chunk_count = max(1, -(-plaintext_size // self.chunk_size))

    def chunk_offset(self, index: int) -> int:
        """Byte offset of sealed chunk `index` in the blob (after the header)."""
        return HEADER_SIZE + index * (self.chunk_size + TAG_SIZE)

    def sealed_length(self, index: int) -> int:
        if index == self.chunk_count - 1:
            return self.size - index * self.chunk_size + TAG_SIZE
        return self.chunk_size + TAG_SIZE

    def open_chunk(self, index: int, sealed: bytes) -> bytes:
        last = index == self.chunk_count - 1
        try:
            return self._aead.decrypt(_nonce(self._prefix, index, last), sealed, self._ad)
        except (InvalidTag, ValueError):
            raise CryptoError("chunk failed authentication") from None

    def chunks_for_range(self, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        """Yield (chunk index, first byte wanted, byte after last wanted) within each chunk for [start, end)."""
        first, last = start // self.chunk_size, (end - 1) // self.chunk_size
        for index in range(first, last + 1):
            base = index * self.chunk_size
            yield index, max(start - base, 0), min(end - base, self.chunk_size)
