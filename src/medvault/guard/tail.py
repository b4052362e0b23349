"""Follow a growing log file across rotation and restarts without losing or repeating lines.

Three ways a log file changes under a reader, each handled here:

* rotation by rename (logrotate's default): the path now names a new inode; the old handle is
  drained to its end first, so lines written just before the rename are not lost;
* copy-truncate: same inode, but the size fell below our offset (or the first line changed);
  reading restarts at 0;
* restart of the guard: the saved `Position` (inode, offset, hash of the first line) says where
  to resume; if the first line no longer matches, the file was replaced and is read from 0.

Only complete lines are returned (a half-written line waits for its newline), the offset always
points just past the last returned line, and each call reads at most `max_bytes`, so a huge
backlog is worked off in bounded steps.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_HEAD_BYTES = 4096


@dataclass(frozen=True)
class Position:
    """Where reading stopped: enough to resume exactly after a restart."""

    inode: int
    offset: int
    head_hash: str

    def to_dict(self) -> dict:
        return {"inode": self.inode, "offset": self.offset, "head_hash": self.head_hash}

    @classmethod
    def from_dict(cls, data: dict) -> Position:
        return cls(int(data["inode"]), int(data["offset"]), str(data["head_hash"]))


def _head_hash(handle: BinaryIO) -> str:
    """Hash of the first line (or of what exists of it): identifies the file's content."""
    where = handle.tell()
    handle.seek(0)
    head = handle.readline(_HEAD_BYTES)
    handle.seek(where)
    return hashlib.sha256(head).hexdigest() if head.endswith(b"\n") else ""


class FileTail:
    """Incremental reader of one path; `read_lines()` returns new complete lines."""

    def __init__(self, path: Path | str, position: Position | None = None, *, max_bytes: int = 1 << 20) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._handle: BinaryIO | None = None
        self._inode = -1
        self._offset = 0
        self._hash = ""
        self._saved = position

    @property
    def position(self) -> Position:
        return Position(self._inode, self._offset, self._hash)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _open(self) -> bool:
        try:
            handle = self.path.open("rb")
        except OSError:
            return False
        self._handle = handle
        self._inode = os.fstat(handle.fileno()).st_ino
        self._hash = _head_hash(handle)
        saved, self._saved = self._saved, None
        self._offset = 0
        if saved is not None and saved.head_hash and saved.head_hash == self._hash:
            size = os.fstat(handle.fileno()).st_size
            if saved.offset <= size:
                self._offset = saved.offset
        return True

    def _read(self, budget: int) -> list[str]:
        """Complete lines from the current handle, at most `budget` bytes."""
        handle = self._handle
        if handle is None:
            return []
        if not self._hash:
            self._hash = _head_hash(handle)
        handle.seek(self._offset)
        data = handle.read(budget)
        end = data.rfind(b"\n")
        if end < 0:
            return []
        chunk = data[: end + 1]
        self._offset += len(chunk)
        return chunk.decode("utf-8", errors="replace").splitlines()

    def read_lines(self) -> list[str]:
        """New complete lines since the last call (bounded by `max_bytes`)."""
        if self._handle is None and not self._open():
            return []
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        lines: list[str] = []
        if st is not None and st.st_ino != self._inode:
            lines = self._read(self.max_bytes)  # drain the rotated file first
            if len(lines) and self._handle is not None and self._offset < os.fstat(self._handle.fileno()).st_size:
                return lines  # more left in the old file; continue next call
            self.close()
            self._saved = None
            if not self._open():
                return lines
        elif st is not None and (st.st_size < self._offset or (self._hash and _head_hash(self._handle) != self._hash)):
            self._offset = 0  # truncated in place (copytruncate) or rewritten
            self._hash = _head_hash(self._handle)
        budget = self.max_bytes - sum(len(x) + 1 for x in lines)
        return lines + self._read(budget) if budget > 0 else lines
