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
check the signature against the author's key and that the signed id, patient and author match the row.
A quote is checked against the cited record's text before signing, and keeps the level found (mar/quotes.py).
The row holds only ids, the creation time and the sealed body: the kind is sealed too (a dump must not tell
that a patient has an injury), so listing by kind opens the chart's entries and filters them (a chart holds
hundreds of entries, not records' thousands: one AES-GCM open and one signature check each).

Editing and deleting. An entry is replaced or deleted by the patient, or by the specialist who wrote it
while they hold access "annotate". A replacement keeps the id and creation time and is signed by the editor,
who becomes its author. Links never dangle: a delete is refused (409) while another entry links to it, since
unlinking would mean rewriting entries their authors signed; writes and deletes check links inside their
transaction (`_hold_links`), so a link and a delete racing each other cannot both succeed.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass

import sqlalchemy.exc
from sqlalchemy import Engine, delete, insert, or_, select, update

from medvault.audit import AuditTrail
from medvault.auth.sessions import Session
from medvault.crypto import CryptoError
from medvault.crypto.envelope import open_sealed_to, seal_to, sign_manifest, verify_manifest
from medvault.crypto.keyring import PrivateKeys, PublicKeys, open_sealed, seal
from medvault.crypto.passwords import derive_subkey
from medvault.db.schema import chart_entries, chart_keys, record_keys, records, shares, users
from medvault.mar import quotes, recordtext
from medvault.mar.entries import KINDS, ChartError, entry_links, record_refs, validate
from medvault.mar.pdftext import Pages
from medvault.mar.search import Search
from medvault.vault import IntegrityError
from medvault.vault.records import OpenRecord, Vault, usable_key
from medvault.vault.reviews import DuplicateReviews

OWN = "own"


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
    session: Session  # the reader's: the chart's records come from its search index

    @property
    def entry_key(self) -> bytes:
        return derive_subkey(self.key, "chart/entries/v1")


def _readable_ids(desk: Desk):
    """Ids of this chart's records whose key the desk's reader holds now (a query to narrow further)."""
    return (
        select(record_keys.c.record_id)
        .join(records, records.c.id == record_keys.c.record_id)
        .where(
            records.c.owner_id == desk.patient_id,
            record_keys.c.reader_id == desk.reader_id,
            usable_key(time.time()),
        )
    )


@dataclass(frozen=True)
class ChartRecord:
    """A record of the chart as its reader's search index holds it: the id, and the listing (metadata, size,
    upload time, signer) as `GET /api/v1/records` shows it."""

    id: str
    metadata: dict


STATEMENT_DERIVED = ("text", "text_available", "truncated")  # what a statement from a record keeps of it


def from_record(kind: str, data: dict) -> bool:
    """Whether an entry is a statement read from a record (which keeps the record's text, `statement_text`)."""
    return kind == "statement" and "record" in data


def statement_text(found: Pages | None, source: dict) -> dict:
    """What a statement read from a record keeps: the text of the record, or of its chosen pages (a police
    report holds several witnesses); pages beyond the document are refused."""
    if found is None:
        return {"text_available": False}
    numbers = quotes.cited_pages(source, found)
    if numbers:
        texts = [found.page(n) for n in numbers]
        text, truncated = "\n".join(t or "" for t in texts), None in texts
    else:
        text, truncated = found.text, found.truncated
    if not text.strip():
        return {"text_available": False}
    return {"text": text, "text_available": True, "truncated": truncated}


def seal_entry(
    desk: Desk,
    entry_id: str,
    kind: str,
    data: dict,
    created_at: float,
    updated_at: float | None = None,
    origin: dict | None = None,
) -> tuple[dict, dict]:
    """An entry's row and body: the body (ids, kind, author, times, data) signed by the desk's reader and
    sealed under the chart key, bound to the entry and the patient. `data` must have passed the chart's checks.
    `origin`: for an entry imported from another system, who wrote it there, when, and their signature."""
    body = {
        "id": entry_id,
        "patient_id": desk.patient_id,
        "kind": kind,
        "author_id": desk.reader_id,
        "created_at": created_at,
        "data": data,
    }
    if updated_at is not None:
        body["updated_at"] = updated_at
    if origin is not None:
        body["origin"] = origin
    signed = sign_manifest(body, desk.keys.ed25519)
    sealed = seal(desk.entry_key, json.dumps(signed).encode(), _entry_ad(entry_id, desk.patient_id))
    row = {
        "id": entry_id,
        "patient_id": desk.patient_id,
        "author_id": desk.reader_id,
        "created_at": created_at,
        "sealed": sealed,
    }
    return row, body


