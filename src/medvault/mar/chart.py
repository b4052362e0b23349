"""The chart workspace: one key per patient's chart, and entries sealed and signed under it.

Keys. Each patient has one random 32-byte *chart key*. It is HPKE-sealed (`seal_to`, info bound to patient
and reader) to the patient (`via = "own"`) and to every specialist holding a live share (chart or records)
from that patient, one copy per share (`via` = share id). The patient's session wraps it when a share is made
(`wrap_for_share`, inside the share's transaction) and, for shares made before charts existed, the next time
the patient opens their chart (`_catch_up`). Revoking a share deletes its copy; an expired share's copy stops
counting at once (the share is checked live in the same query that finds the copy) and the housekeeping loop
deletes it. Reading needs any live share; writing needs the patient, or a live share with access "annotate".

Entries. The JSON body (kind, author, time, the fields of mar/entries.py) is signed by the author's Ed25519
key (`sign_manifest`) and sealed with AES-256-GCM under HKDF(chart key, "chart/entries/v1"), the entry id and
patient id as associated data, so an entry cannot be moved to another chart or swapped with another. Readers
check the signature against the author's key and that the signed id, patient, kind and author match the row.
The `kind` column is in clear (the brief's schema); everything else about an entry is sealed.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass

import sqlalchemy.exc
from sqlalchemy import Engine, and_, delete, insert, or_, select

from medvault.audit import AuditTrail
from medvault.auth.sessions import Session
from medvault.crypto import CryptoError
from medvault.crypto.envelope import open_sealed_to, seal_to, sign_manifest, verify_manifest
from medvault.crypto.keyring import PrivateKeys, PublicKeys, open_sealed, seal
from medvault.crypto.passwords import derive_subkey
from medvault.db.schema import chart_entries, chart_keys, record_keys, records, shares, users
from medvault.mar.entries import ChartError, entry_links, record_refs, validate
from medvault.vault import IntegrityError, VaultError
from medvault.vault.records import OpenRecord, Vault, usable_key

OWN = "own"
RECORDS_LIMIT = 500  # newest readable records looked at for candidates and professionals
STATEMENT_BYTES = 256 * 1024
TEXT_TYPES = ("text/plain", "text/markdown")


def _key_info(patient_id: str, reader_id: str) -> bytes:
    return f"medvault/chart-key/v1:{patient_id}:{reader_id}".encode()


def _entry_ad(entry_id: str, patient_id: str) -> bytes:
    return f"medvault/chart-entry/v1:{entry_id}:{patient_id}".encode()


def _live_shares(now: float):
    return select(shares.c.id).where(
        shares.c.revoked_at.is_(None), or_(shares.c.expires_at.is_(None), shares.c.expires_at > now)
    )


def _own_key(conn, patient_id: str, keys: PrivateKeys, create: bool) -> bytes | None:
    wrapped = conn.execute(
        select(chart_keys.c.wrapped).where(
            chart_keys.c.patient_id == patient_id, chart_keys.c.reader_id == patient_id, chart_keys.c.via == OWN
        )
    ).scalar()
    if wrapped is not None:
        try:
            return open_sealed_to(keys.x25519, wrapped, _key_info(patient_id, patient_id))
        except CryptoError:
            raise IntegrityError from None
    if not create:
        return None
    secret = os.urandom(32)
    _insert_key(conn, patient_id, patient_id, keys.public().x25519, secret, None)
    return secret


def _insert_key(conn, patient_id: str, reader_id: str, public: bytes, secret: bytes, share_id: str | None) -> None:
    conn.execute(
        insert(chart_keys).values(
            patient_id=patient_id,
            reader_id=reader_id,
            via=share_id or OWN,
            share_id=share_id,
            wrapped=seal_to(public, secret, _key_info(patient_id, reader_id)),
            granted_at=time.time(),
        )
    )


def wrap_for_share(conn, patient_id: str, keys: PrivateKeys, reader_id: str, public: bytes, share_id: str) -> None:
    """At share time, in the share's transaction: the chart key (made now if new) wrapped for the specialist."""
    secret = _own_key(conn, patient_id, keys, create=True)
    _insert_key(conn, patient_id, reader_id, public, secret, share_id)


def drop_for_share(conn, share_id: str) -> int:
    return conn.execute(delete(chart_keys).where(chart_keys.c.share_id == share_id)).rowcount


