"""The one core object: settings, database, blob store, accounts, sessions, vault, audit and events.

The CLI and the web app both drive a `MedVault`; nothing reaches around it to a global.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine

from medvault.audit import AuditTrail
from medvault.auth.accounts import Accounts
from medvault.auth.pool import HashPool
from medvault.auth.sessions import Sessions
from medvault.blobs import Store
from medvault.blobs.location import parse_s3_url
from medvault.blobs.store import BlobStore
from medvault.config import Settings
from medvault.crypto.passwords import Argon2Profile
from medvault.db.engine import make_engine, migrate
from medvault.events import EventLog
from medvault.mar.chart import Chart
from medvault.mar.exports import Exports
from medvault.mar.search import Search
from medvault.mar.sharing import Sharing
from medvault.mar.summaries import Summaries
from medvault.tls import ensure_self_signed
from medvault.vault.records import Vault
from medvault.vault.reviews import DuplicateReviews


class NotInitialised(RuntimeError):
    pass


def _read_or_create_secret(path: Path) -> bytes:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(32))
    return path.read_bytes()


class MedVault:
    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def initialise(self) -> bool:
        """Create what is missing (folders, secret, certificate, schema); never overwrite. True if new."""
        fresh = not (self.data_dir / "server.secret").exists()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        _read_or_create_secret(self.data_dir / "server.secret")
        if self.settings.cert is None:
            ensure_self_signed(self.settings.cert_path, self.settings.key_path, [self.settings.host])
        migrate(self.engine)
        return fresh

    def check_initialised(self) -> None:
        if not (self.data_dir / "server.secret").exists():
            raise NotInitialised(f"{self.data_dir} is not a MedVault data folder: run `medvault init` first")

    @cached_property
    def server_secret(self) -> bytes:
        return (self.data_dir / "server.secret").read_bytes()

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.db_url)

    @cached_property
    def blobs(self) -> Store:
        """The local folder `DATA/blobs`, or the S3-compatible bucket `blob_url` names."""
        s = self.settings
        if not s.blob_url:
            return BlobStore(self.data_dir / "blobs")
        from medvault.blobs.s3 import S3Store  # why: boto3 costs 0.15 s to import; local stores never pay it

        return S3Store(parse_s3_url(s.blob_url), s.s3_access_key, s.s3_secret_key)

    @cached_property
    def accounts(self) -> Accounts:
        s = self.settings
        return Accounts(
            self.engine,
            HashPool(s.login_workers, s.login_queue),
            Argon2Profile(s.argon2_time_cost, s.argon2_memory_kib),
            self.server_secret,
            s.invitation_hours,
        )

    @cached_property
    def sessions(self) -> Sessions:
        return Sessions(self.engine, self.settings.session_idle_minutes, self.settings.session_max_hours)

    @cached_property
    def vault(self) -> Vault:
        return Vault(self.engine, self.blobs)

    @cached_property
    def duplicate_reviews(self) -> DuplicateReviews:
        return DuplicateReviews(self.engine)

    @cached_property
    def sharing(self) -> Sharing:
        return Sharing(self.engine, self.vault, self.audit)

    @cached_property
    def search(self) -> Search:
        return Search(self.engine, self.vault, self.server_secret, self.settings.session_idle_minutes * 60)

    @cached_property
    def summaries(self) -> Summaries:
        return Summaries(self.engine, self.vault)

    @cached_property
    def chart(self) -> Chart:
        return Chart(self.engine, self.vault, self.audit, self.search)

    @cached_property
    def exports(self) -> Exports:
        s = self.settings
        return Exports(self.engine, self.vault, s.max_export_bytes, s.max_upload_bytes)

    @cached_property
    def audit(self) -> AuditTrail:
        return AuditTrail(self.engine)

    @cached_property
    def events(self) -> EventLog:
        return EventLog(self.settings.log_dir)

    def sweep_leftovers(self) -> int:
        """Remove what a crash (kill -9 mid-upload) left behind, once older than `sweep_grace_minutes`: other
        nodes sharing the store may be writing blobs whose rows are not committed yet."""
        return self.blobs.sweep(self.vault.referenced_blobs(), self.settings.sweep_grace_minutes * 60)
