"""Where a snapshot's blobs come from and go back to: the data folder's blob store or an S3-compatible bucket.

snapshot.py and restore.py never know which: a source gives each blob's size (so a blob already in the backup
folder is skipped) and copies a blob into a file there; a target puts a backed-up blob back under its own
name. Blobs cross as they are stored, ciphertext, nothing decrypted. A bucket is read from and written to by
several blobs at once (`workers`: each request waits on the network; one at a time a backup of small blobs
would be a round trip per blob), the folder one blob at a time (the disk is not faster for more). A blob
goes into a bucket only after the bytes sent hashed to the manifest's SHA-256 (else its upload is aborted),
so a changed backup never puts a changed blob into the bucket; blobs a refused restore had already put are
deleted again. A restore into a bucket puts its journal first (backup/journal.py), so one that was killed can be
resumed rather than refused.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from medvault.backup import BackupError, journal
from medvault.backup.files import CHUNK, copy_bytes, copy_verified
from medvault.backup.journal import Journal
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

    def begin(self, snapshot: str, manifest_sha256: str, blobs: dict[str, tuple[int, str]]) -> set[str]: ...
    def put(self, name: str, blob: Path, digest: str, progress: Callable[[int], None], dirs: set[Path]) -> None: ...
    def discard(self) -> None: ...
    def finish(self) -> None: ...


def _s3(settings: Settings) -> S3Store:
    from medvault.blobs.location import parse_s3_url
    from medvault.blobs.s3 import S3Store  # why: boto3 costs 0.15 s to import; folder backups never pay it

    return S3Store(parse_s3_url(settings.blob_url), settings.s3_access_key, settings.s3_secret_key)


def source(settings: Settings) -> Source:
    """The blobs of the instance `settings` describe."""
    return BucketBlobs(_s3(settings)) if settings.blob_url else FolderBlobs(settings.data_dir / "blobs")


def target(settings: Settings, stage: Path) -> Target:
    """Where a restore puts the blobs: the bucket `blob_url` names (refused unless empty or holding the journal
    of an interrupted restore, checked against the snapshot by `begin`), else `stage/blobs`."""
    if not settings.blob_url:
        return FolderBlobs(stage / "blobs")
    bucket = BucketBlobs(_s3(settings))
    with store_errors():
        empty = bucket.store.is_empty()
        found = None if empty else bucket.store.note(journal.NAME)
    if not empty and found is None:
        raise BackupError(
            f"the bucket {bucket.store.location} is not empty: restore only into an empty bucket (or a prefix "
            "nothing is under)"
        )
    bucket.found = None if found is None else Journal.from_json(found, bucket.where)
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

    def begin(self, snapshot: str, manifest_sha256: str, blobs: dict[str, tuple[int, str]]) -> set[str]:
        return set()  # a killed restore's stage folder is never reused: the next one starts a new one

    def put(self, name: str, blob: Path, digest: str, progress: Callable[[int], None], dirs: set[Path]) -> None:
        copy_verified(blob, self.path(name), expect=digest, progress=progress, dirs=dirs)

    def discard(self) -> None:
        pass  # the restore removes its whole stage folder

    def finish(self) -> None:
        pass


class BucketBlobs:
    workers = WORKERS

    def __init__(self, store: S3Store):
        self.store = store
        self.where = f"s3://{store.location.bucket}/{store.location.prefix}"
        self.found: Journal | None = None  # the journal of an interrupted restore, found by `target`
        self._journal: Journal | None = None  # this run's, once put
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

    def begin(self, snapshot: str, manifest_sha256: str, blobs: dict[str, tuple[int, str]]) -> set[str]:
        """Put this run's journal before the first blob; the blobs an interrupted restore of the same snapshot
        already put, each read back and hashed to the manifest (BackupError if anything else is there)."""
        mine = Journal(snapshot, manifest_sha256, secrets.token_hex(8))
        kept: set[str] = set()
        if self.found is not None:
            with store_errors():
                objects, uploads = self.store.contents()
            kept, stale = journal.resumable(self.found, mine, objects, uploads, blobs, self.where)
            each(self.workers, lambda name: self._check(name, blobs[name][1]), sorted(kept))
            with store_errors():
                for name, upload_id in stale:
                    self.store.abort_upload(self.store.location.prefix + name, upload_id)
        with store_errors():
            self.store.put_note(journal.NAME, mine.to_json())
        self._journal = mine
        return kept

    def _check(self, name: str, digest: str) -> None:
        hashed = hashlib.sha256()
        with store_errors(), self.store.open(name) as blob:
            while chunk := blob.read(CHUNK):
                hashed.update(chunk)
        if hashed.hexdigest() != digest:
            raise BackupError(f"{self.where}{name} does not match the snapshot's manifest: empty the prefix first")

    def _owned(self) -> bool:
        """Whether the journal under the prefix is still this run's (no second restore resumed it meanwhile)."""
        try:
            found = self.store.note(journal.NAME)
            return found is not None and self._journal == Journal.from_json(found, self.where)
        except (OSError, BackupError):
            return False

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
        """Leave the bucket as it was before this run: delete the blobs it put and its journal, if it began in an
        empty bucket and the journal is still its own. A resumed run deletes nothing (what it put verified, so
        the bucket stays resumable); neither does one a second restore resumed (those blobs are that one's now)."""
        if self._journal is None or self.found is not None or not self._owned():
            return
        for name in self._put:
            with suppress(OSError):  # why: the error that made the restore fail is the one to report
                self.store.delete(name)
        with suppress(OSError):
            self.store.delete_note(journal.NAME)  # last: a restore killed while discarding stays resumable
        self._put.clear()

    def finish(self) -> None:
        """The restore is complete: remove its journal (unless a second restore took it over meanwhile)."""
        if self._owned():
            with store_errors():
                self.store.delete_note(journal.NAME)
