"""`medvault backup`: a consistent snapshot of a running instance, encrypted, incremental.

Order gives consistency without stopping the server: SQLite's online backup API (or, on PostgreSQL, `pg_dump`
of one exported snapshot: backup/pgdump.py) copies the database as of one transaction first; then the blobs
its rows name are copied. Blobs are write-once under random names and a
row is committed only after its blob is in place, so every blob the snapshot names exists, unless a record was
deleted meanwhile: then the snapshot is taken again (the blobs already copied stay, so that costs little).

Destination layout: `blobs/ab/NAME` (shared by every snapshot, so a second backup copies only new blobs; each
with a `NAME.sha256` sidecar so a later backup need not re-read it) and `snapshots/ID/{state.tar.age,
manifest.json.age}`. The state (database, server secret, TLS certificate and key) is age-encrypted; blobs are
stored as they are, already AES-256-GCM under per-record keys: re-encrypting would hide nothing more, because
their names are random and age does not pad, so sizes would show through anyway.
"""

from __future__ import annotations

import fcntl
import re
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from medvault.backup import BackupError, pgdump, stores
from medvault.backup.ageio import check_recipients, encrypt_bytes, encrypting
from medvault.backup.files import fsync_dirs, holding, publish, remove_parts, remove_stale, sha256_file, write_verified
from medvault.backup.manifest import MANIFEST, STATE, Manifest
from medvault.backup.stores import Source
from medvault.config import Settings

ATTEMPTS = 3
_SHA256 = re.compile("[0-9a-f]{64}")


@dataclass
class BackupResult:
    snapshot: str
    blobs: int
    copied: int
    copied_bytes: int
    total_bytes: int


def database_copier(settings: Settings) -> tuple[str, Callable[[Path], set[str]]]:
    """(file name in the snapshot, copy(target) -> blob names) for the configured database."""
    url = settings.db_url
    if url.startswith(("postgresql://", "postgresql+psycopg://")):
        return pgdump.DUMP, lambda target: pgdump.dump(url, target)
    if not url.startswith("sqlite:///"):
        raise BackupError("backups support SQLite and PostgreSQL databases")
    live = Path(url.removeprefix("sqlite:///"))
    return "medvault.db", lambda target: _snapshot_database(live, target)


def _snapshot_database(live: Path, target: Path) -> set[str]:
    """Copy the live database as of one transaction; the blob names its rows reference."""
    try:
        source = sqlite3.connect(live.resolve().as_uri() + "?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # why: one self-contained file, no -wal beside it
            return {name for (name,) in copy.execute("SELECT blob FROM records")}
        finally:
            copy.close()
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the database {live}: {exc}") from None


def _copy_blob(
    source: Source, size: int, dest: Path, name: str, progress: Callable[[int], None], dirs: set[Path]
) -> tuple[int, str, bool]:
    """(size, sha256, copied?) of one blob in the destination; copies it unless it is already there."""
    target = dest / "blobs" / name[:2] / name
    sidecar = target.with_name(name + ".sha256")
    if target.exists() and target.stat().st_size == size and sidecar.exists():
        digest = sidecar.read_text().strip()
        if _SHA256.fullmatch(digest):
            progress(size)
            return size, digest, False
    digest = write_verified(lambda tmp: source.fetch(name, tmp), name, target, progress=progress, dirs=dirs)
    # The sidecar is not fsynced: one lost or emptied by a crash fails the check above and the blob, which
    # was fsynced before it got its name, is simply copied again by the next run.
    tmp = sidecar.with_name(sidecar.name + ".part")
    tmp.write_text(digest + "\n")
    tmp.replace(sidecar)
    return size, digest, True


def _copy_blobs(
    blobs: Source,
    names: set[str],
    dest: Path,
    progress: Callable[[int, int], Callable[[int], None]] | None,
    dirs: set[Path],
) -> list[tuple[str, int, str, bool]]:
    """(name, size, sha256, copied?) of every blob `names` holds, `blobs.workers` at a time."""
    sizes = blobs.sizes(names)
    tick = stores.serialised(
        blobs.workers, progress(len(names), sum(sizes.values())) if progress else (lambda _n: None)
    )
    return stores.each(blobs.workers, lambda n: (n, *_copy_blob(blobs, sizes[n], dest, n, tick, dirs)), sorted(names))


def take(
    settings: Settings,
    dest: Path,
    recipients: list[str],
    progress: Callable[[int, int], Callable[[int], None]] | None = None,
) -> BackupResult:
    """Write one snapshot of `settings.data_dir` into `dest`; `progress(count, bytes)` makes a per-byte tick."""
    check_recipients(recipients)
    blobs = stores.source(settings)
    database = database_copier(settings)
    (dest / "snapshots").mkdir(parents=True, exist_ok=True)
    (dest / "blobs").mkdir(exist_ok=True)
    with _exclusive(dest):
        return _write(settings, blobs, database, dest, recipients, progress)


@contextmanager
def _exclusive(dest: Path) -> Iterator[None]:
    """One backup at a time per destination: a second one (cron overlapping a slow run) would remove the
    first one's `.part` files."""
    with (dest / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"another backup is writing to {dest}: try again when it has finished") from None
        yield


@contextmanager
def _stage(data_dir: Path) -> Iterator[str]:
    """A private folder in the data folder for the plaintext database copy, held locked while the backup runs;
    the stage of a backup that was killed (`kill -9` runs no clean-up) is removed by the next one."""
    remove_stale(data_dir, ".backup-*")
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".backup-") as stage, holding(Path(stage)):
        yield stage