def drop_expired(conn, now: float) -> int:
    expired = select(shares.c.id).where(shares.c.expires_at.is_not(None), shares.c.expires_at <= now)
    return conn.execute(delete(chart_keys).where(chart_keys.c.share_id.in_(expired))).rowcount


@dataclass(frozen=True)
class Desk:
    """One reader at one patient's chart: who, whose, what they may do, and the opened chart key."""

    patient_id: str
    patient: str
    reader_id: str
    reader: str
    role: str  # patient | specialist
    can_write: bool
    key: bytes
    keys: PrivateKeys

    @property
    def entry_key(self) -> bytes:
        return derive_subkey(self.key, "chart/entries/v1")


class Chart:
    def __init__(self, engine: Engine, vault: Vault, audit: AuditTrail):
        self._engine = engine
        self._vault = vault
        self.audit = audit

    # -- access -------------------------------------------------------------------------------------------

    def desk(self, session: Session, patient: str | None) -> Desk:
        """Open a chart for a session: its own (patient None, "me" or one's own name) or one shared with it."""
        if session.role not in ("patient", "specialist"):
            raise ChartError("Administrators manage accounts, not charts", 403)
        if patient is not None and not isinstance(patient, str):
            raise ChartError("'patient' must be a user name or null")
        if patient in (None, "me", session.username):
            if session.role != "patient":
                raise ChartError("Only patients have a chart of their own: name the patient", 400)
            return self._own_desk(session)
        return self._shared_desk(session, patient)

    def desk_for_patient_id(self, session: Session, patient_id: str) -> Desk:
        if patient_id == session.user_id:
            return self.desk(session, None)
        with self._engine.connect() as conn:
            name = conn.execute(select(users.c.username).where(users.c.id == patient_id)).scalar()
        return self._shared_desk(session, name or "")

    def _own_desk(self, session: Session) -> Desk:
        for attempt in range(2):
            try:
                with self._engine.begin() as conn:
                    secret = _own_key(conn, session.user_id, session.keys, create=True)
                    self._catch_up(conn, session.user_id, secret)
                break
            except sqlalchemy.exc.IntegrityError:  # another session made it at the same moment: use theirs
                if attempt:
                    raise
        return Desk(
            session.user_id, session.username, session.user_id, session.username, "patient", True, secret, session.keys
        )

    def _catch_up(self, conn, patient_id: str, secret: bytes) -> None:
        """Wrap the chart key for live shares that have no copy yet (shares made before charts existed)."""
        missing = conn.execute(
            select(shares.c.id, shares.c.specialist_id, users.c.x25519_public, users.c.ed25519_public)
            .add_columns(users.c.public_signature)
            .join(users, users.c.id == shares.c.specialist_id)
            .where(
                shares.c.patient_id == patient_id,
                shares.c.id.in_(_live_shares(time.time())),
                ~shares.c.id.in_(select(chart_keys.c.via).where(chart_keys.c.patient_id == patient_id)),
            )
        ).all()
        for row in missing:
            public = PublicKeys(row.x25519_public, row.ed25519_public, row.public_signature)
            if public.verify():  # same rule as sharing: never wrap to a key its owner did not sign
                _insert_key(conn, patient_id, row.specialist_id, public.x25519, secret, row.id)

    def _shared_desk(self, session: Session, patient: str) -> Desk:
        refused = ChartError(f"{patient!r} has not shared their chart with you", 403)
        if session.role != "specialist":
            raise refused
        now = time.time()
        live = _live_shares(now)
        with self._engine.connect() as conn:
            patient_id = conn.execute(
                select(users.c.id).where(users.c.username == patient, users.c.role == "patient")
            ).scalar()
            if patient_id is None:
                raise refused
            accesses = set(
                conn.execute(
                    select(shares.c.access).where(
                        shares.c.patient_id == patient_id,
                        shares.c.specialist_id == session.user_id,
                        shares.c.id.in_(live),
                    )
                ).scalars()
            )
            if not accesses:
                raise refused
            wrapped = conn.execute(
                select(chart_keys.c.wrapped).where(
                    chart_keys.c.patient_id == patient_id,
                    chart_keys.c.reader_id == session.user_id,
                    chart_keys.c.share_id.in_(live),
                )
            ).scalar()
        if wrapped is None:
            raise ChartError(f"{patient!r} has to open their chart once before you can work on it", 409)
        try:
            secret = open_sealed_to(session.keys.x25519, wrapped, _key_info(patient_id, session.user_id))
        except CryptoError:
            raise IntegrityError from None
        return Desk(
            patient_id,
            patient,
            session.user_id,
            session.username,
            "specialist",
            "annotate" in accesses,
            secret,
            session.keys,
        )

    # -- entries ------------------------------------------------------------------------------------------

    def readable(self, desk: Desk, record_ids: list[str]) -> set[str]:
        """Those of `record_ids` that belong to this chart and the desk's reader can read now."""
        if not record_ids:
            return set()
        with self._engine.connect() as conn:
            return set(
                conn.execute(
                    select(record_keys.c.record_id)
                    .join(records, records.c.id == record_keys.c.record_id)
                    .where(
                        records.c.owner_id == desk.patient_id,
                        record_keys.c.reader_id == desk.reader_id,
                        record_keys.c.record_id.in_(record_ids),
                        usable_key(time.time()),
                    )
                ).scalars()
            )

    def add(self, desk: Desk, kind: object, data: object, ip: str | None) -> dict:
        """Check, seal, sign and store one entry; refuse as a whole (nothing written) on any problem."""
        if not desk.can_write:
            raise ChartError(f"Your share from {desk.patient!r} is read-only: writing needs access 'annotate'", 403)
        clean = validate(kind, data)
        if kind == "standard" and desk.role != "specialist":
            raise ChartError("Standards of care are noted by specialists", 403)
        refs = record_refs(clean)
        unreadable = sorted(set(refs) - self.readable(desk, refs))
        if unreadable:
            raise ChartError(f"Record(s) not found in this chart or not readable by you: {', '.join(unreadable)}")
        links = entry_links(kind, clean)
        if links:
            with self._engine.connect() as conn:
                found = dict(
                    conn.execute(
                        select(chart_entries.c.id, chart_entries.c.kind).where(
                            chart_entries.c.patient_id == desk.patient_id, chart_entries.c.id.in_(list(links))
                        )
                    ).all()
                )
            bad = sorted(eid for eid, kinds in links.items() if found.get(eid) not in kinds)
            if bad:
                raise ChartError(f"Linked entr(y/ies) not found in this chart or of the wrong kind: {', '.join(bad)}")
        if kind == "statement" and "record" in clean:
            clean.update(self._statement_text(desk, clean["record"]))
            if not any(c["record"] == clean["record"] for c in clean["citations"]):
                clean["citations"].append({"record": clean["record"]})
        entry_id = str(uuid.uuid4())
        now = time.time()
        body = {
            "id": entry_id,
            "patient_id": desk.patient_id,
            "kind": kind,
            "author_id": desk.reader_id,
            "created_at": now,
            "data": clean,
        }
        signed = sign_manifest(body, desk.keys.ed25519)
        sealed = seal(desk.entry_key, json.dumps(signed).encode(), _entry_ad(entry_id, desk.patient_id))
        with self._engine.begin() as conn:
            conn.execute(
                insert(chart_entries).values(
                    id=entry_id,
                    patient_id=desk.patient_id,
                    kind=kind,
                    author_id=desk.reader_id,
                    created_at=now,
                    sealed=sealed,
                )
            )
        for rid in refs or [None]:
            self.audit.append("annotate", desk.reader_id, rid, ip)
        return self._present(body, desk.reader, True)

    def _statement_text(self, desk: Desk, record_id: str) -> dict:
        record = self._vault.open(record_id, desk.reader_id, desk.keys)
        content_type = (record.metadata.get("content_type") or "").split(";")[0].strip().lower()
        if content_type not in TEXT_TYPES:
            return {"text_available": False}
        raw = b"".join(self._vault.read_range(record, 0, min(record.size, STATEMENT_BYTES)))
        return {
            "text": raw.decode("utf-8", errors="replace"),
            "text_available": True,
            "truncated": record.size > STATEMENT_BYTES,
        }

    @staticmethod
    def _present(body: dict, author: str | None, valid: bool) -> dict:
        data = body["data"]
        return {
            "id": body["id"],
            "kind": body["kind"],
            "author": author,
            "created_at": body["created_at"],
            "signature_valid": valid,
            "verified": bool(data.get("citations")),
            "data": data,
        }

    def entries(self, desk: Desk, kinds: tuple[str, ...] | None = None, ids: list[str] | None = None) -> list[dict]:
        """The chart's entries (oldest first), opened and checked; a tampered one is shown as failing."""
        query = (
            select(chart_entries, users.c.username, users.c.ed25519_public)
            .join(users, users.c.id == chart_entries.c.author_id)
            .where(chart_entries.c.patient_id == desk.patient_id)
            .order_by(chart_entries.c.created_at, chart_entries.c.id)
        )
        if kinds:
            query = query.where(chart_entries.c.kind.in_(kinds))
        if ids is not None:
            query = query.where(chart_entries.c.id.in_(ids))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        key = desk.entry_key
        out = []
        for row in rows:
            try:
                signed = json.loads(open_sealed(key, row.sealed, _entry_ad(row.id, row.patient_id)))
                body = signed["manifest"]
                valid = verify_manifest(signed, row.ed25519_public) and (
                    body["id"],
                    body["patient_id"],
                    body["kind"],
                    body["author_id"],
                ) == (row.id, row.patient_id, row.kind, row.author_id)
                out.append(self._present(body, row.username, valid))
            except (CryptoError, ValueError, KeyError, TypeError):
                out.append(
                    {
                        "id": row.id,
                        "kind": row.kind,
                        "author": row.username,
                        "created_at": row.created_at,
                        "signature_valid": False,
                        "error": "This entry failed its integrity check",
                    }
                )
        return out

    def entry_with_links(self, desk: Desk, entry_id: str) -> dict:
        """One entry with everything linked to it, both ways (for an injury: its occurrences and notes, the
        annotations and standards on them), and the metadata of the records cited, where readable."""
        everything = [e for e in self.entries(desk) if "data" in e]
        by_id = {e["id"]: e for e in everything}
        entry = by_id.get(entry_id)
        if entry is None:
            raise ChartError("Entry not found", 404)
        near = set(entry_links(entry["kind"], entry["data"])) | {entry_id}
        linked = {eid for eid in near if eid in by_id and eid != entry_id}
        for other in everything:
            if set(entry_links(other["kind"], other["data"])) & near and other["id"] != entry_id:
                linked.add(other["id"])
        cited = set(record_refs(entry["data"]))
        for eid in linked:
            cited |= set(record_refs(by_id[eid]["data"]))
        readable = self.readable(desk, sorted(cited))
        return {
            "entry": entry,
            "linked": [by_id[e] for e in sorted(linked, key=lambda i: (by_id[i]["created_at"], i))],
            "records": [
                self._record_brief(self._vault.open(rid, desk.reader_id, desk.keys)) for rid in sorted(readable)
            ],
        }

    @staticmethod
    def _record_brief(record: OpenRecord) -> dict:
        meta = record.metadata
        return {
            "id": record.id,
            **{k: meta[k] for k in ("title", "service_date", "facility", "provider", "type") if k in meta},
        }

    def patient_of_entry(self, entry_id: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(select(chart_entries.c.patient_id).where(chart_entries.c.id == entry_id)).scalar()

    # -- records of the chart -----------------------------------------------------------------------------

    def records(self, desk: Desk, limit: int = RECORDS_LIMIT) -> list[OpenRecord]:
        """The newest `limit` records of this chart the reader can open now (metadata verified)."""
        with self._engine.connect() as conn:
            ids = list(
                conn.execute(
                    select(record_keys.c.record_id)
                    .join(records, records.c.id == record_keys.c.record_id)
                    .where(
                        and_(records.c.owner_id == desk.patient_id, record_keys.c.reader_id == desk.reader_id),
                        usable_key(time.time()),
                    )
                    .order_by(records.c.created_at.desc(), records.c.id)
                    .limit(limit)
                ).scalars()
            )
        opened = []
        for rid in ids:
            try:
                opened.append(self._vault.open(rid, desk.reader_id, desk.keys))
            except VaultError:  # revoked or deleted meanwhile, or failing its check: not proposed
                continue
        return opened

    def specialists(self, desk: Desk) -> list[dict]:
        """Specialists holding a live share from this patient (the patient sees all; a specialist only self)."""
        query = (
            select(users.c.id, users.c.username, users.c.profession)
            .join(shares, shares.c.specialist_id == users.c.id)
            .where(shares.c.patient_id == desk.patient_id, shares.c.id.in_(_live_shares(time.time())))
            .distinct()
        )
        if desk.role != "patient":
            query = query.where(users.c.id == desk.reader_id)
        with self._engine.connect() as conn:
            return [{"id": r.id, "name": r.username, "profession": r.profession} for r in conn.execute(query)]
