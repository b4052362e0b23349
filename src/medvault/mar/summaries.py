"""Summaries sent back to the patient: written by a specialist, signed by them, encrypted for the patient.

A summary is a record owned by the patient and uploaded by the specialist, so it gets everything records
have: its own data key wrapped to the patient, the specialist's signature over the manifest, and the audit
trail. The specialist keeps read access through the share that allowed writing it, so revoking that share
also ends their access to the summary.

Citations are checked here, on the server, with the specialist's own keys, exactly as chart entries' are
(mar/quotes.py): the cited record must be this patient's and readable by the specialist, a page beyond the
document or a quote that is nowhere in the record is refused, and each quote keeps the level found. The summary
then goes out as two records committed in one transaction: the Markdown (the source, its citations in its signed
metadata) and the PDF made from it (mar/summarydoc.py says why two, and how they name each other).
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import Engine, select

from medvault.crypto.keyring import PrivateKeys
from medvault.db.schema import records, shares, users
from medvault.mar import quotes, recordtext, summarydoc
from medvault.mar.entries import citations as clean_citations
from medvault.vault import RecordNotFound, VaultError
from medvault.vault.records import OpenRecord, Vault

CATEGORY = "summary"
MAX_CHARS = 200_000
_TYPES = {"summary.md": "text/markdown", "summary.pdf": "application/pdf"}


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
        self,
        specialist_id: str,
        keys: PrivateKeys,
        patient: str,
        title: str,
        markdown: str,
        max_bytes: int,
        citations: object = None,
    ) -> tuple[str, str]:
        """Seal a Markdown summary for the patient, signed by the specialist, its citations checked, and its PDF;
        returns the ids of the summary and of the PDF."""
        if not markdown.strip():
            raise VaultError("The summary is empty")
        if len(markdown) > MAX_CHARS:
            raise VaultError(f"A summary is at most {MAX_CHARS} characters")
        patient_id, share_id = self._share_from(patient, specialist_id)
        cites = clean_citations(citations)
        cited = self._cited(cites, patient_id, specialist_id, keys)
        custom = summarydoc.citation_fields(cites)
        title = title or "Summary"
        with self._engine.connect() as conn:
            specialist = conn.execute(select(users.c.username).where(users.c.id == specialist_id)).scalar_one()
        titles = {rid: r.metadata.get("title") or r.metadata.get("filename") or rid for rid, r in cited.items()}
        from medvault.mar import summarypdf  # fpdf2 (and numpy, which it imports) loads on the first PDF

        pdf = summarypdf.to_pdf(title, specialist, patient, dt.datetime.now(dt.UTC), markdown, cites, titles)
        source = self._vault.begin_upload(patient_id, max_bytes)
        copy = self._vault.begin_upload(patient_id, max_bytes)
        meta = {"category": CATEGORY, "type": "Summary report"}
        uploads = [
            (source, markdown.encode("utf-8"), title, {**custom, summarydoc.PDF: copy.record_id}, "summary.md"),
            (copy, pdf, f"{title} (PDF)", {summarydoc.SOURCE: source.record_id}, "summary.pdf"),
        ]
        try:
            for upload, content, name, fields, filename in uploads:
                upload.write(content)
                upload.seal({**meta, "title": name, "custom": fields}, filename, _TYPES[filename], specialist_id, keys)
            with self._engine.begin() as conn:
                for upload, *_ in uploads:
                    upload.insert(conn, [(specialist_id, share_id)])
        except BaseException:
            for upload, *_ in uploads:  # none was committed: sealed or not, each leaves nothing behind
                upload.discard()
            raise
        return source.record_id, copy.record_id

    def _cited(self, cites: list[dict], patient_id: str, reader_id: str, keys: PrivateKeys) -> dict[str, OpenRecord]:
        """The cited records, opened with the specialist's keys, once each quote is checked against its text."""
        opened: dict[str, OpenRecord] = {}
        for rid in dict.fromkeys(c["record"] for c in cites):
            try:
                record = self._vault.open(rid, reader_id, keys)
            except RecordNotFound:
                record = None
            if record is None or record.owner_id != patient_id:
                raise VaultError(f"Record {rid} is not one of this patient's records shared with you")
            opened[rid] = record
        quotes.check(cites, lambda rid: recordtext.read(self._vault, opened[rid]))
        return opened

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

    def received(self, patient_id: str, keys: PrivateKeys, limit: int | None = None) -> list[dict]:
        """The summaries the patient can open, newest first, as the records API lists them, each with `pdf`: the
        id of its PDF (None for a summary sent before summaries had one). PDFs are listed with their summary."""
        items = []
        for rid in self.inbox(patient_id)[:limit]:
            try:
                record = self._vault.open(rid, patient_id, keys)
            except VaultError:
                continue  # deleted meanwhile, or failing its check: the records list says so
            meta = record.metadata
            if meta.get("category") == CATEGORY and not summarydoc.is_pdf_copy(meta):
                items.append({**record.as_json(), "pdf": summarydoc.pdf_of(meta)})
        return items
