"""Local-directory blob store with atomic writes.

A blob is written under `tmp/`, fsynced, then renamed into place, so a reader (or a crash) never sees half a
blob. The database row that points at a blob is committed only after the rename; `sweep` removes the
leftovers of a crash: stray temp files and blobs no row points at.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


class BlobStore:
    def __init__(self, root: Path):
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if len(name) != 32 or not all(c in "0123456789abcdef" for c in name):
            raise ValueError("bad blob name")
        return self.root / name[:2] / name

    def create(self) -> BlobWriter:
        return BlobWriter(self)

    def open(self, name: str) -> BinaryIO:
        return self.path(name).open("rb")

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def names(self) -> Iterable[str]:
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                yield from (p.name for p in sub.iterdir() if not p.name.endswith(".part"))

    def sweep(self, referenced: set[str]) -> int:
        """Delete temp files and unreferenced blobs left by a crash; return how many were removed."""
        removed = 0
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        for name in list(self.names()):
            if name not in referenced:
                self.delete(name)
                removed += 1
        return removed


class BlobWriter:
    """Append-only writer; `commit` makes the blob visible under its name, `abort` removes every trace."""

    def __init__(self, store: BlobStore):
        self.name = uuid.uuid4().hex
        self._store = store
        self._tmp_path = store._tmp / f"{self.name}.part"
        self._file = self._tmp_path.open("xb")
        self.size = 0

    def write(self, data: bytes) -> None:
        if data:
            self._file.write(data)
            self.size += len(data)

    def commit(self) -> str:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = self._store.path(self.name)
        final.parent.mkdir(exist_ok=True)
        os.replace(self._tmp_path, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return self.name

    def abort(self) -> None:
        self._file.close()
        self._tmp_path.unlink(missing_ok=True)