def _may_write(desk: Desk) -> None:
    if not desk.can_write:
        raise ChartError(f"Your share from {desk.patient!r} is read-only: writing needs access 'annotate'", 403)


def _still_changeable(desk: Desk, entry_id: str) -> list:
    """The entry's row, and for a specialist only while they are still its author (the patient may have taken
    it over since it was read)."""
    where = [chart_entries.c.id == entry_id, chart_entries.c.patient_id == desk.patient_id]
    if desk.role != "patient":
        where.append(chart_entries.c.author_id == desk.reader_id)
    return where


def _hold_links(conn, desk: Desk, links: dict[str, tuple[str, ...]]) -> None:
    """In the writing transaction, after the write: the linked entries still exist, and stay until it commits.
    PostgreSQL locks their rows (FOR SHARE: a concurrent delete waits, then sees this entry's link); SQLite has
    one writer at a time, and this transaction has been it since its write."""
    if not links:
        return
    found = set(
        conn.execute(
            select(chart_entries.c.id)
            .where(chart_entries.c.patient_id == desk.patient_id, chart_entries.c.id.in_(list(links)))
            .with_for_update(read=True)
        ).scalars()
    )
    gone = sorted(set(links) - found)
    if gone:
        raise ChartError(f"Linked entr(y/ies) deleted meanwhile: {', '.join(gone)}", 409)


