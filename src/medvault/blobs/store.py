"""Local-directory blob store with atomic writes.

A blob is written under `tmp/`, fsynced, then renamed into place, so a reader (or a crash) never sees half a
blob. The database row that points at a blob is committed only after the rename; `sweep` removes the
leftovers of a crash: stray temp files and blobs no row points at, once they are older than the grace period
(by modification time: a temp file being written is touched by every write), because other nodes may share
the folder.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from medvault.blobs import check_name, is_blob_name, sweep_cutoff


def _older(path: Path, cutoff: float) -> bool:
    """Whether `path` was last modified before `cutoff`; False if it is gone (renamed or removed meanwhile)."""
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


class BlobStore:
    remote = False

    def __init__(self, root: Path):
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / name[:2] / check_name(name)

    def create(self) -> BlobWriter:
        return BlobWriter(self)

    def open(self, name: str) -> BinaryIO:
        return self.path(name).open("rb")

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def names(self) -> Iterable[str]:
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                yield from (p.name for p in sub.iterdir() if is_blob_name(p.name))

    def sweep(self, referenced: set[str], grace: float, now: float | None = None) -> int:
        """Delete temp files and unreferenced blobs untouched for `grace` seconds; return how many were removed."""
        cutoff = sweep_cutoff(grace, now)
        removed = 0
        for leftover in self._tmp.iterdir():
            if _older(leftover, cutoff):
                leftover.unlink(missing_ok=True)
                removed += 1
        for name in list(self.names()):
            if name not in referenced and _older(self.path(name), cutoff):
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
