"""Summaries sent back to the patient: written by a specialist, signed by them, encrypted for the patient.

A summary is a record owned by the patient and uploaded by the specialist, so it gets everything records
have: its own data key wrapped to the patient, the specialist's signature over the manifest, and the audit
trail. The specialist keeps read access through the share that allowed writing it, so revoking that share
also ends their access to the summary.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, select

from medvault.crypto.keyring import PrivateKeys
from medvault.db.schema import records, shares, users
from medvault.vault import VaultError
from medvault.vault.records import Vault

CATEGORY = "summary"
MAX_CHARS = 200_000


class Summaries:
    def __init__(self, engine: Engine, vault: Vault):
        self._engine = engine
        self._vault = vault

    def _share_from(self, patient: str, specialist_id: str) -> tuple[str, str]:
        """(patient id, share id) of a live share from `patient` to this specialist."""
        now = time.time()
        with self._engine.connect() as conn:
            row = conn.execute(
                select(users.c.id, shares.c.id.label("share_id"))
                .join(shares, shares.c.patient_id == users.c.id)
                .where(
                    users.c.username == patient,
                    shares.c.specialist_id == specialist_id,
                    shares.c.revoked_at.is_(None),
                    (shares.c.expires_at.is_(None)) | (shares.c.expires_at > now),
                )
                .order_by(shares.c.created_at.desc())
            ).first()
        if row is None:
            raise VaultError(f"{patient!r} has not shared their records with you")
        return row.id, row.share_id

    def send(
        self, specialist_id: str, keys: PrivateKeys, patient: str, title: str, markdown: str, max_bytes: int
    ) -> str:
        """Seal a Markdown summary for the patient, signed by the specialist; returns its record id."""
        if not markdown.strip():
            raise VaultError("The summary is empty")
        if len(markdown) > MAX_CHARS:
            raise VaultError(f"A summary is at most {MAX_CHARS} characters")
        patient_id, share_id = self._share_from(patient, specialist_id)
        upload = self._vault.begin_upload(patient_id, max_bytes)
        try:
            upload.write(markdown.encode("utf-8"))
            return upload.finish(
                {"title": title or "Summary", "category": CATEGORY, "type": "Summary report"},
                "summary.md",
                "text/markdown",
                specialist_id,
                keys,
                lambda _meta: [(specialist_id, share_id)],
            )
        except BaseException:
            upload.abort()
            raise

    def inbox(self, patient_id: str) -> list[str]:
        """Ids of records the patient owns that someone else wrote, newest first (summaries among them)."""
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(records.c.id)
                    .where(records.c.owner_id == patient_id, records.c.uploader_id != patient_id)
                    .order_by(records.c.created_at.desc())
                ).scalars()
            )