class Chart:
    def __init__(self, engine: Engine, vault: Vault, audit: AuditTrail, search: Search):
        self._engine = engine
        self._vault = vault
        self._search = search
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
            session.user_id,
            session.username,
            session.user_id,
            session.username,
            "patient",
            True,
            secret,
            session.keys,
            session,
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
            session,
        )

    # -- entries ------------------------------------------------------------------------------------------

    def readable(self, desk: Desk, record_ids: list[str]) -> set[str]:
        """Those of `record_ids` that belong to this chart and the desk's reader can read now."""
        if not record_ids:
            return set()
        with self._engine.connect() as conn:
            return set(conn.execute(_readable_ids(desk).where(record_keys.c.record_id.in_(record_ids))).scalars())

    def add(self, desk: Desk, kind: object, data: object, ip: str | None) -> dict:
        """Check, seal, sign and store one entry; refuse as a whole (nothing written) on any problem."""
        return self.commit(desk, [(str(uuid.uuid4()), kind, data)], [], ip)[0]

    def commit(
        self,
        desk: Desk,
        new: list[tuple[str, str, dict]],
        changed: list[tuple[dict, dict]],
        ip: str | None,
        by_server: bool = False,
        texts: dict[str, Pages] | None = None,
    ) -> list[dict]:
        """New entries `(id, kind, data)` and changes `(entry as read, new data)` checked, sealed and stored in one
        transaction: all or nothing (accepting proposals in bulk writes each occurrence and its proposal).
        `texts` holds records' text the caller has just read, so their citations are checked without reading
        (and OCRing) them again."""
        read = dict(texts or {})

        def pages_of(record_id: str) -> Pages | None:
            if record_id not in read:
                read[record_id] = self.record_text(desk, record_id)
            return read[record_id]

        _may_write(desk)
        now = time.time()
        rows, changes, bodies = [], [], []
        for n, (entry_id, kind, data) in enumerate(new):
            clean = self._checked(desk, kind, data, by_server, pages_of)
            row, body = seal_entry(desk, entry_id, kind, clean, now + n * 1e-6)  # creation order is list order
            rows.append(row)
            bodies.append(body)
        for current, data in changed:
            clean = self._checked(desk, current["kind"], data, by_server, pages_of)
            row, body = seal_entry(desk, current["id"], current["kind"], clean, current["created_at"], now)
            changes.append(row)
            bodies.append(body)
        with self._engine.begin() as conn:
            if rows:
                conn.execute(insert(chart_entries), rows)
            for row in changes:
                done = conn.execute(
                    update(chart_entries)
                    .where(*_still_changeable(desk, row["id"]))
                    .values(author_id=row["author_id"], sealed=row["sealed"])
                )
                if done.rowcount != 1:
                    raise ChartError("The entry was changed or deleted meanwhile", 409)
            for body in bodies:
                _hold_links(conn, desk, entry_links(body["kind"], body["data"]))
        self.audit_entries(desk, bodies, ip)
        return [self._present(body, desk.reader, True) for body in bodies]

    def replace(self, desk: Desk, entry_id: str, data: object, ip: str | None, by_server: bool = False) -> dict:
        """Replace an entry's data, checked as `add` checks it; its id, kind and creation time stay. The editor
        signs the new data and so becomes the entry's author: nobody's name stays on words they did not write."""
        current = self._changeable(desk, entry_id)
        if "data" not in current:
            raise ChartError("This entry failed its integrity check: delete it and write it again", 409)
        return self.commit(desk, [], [(current, data)], ip, by_server)[0]

    def delete(self, desk: Desk, entry_id: str, ip: str | None) -> None:
        """Delete an entry that no other entry links to; otherwise 409 naming those (unlinking would mean
        rewriting entries their authors signed). The links are looked for after the delete, in its transaction,
        so one written meanwhile is seen (see `_hold_links`) and nothing is left pointing at a deleted entry."""
        current = self._changeable(desk, entry_id)
        with self._engine.begin() as conn:
            done = conn.execute(delete(chart_entries).where(*_still_changeable(desk, entry_id)))
            if done.rowcount != 1:
                raise ChartError("The entry was changed or deleted meanwhile", 409)
            linking = [
                e["id"]
                for e in self._opened(desk, conn.execute(self._query(desk)).all())
                if "data" in e and entry_id in entry_links(e["kind"], e["data"])
            ]
            if linking:
                raise ChartError(f"Linked from {', '.join(linking)}: change or delete those entries first", 409)
        self.audit_entries(desk, [current], ip, "chart-delete")

    def _changeable(self, desk: Desk, entry_id: str) -> dict:
        """The entry, opened, if this desk may change it: the patient any entry of their chart, a specialist
        with access 'annotate' the entries they wrote."""
        _may_write(desk)
        with self._engine.connect() as conn:
            rows = conn.execute(self._query(desk, [entry_id])).all()
        if not rows:
            raise ChartError("Entry not found", 404)
        if desk.role != "patient" and rows[0].author_id != desk.reader_id:
            raise ChartError("Only its author or the patient may change an entry", 403)
        return self._opened(desk, rows)[0]

    def _checked(self, desk: Desk, kind: object, data: object, by_server: bool, pages_of) -> dict:
        """The entry's clean data, once every rule for writing it holds: its shape, who may write its kind, the
        records it cites (readable by the writer, quotes checked against their text), the kinds of the entries it
        links."""
        clean = validate(kind, data, by_server)
        if kind == "standard" and desk.role != "specialist":
            raise ChartError("Standards of care are noted by specialists", 403)
        refs = record_refs(clean)
        unreadable = sorted(set(refs) - self.readable(desk, refs))
        if unreadable:
            raise ChartError(f"Record(s) not found in this chart or not readable by you: {', '.join(unreadable)}")
        quotes.check(clean["citations"], pages_of)
        links = entry_links(kind, clean)
        if links:
            found = {e["id"]: e["kind"] for e in self.entries(desk, ids=list(links)) if "data" in e}
            bad = sorted(eid for eid, kinds in links.items() if found.get(eid) not in kinds)
            if bad:
                raise ChartError(f"Linked entr(y/ies) not found in this chart or of the wrong kind: {', '.join(bad)}")
        if from_record(kind, clean):
            source = {"record": clean["record"], **({"pages": clean["pages"]} if "pages" in clean else {})}
            clean.update(self._statement_text(desk, source))
            if source not in clean["citations"]:
                clean["citations"].append(source)
        return clean

    def audit_entries(self, desk: Desk, entries: list[dict], ip: str | None, action: str = "annotate") -> None:
        """One audit line per record each entry cites (one without a record if it cites none), so the patient's
        "who saw my records" shows the chart work on their records."""
        for entry in entries:
            for rid in record_refs(entry.get("data", {})) or [None]:
                self.audit.append(action, desk.reader_id, rid, ip)

    def _statement_text(self, desk: Desk, source: dict) -> dict:
        found = recordtext.read(self._vault, self._vault.open(source["record"], desk.reader_id, desk.keys))
        return statement_text(found, source)

    def record_text(self, desk: Desk, record_id: str) -> Pages | None:
        """A cited record's text, page by page (to check the citation), None when its type has none."""
        return recordtext.read(self._vault, self._vault.open(record_id, desk.reader_id, desk.keys))

    @staticmethod
    def _present(body: dict, author: str | None, valid: bool) -> dict:
        data = body["data"]
        return {
            "id": body["id"],
            "kind": body["kind"],
            "author": author,
            "created_at": body["created_at"],
            **({"updated_at": body["updated_at"]} if "updated_at" in body else {}),
            **({"origin": body["origin"]} if "origin" in body else {}),
            "signature_valid": valid,
            "verified": quotes.verified(data.get("citations") or []),
            "data": data,
        }

    def signed_entries(self, desk: Desk, kinds: tuple[str, ...]) -> list[tuple[dict, dict]]:
        """The entries that verify, each with its signed form (manifest and signature): what an export carries
        so that a reader elsewhere can check who wrote each one."""
        with self._engine.connect() as conn:
            rows = conn.execute(self._query(desk)).all()
        out = []
        for row, entry in zip(rows, self._opened(desk, rows), strict=True):
            if entry["signature_valid"] and entry["kind"] in kinds:
                signed = json.loads(open_sealed(desk.entry_key, row.sealed, _entry_ad(row.id, row.patient_id)))
                out.append((entry, signed))
        return out

    def entries(self, desk: Desk, kinds: tuple[str, ...] | None = None, ids: list[str] | None = None) -> list[dict]:
        """The chart's entries (oldest first), opened and checked. The kind is sealed with the rest, so `kinds`
        filters after opening, and a tampered entry (kind unknown) is listed as failing whatever is asked."""
        with self._engine.connect() as conn:
            rows = conn.execute(self._query(desk, ids)).all()
        return [e for e in self._opened(desk, rows) if not kinds or "data" not in e or e["kind"] in kinds]

    @staticmethod
    def _query(desk: Desk, ids: list[str] | None = None):
        query = (
            select(chart_entries, users.c.username, users.c.ed25519_public)
            .join(users, users.c.id == chart_entries.c.author_id)
            .where(chart_entries.c.patient_id == desk.patient_id)
            .order_by(chart_entries.c.created_at, chart_entries.c.id)
        )
        return query if ids is None else query.where(chart_entries.c.id.in_(ids))

    def _opened(self, desk: Desk, rows) -> list[dict]:
        """Rows of `_query` opened and checked: the author's signature, and the signed ids against the row's."""
        key = desk.entry_key
        out = []
        for row in rows:
            try:
                signed = json.loads(open_sealed(key, row.sealed, _entry_ad(row.id, row.patient_id)))
                body = signed["manifest"]
                valid = (
                    verify_manifest(signed, row.ed25519_public)
                    and (body["id"], body["patient_id"], body["author_id"]) == (row.id, row.patient_id, row.author_id)
                    and body["kind"] in KINDS
                )
                out.append(self._present(body, row.username, valid))
            except (CryptoError, ValueError, KeyError, TypeError):
                out.append(
                    {
                        "id": row.id,
                        "kind": None,
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

    def records(self, desk: Desk) -> list[ChartRecord]:
        """Every record of this chart the reader can read now, newest first, as the reader's search index holds
        it (metadata checked when it was indexed; a record failing its check is not indexed). No record key is
        opened: a chart of 100,000 records costs one query of ids and a pass over the session's cached index,
        not 100,000 HPKE opens."""
        with self._engine.connect() as conn:
            ids = conn.execute(_readable_ids(desk)).scalars().all()
        items = self._search.items(desk.session, ids)
        items.sort(key=lambda item: (-item["uploaded_at"], item["id"]))
        return [ChartRecord(item["id"], item) for item in items]

    def same_documents(self, desk: Desk) -> dict[str, str]:
        """Records the patient judged copies of another (vault/reviews.py), each with the record kept."""
        return DuplicateReviews(self._engine).same_documents(desk.patient_id, desk.key)

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