def _write(
    settings: Settings,
    blobs: Source,
    database: tuple[str, Callable[[Path], set[str]]],
    dest: Path,
    recipients: list[str],
    progress: Callable[[int, int], Callable[[int], None]] | None,
) -> BackupResult:
    remove_parts(dest)
    snapshot = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(3)
    folder = dest / "snapshots" / snapshot
    # The plaintext copy of the database lives in the data folder, beside the original, never elsewhere.
    with _stage(settings.data_dir) as stage:
        db_name, copy_database = database
        db_copy = Path(stage) / db_name
        fresh: dict[str, int] = {}  # blobs this run copied, over every attempt
        dirs: set[Path] = {dest, dest / "blobs"}  # folders that got new names, fsynced once before the state
        for _ in range(ATTEMPTS):
            db_copy.unlink(missing_ok=True)
            names = copy_database(db_copy)
            manifest = Manifest(snapshot, datetime.now(UTC).timestamp(), "", 0)
            try:
                for name, size, digest, copied_now in _copy_blobs(blobs, names, dest, progress, dirs):
                    manifest.blobs[name] = (size, digest)
                    if copied_now:
                        fresh[name] = size
            except FileNotFoundError:
                continue  # a record was deleted after the database copy: take it again
            break
        else:
            raise BackupError(
                "a blob the database names is missing from the blob store (records deleted during the backup, "
                "or a damaged data folder or bucket): try again"
            )
        fsync_dirs(dirs)
        copied = sum(1 for n in names if n in fresh)
        copied_bytes = sum(size for n, size in fresh.items() if n in names)
        folder.mkdir()
        try:
            state = folder / (STATE + ".part")
            with encrypting(recipients, state) as pipe, tarfile.open(fileobj=pipe, mode="w|") as tar:
                tar.add(db_copy, db_name)
                tar.add(settings.data_dir / "server.secret", "server.secret")
                if settings.cert is None:
                    for part in ("cert.pem", "key.pem"):
                        if (settings.data_dir / "tls" / part).exists():
                            tar.add(settings.data_dir / "tls" / part, f"tls/{part}")
            publish(state, folder / STATE)
            manifest.state_sha256, manifest.state_size = sha256_file(folder / STATE), (folder / STATE).stat().st_size
            encrypt_bytes(recipients, manifest.to_json(), folder / (MANIFEST + ".part"))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # why: an unfinished snapshot is never restored anyway
            raise
    publish(folder / (MANIFEST + ".part"), folder / MANIFEST)  # last: only now does the snapshot count
    return BackupResult(
        snapshot,
        len(names),
        copied,
        copied_bytes,
        sum(size for size, _ in manifest.blobs.values()) + manifest.state_size,
    )
