"""Blob storage for sealed record content: a local folder (`store.py`) or an S3-compatible bucket (`s3.py`).

Both stores speak the one interface below, so the vault, imports and the start-up sweep never know which
holds the bytes. Blobs reach a store already encrypted; a store only ever sees ciphertext under random names.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import BinaryIO, Protocol

_HEX = frozenset("0123456789abcdef")


class BlobError(OSError):
    """The blob store cannot be used (unreachable, credentials refused, no such bucket); the message says which
    store and what failed, never a credential. An OSError, so readers treat it like a failing disk."""


class Writer(Protocol):
    name: str
    size: int

    def write(self, data: bytes) -> None: ...
    def commit(self) -> str: ...
    def abort(self) -> None: ...


class Store(Protocol):
    remote: bool  # reads wait on the network: callers on the event loop read in a worker thread

    def create(self) -> Writer: ...
    def open(self, name: str) -> BinaryIO: ...
    def delete(self, name: str) -> None: ...
    def names(self) -> Iterable[str]: ...
    def sweep(self, referenced: set[str], grace: float, now: float | None = None) -> int: ...


def is_blob_name(name: str) -> bool:
    """A blob name is 32 lowercase hex digits (a random UUID): anything else in a store is not ours to touch."""
    return len(name) == 32 and set(name) <= _HEX


def check_name(name: str) -> str:
    if not is_blob_name(name):
        raise ValueError("bad blob name")
    return name


def sweep_cutoff(grace: float, now: float | None) -> float:
    """Leftovers last touched before this moment may be removed.

    Several nodes share one store, and a node starting up cannot tell a crashed upload from another node's
    upload in progress, or a blob whose row is about to commit from an orphan: only age tells them apart."""
    return (time.time() if now is None else now) - grace
