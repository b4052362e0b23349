"""Where a snapshot's blobs come from and go back to: the data folder's blob store or an S3-compatible bucket.

snapshot.py and restore.py never know which: a source gives each blob's size (so a blob already in the backup
folder is skipped) and copies a blob into a file there; a target puts a backed-up blob back under its own
name. Blobs cross as they are stored, ciphertext, nothing decrypted. A bucket is read from and written to by
several blobs at once (`workers`: each request waits on the network; one at a time a backup of small blobs
would be a round trip per blob), the folder one blob at a time (the disk is not faster for more). A blob
goes into a bucket only after the bytes sent hashed to the manifest's SHA-256 (else its upload is aborted),
so a changed backup never puts a changed blob into the bucket; blobs a refused restore had already put are
deleted again.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from medvault.backup import BackupError
from medvault.backup.files import CHUNK, copy_bytes, copy_verified
from medvault.blobs import BlobError, check_name
from medvault.config import Settings

if TYPE_CHECKING:
    from medvault.blobs.s3 import S3Store

WORKERS = 8  # blobs in flight to or from a bucket; each writer sends at most one part at a time, so the
# requests in flight stay under botocore's pool of 10 connections
T = TypeVar("T")
R = TypeVar("R")


class Source(Protocol):
    workers: int

    def sizes(self, names: set[str]) -> dict[str, int]: ...  # FileNotFoundError if one is gone
    def fetch(self, name: str, into: Path) -> None: ...


class Target(Protocol):
    workers: int

    def put(self, name: str, blob: Path, digest: str, progress: Callable[[int], None], dirs: set[Path]) -> None: ...
    def discard(self) -> None: ...


def _s3(settings: Settings) -> S3Store:
    from medvault.blobs.location import parse_s3_url
    from medvault.blobs.s3 import S3Store  # why: boto3 costs 0.15 s to import; folder backups never pay it

    return S3Store(parse_s3_url(settings.blob_url), settings.s3_access_key, settings.s3_secret_key)


def source(settings: Settings) -> Source:
    """The blobs of the instance `settings` describe."""
    return BucketBlobs(_s3(settings)) if settings.blob_url else FolderBlobs(settings.data_dir / "blobs")


def target(settings: Settings, stage: Path) -> Target:
    """Where a restore puts the blobs: the bucket `blob_url` names (refused unless empty), else `stage/blobs`."""
    if not settings.blob_url:
        return FolderBlobs(stage / "blobs")
    bucket = BucketBlobs(_s3(settings))
    with store_errors():
        empty = bucket.store.is_empty()
    if not empty:
        raise BackupError(
            f"the bucket {bucket.store.location} is not empty: restore only into an empty bucket (or a prefix "
            "nothing is under)"
        )
    return bucket


@contextmanager
def store_errors() -> Iterator[None]:
    """A bucket that cannot be reached or refuses the key is a BackupError (exit 2, one line), not a traceback."""
    try:
        yield
    except BlobError as exc:
        raise BackupError(str(exc)) from None


def each(workers: int, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`work` on every item, `workers` at a time; the first error is raised once no other item is in flight."""
    if workers <= 1:
        return [work(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medvault-backup")
    try:
        return list(pool.map(work, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def serialised(workers: int, tick: Callable[[int], None]) -> Callable[[int], None]:
    """The progress tick, safe to call from several workers (a progress bar is not)."""
    if workers <= 1:
        return tick
    lock = threading.Lock()

    def locked(n: int) -> None:
        with lock:
            tick(n)

    return locked


class FolderBlobs:
    workers = 1

    def __init__(self, root: Path):
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name[:2] / name

    def sizes(self, names: set[str]) -> dict[str, int]:
        return {name: self.path(check_name(name)).stat().st_size for name in names}

    def fetch(self, name: str, into: Path) -> None:
        copy_bytes(self.path(name), into)

    def put(self, name: str, blob: Path, digest: str, progress: Callable[[int], None], dirs: set[Path]) -> None:
        copy_verified(blob, self.path(name), expect=digest, progress=progress, dirs=dirs)

    def discard(self) -> None:
        pass  # the restore removes its whole stage folder


class BucketBlobs:
    workers = WORKERS

    def __init__(self, store: S3Store):
        self.store = store
        self._put: list[str] = []
        self._lock = threading.Lock()

    def sizes(self, names: set[str]) -> dict[str, int]:
        with store_errors():
            listed = self.store.sizes()
        missing = names - listed.keys()
        if missing:
            raise FileNotFoundError(f"{self.store.location}: {len(missing)} blob(s) gone")
        return {name: listed[name] for name in names}

    def fetch(self, name: str, into: Path) -> None:
        with store_errors(), self.store.open(name) as blob, into.open("wb") as out:
            shutil.copyfileobj(blob, out, CHUNK)

    def put(self, name: str, blob: Path, digest: str, progress: Callable[[int], None], dirs: set[Path]) -> None:
        writer = self.store.create(name)
        hashed = hashlib.sha256()
        try:
            with store_errors(), blob.open("rb") as f:
                while chunk := f.read(CHUNK):
                    hashed.update(chunk)
                    writer.write(chunk)
                    progress(len(chunk))
                if hashed.hexdigest() != digest:
                    raise BackupError(f"{blob.name} does not match its manifest (changed or damaged)")
                writer.commit()
        except BaseException:
            writer.abort()
            raise
        with self._lock:
            self._put.append(name)

    def discard(self) -> None:
        """Delete the blobs this restore put, so a refused restore leaves the bucket as empty as it was."""
        for name in self._put:
            with suppress(OSError):  # why: the error that made the restore fail is the one to report
                self.store.delete(name)
        self._put.clear()
