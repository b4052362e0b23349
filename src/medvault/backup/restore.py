"""`medvault restore`: rebuild an empty data folder from the newest complete snapshot, verifying every file.

Everything is assembled in a hidden sibling folder and renamed into place only when every SHA-256 in the
(age-authenticated) manifest matched, so a refused or killed restore leaves the target as empty as it was, and
the next try starts afresh. With `blob_url` the blobs go into that bucket instead, which must be empty
(backup/stores.py): each one only once its bytes matched, and a refused restore deletes the ones it had put.
A killed one leaves them beside its journal (backup/journal.py): the next try of the same snapshot keeps those
that hash to the manifest and puts the rest. On PostgreSQL the dump is loaded last, in one transaction, so a
killed restore leaves that database empty too (killed in the instant after it committed and before the rename,
the next try is refused: the database is not empty).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from medvault.backup import BackupError, pgdump, stores
from medvault.backup.ageio import decrypt, decrypt_bytes
from medvault.backup.files import HELD, fsync_dir, fsync_dirs, holding, remove_stale, sha256_file
from medvault.backup.manifest import MANIFEST, STATE, Manifest
from medvault.config import Settings

_STATE_FILES = {"medvault.db", pgdump.DUMP, "server.secret", "tls/cert.pem", "tls/key.pem"}
_HEX = set("0123456789abcdef")


@dataclass
class RestoreResult:
    snapshot: str
    blobs: int
    total_bytes: int
    skipped: list[str]  # newer snapshots without a manifest (unfinished, or their manifest was removed)
    bucket: str = ""  # " and s3://…" when the blobs went into a bucket
    resumed: int = 0  # blobs an interrupted restore had put into the bucket, verified and kept


def newest_snapshot(source: Path) -> tuple[Path, list[str]]:
    """The newest snapshot with a manifest, and the names of newer ones without (never restored)."""
    folders = sorted(p for p in (source / "snapshots").glob("*") if p.is_dir())
    done = [p for p in folders if (p / MANIFEST).exists()]
    if not done:
        raise BackupError(f"{source} holds no complete snapshot")
    return done[-1], [p.name for p in folders if p.name > done[-1].name]


def _extract_state(stream: BinaryIO, into: Path) -> None:
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.name not in _STATE_FILES or not member.isfile():
                    raise BackupError(f"unexpected entry in the snapshot: {member.name[:60]!r}")
                target = into / member.name
                target.parent.mkdir(mode=0o700, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(tar.extractfile(member), out)  # type: ignore[arg-type]
                    os.fsync(out.fileno())
    except (tarfile.TarError, FileExistsError):
        raise BackupError(f"{STATE} is not a state archive of `medvault backup`") from None


def restore(
    settings: Settings,
    source: Path,
    identity: Path,
    progress: Callable[[int, int], Callable[[int], None]] | None = None,
) -> RestoreResult:
    data_dir = settings.data_dir
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore only into an empty or new folder")
    if not identity.is_file():
        raise BackupError(f"identity file {identity} does not exist")
    stages = f".{data_dir.name}.restoring-*"  # a killed restore's stage holds the server secret and TLS key
    stage = data_dir.parent / stages.replace("*", secrets.token_hex(4))
    blobs = stores.target(settings, stage)  # a bucket that is not empty is refused before anything is read
    folder, skipped = newest_snapshot(source)
    manifest = Manifest.from_json(decrypt_bytes(identity, folder / MANIFEST))
    if manifest.snapshot != folder.name:
        raise BackupError(f"the manifest in {folder.name} belongs to another snapshot")
    manifest_sha256 = sha256_file(folder / MANIFEST)  # the journal in a bucket names exactly this backup
    if sha256_file(folder / STATE) != manifest.state_sha256:
        raise BackupError(f"{STATE} of {folder.name} does not match its manifest (changed or damaged)")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(data_dir.parent, stages)
    stage.mkdir(mode=0o700)
    with holding(stage):
        try:
            decrypt(identity, folder / STATE, lambda stream: _extract_state(stream, stage))
            postgres = (stage / pgdump.DUMP).exists()
            if not (postgres or (stage / "medvault.db").exists()) or not (stage / "server.secret").exists():
                raise BackupError(f"{STATE} of {folder.name} lacks the database or the server secret")
            if postgres != bool(settings.database_url):
                raise BackupError(
                    "this snapshot holds a PostgreSQL database: give --database-url of an empty database"
                    if postgres
                    else "this snapshot holds a SQLite database, restored into the data folder: unset database_url"
                )
            total = sum(size for size, _ in manifest.blobs.values())
            tick = stores.serialised(
                blobs.workers, progress(len(manifest.blobs), total) if progress else (lambda _n: None)
            )
            dirs = {p for p in (stage, stage / "tls") if p.exists()}  # fsynced once, at the end
            for name in manifest.blobs:
                if len(name) != 32 or not set(name) <= _HEX:
                    raise BackupError("the manifest names a blob that is not a blob")
                if not (source / "blobs" / name[:2] / name).exists():
                    raise BackupError(f"blob {name} of the snapshot is missing from {source}")

            def put(name: str) -> None:
                blobs.put(name, source / "blobs" / name[:2] / name, manifest.blobs[name][1], tick, dirs)

            kept = blobs.begin(manifest.snapshot, manifest_sha256, manifest.blobs)
            tick(sum(manifest.blobs[name][0] for name in kept))
            stores.each(blobs.workers, put, sorted(manifest.blobs.keys() - kept))
            fsync_dirs(dirs | ({stage / "blobs"} if (stage / "blobs").exists() else set()))
            if postgres:  # last, in one transaction: a refused file above leaves the database empty
                pgdump.restore(settings.database_url, stage / pgdump.DUMP)
                (stage / pgdump.DUMP).unlink()  # the plaintext dump has done its job
            if data_dir.exists():
                data_dir.rmdir()
            os.rename(stage, data_dir)
            (data_dir / HELD).unlink()  # still locked until the block ends: no sweep takes it for a stale stage
            fsync_dir(data_dir.parent)
        except BaseException:
            blobs.discard()
            shutil.rmtree(stage, ignore_errors=True)
            raise
    blobs.finish()  # after the rename: a journal is removed only once the restore is complete
    where = f" and {blobs.store.location}" if isinstance(blobs, stores.BucketBlobs) else ""
    return RestoreResult(manifest.snapshot, len(manifest.blobs), total + manifest.state_size, skipped, where, len(kept))
