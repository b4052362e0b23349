"""Exports of a chart (FHIR Bundles, an age-encrypted archive, a plain ZIP) and the import of a FHIR Bundle.

Every export is assembled completely in memory before any of it is handed out, bounded by `max_bytes` (the
sum of the files' sizes, checked before a record is opened), so a failure (a record failing its integrity
check, a tool error) is answered as an error, never as a truncated export. No plaintext reaches disk: ZIPs are
built in a BytesIO and the `age` tool reads plaintext from a pipe and writes ciphertext to one. At most
`concurrent` exports or imports run at once (each may hold `max_bytes` several times over); more get ExportBusy.

The offline archive is sealed to an age X25519 identity made by `age-keygen` for that export alone: each file
has exactly one recipient, the fresh one, so the long-term keys are never involved and the archive outlives
the server. The identity is returned once and never stored. File names inside the archive are record ids
only; names, titles and dates are in the encrypted `index.csv.age`.

An import is all-or-nothing, a crash included: the Bundle is validated and mapped before the first write, the
files are encrypted into blobs, the occurrences' quotes are checked against the files' text as when typed in
(mar/quotes.py), and one transaction then commits every record and chart occurrence. Until it commits no row
names those blobs: a failure deletes them, a killed process leaves them to the start-up sweep.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import shutil
import subprocess
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, or_, select

from medvault.crypto.keyring import PrivateKeys
from medvault.db.schema import chart_entries, record_keys, records, shares, users
from medvault.mar import fhirreview, quotes, recordtext, summarydoc
from medvault.mar.chart import STATEMENT_DERIVED, Desk, from_record, seal_entry, statement_text
from medvault.mar.entries import ChartError, entry_links, validate
from medvault.mar.fhir import ExportedRecord, FhirError, Person, chart_bundle, summary_bundle
from medvault.mar.fhirimport import placeholder, read_chart
from medvault.mar.pdftext import Pages
from medvault.mar.summaries import CATEGORY
from medvault.vault import IntegrityError, RecordNotFound, TooLarge, VaultError
from medvault.vault.records import Upload, Vault, usable_key

CHUNK = 1 << 20
INDEX_COLUMNS = (
    "file",
    "id",
    "title",
    "description",
    "facility",
    "provider",
    "type",
    "category",
    "service_date",
    "document_date",
    "tags",
    "confidentiality",
    "custom",
    "filename",
    "content_type",
    "size",
    "sha256",
    "uploaded_at",
    "signed_by",
    "signature_valid",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
README = """MedVault export for offline reading, sealed with age (https://age-encryption.org).

Each file is encrypted to one age identity made for this export only; it was shown once when the export was
made. Save it to a file (say identity.txt, readable by you alone), then:

    age --decrypt --identity identity.txt --output index.csv index.csv.age
    age --decrypt --identity identity.txt --output record.pdf records/<id>.age

index.csv names each file (records/<id>.age) with its title, dates, facility, provider and original name.
"""


class ExportError(VaultError):
    """An export or import that cannot be done; the message says why."""


class ExportTooLarge(TooLarge):
    pass


class ExportBusy(ExportError):
    pass


class ToolMissing(ExportError):
    pass


@dataclass(frozen=True)
class Imported:
    """What an import made: the records' uploads (committed) and the chart entries (as the chart shows them),
    and what of the Bundle it could not keep, each named by its place in the Bundle."""

    uploads: list[Upload]
    entries: list[dict]
    not_kept: list[str]
    already_present: dict[str, int]  # records and occurrences of the Bundle the chart held already


@dataclass(frozen=True)
class AgeArchive:
    identity: str
    recipient: str
    archive: bytes
    record_ids: list[str]


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _cell(value: object) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def index_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(INDEX_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(col)) for col in INDEX_COLUMNS])
    return out.getvalue().encode("utf-8-sig")  # the BOM makes spreadsheets read UTF-8


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(f"The `{name}` tool is not installed on this server")
    return path


def new_age_identity() -> tuple[str, str]:
    """A fresh X25519 age identity and its recipient, made by `age-keygen` (nothing touches disk)."""
    keygen = _tool("age-keygen")
    made = subprocess.run([keygen], capture_output=True, check=True, timeout=30).stdout.decode()
    identity = next(line for line in made.splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    derived = subprocess.run([keygen, "-y"], input=identity.encode(), capture_output=True, check=True, timeout=30)
    return identity, derived.stdout.decode().strip()


def age_encrypt(recipient: str, plaintext: bytes) -> bytes:
    """Encrypt to one age recipient through pipes (plaintext on stdin, ciphertext on stdout)."""
    age = _tool("age")
    try:
        done = subprocess.run(
            [age, "--encrypt", "--recipient", recipient],
            input=plaintext,
            capture_output=True,
            check=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        raise ExportError("age could not encrypt the export") from None
    return done.stdout


def _fingerprint(kind: str, data: dict) -> str:
    """What makes two entries the same one, whatever records they cite."""
    return json.dumps([kind, {k: v for k, v in data.items() if k not in ("citations", "id")}], sort_keys=True)


def _checked_review(found) -> list[tuple[str, str, dict]]:
    """The Bundle's review entries checked as typed-in entries are, records named by `placeholder`."""
    placeholders = {old: placeholder(n) for n, old in enumerate(found.document_ids) if old}
    out = []
    for old, kind, data in found.review.entries:
        if from_record(kind, data):  # what it kept of its record is read again from the file
            data = {k: v for k, v in data.items() if k not in STATEMENT_DERIVED}
        try:
            out.append((old, kind, validate(kind, fhirreview.remap(data, placeholders))))
        except ChartError as exc:
            raise FhirError(f"Basic {old[:36]}: {exc}") from None
    return out


class Exports:
    def __init__(self, engine: Engine, vault: Vault, max_bytes: int, max_upload_bytes: int, concurrent: int = 2):
        self._engine = engine
        self._vault = vault
        self.max_bytes = max_bytes
        self._max_upload = max_upload_bytes
        self._slots = threading.BoundedSemaphore(concurrent)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the few export slots, or refuse at once (exports hold whole charts in memory)."""
        if not self._slots.acquire(blocking=False):
            raise ExportBusy("Another export is running; try again in a moment")
        try:
            yield
        finally:
            self._slots.release()

    # Who and what.

    def person(self, user_id: str) -> Person:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(users.c.id, users.c.username, users.c.role, users.c.profession).where(users.c.id == user_id)
            ).first()
        if row is None:
            raise RecordNotFound
        return Person(row.id, row.username, row.role, row.profession)

    def shared_patient(self, specialist_id: str, patient: str) -> Person | None:
        """The patient (by id or username) if they have a live share to this specialist, else None."""
        now = time.time()
        with self._engine.connect() as conn:
            row = conn.execute(
                select(users.c.id, users.c.username, users.c.role, users.c.profession)
                .join(shares, shares.c.patient_id == users.c.id)
                .where(
                    or_(users.c.id == patient, users.c.username == patient),
                    shares.c.specialist_id == specialist_id,
                    shares.c.revoked_at.is_(None),
                    or_(shares.c.expires_at.is_(None), shares.c.expires_at > now),
                )
                .limit(1)
            ).first()
        return Person(row.id, row.username, row.role, row.profession) if row else None

    def chart(self, reader_id: str, patient_id: str) -> list[tuple[str, int]]:
        """(record id, size) of the patient's records the reader holds a usable key for, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(records.c.id, records.c.size)
                .join(record_keys, record_keys.c.record_id == records.c.id)
                .where(records.c.owner_id == patient_id, record_keys.c.reader_id == reader_id, usable_key(time.time()))
                .order_by(records.c.created_at, records.c.id)
            ).all()
        total = sum(size for _, size in rows)
        if total > self.max_bytes:
            raise ExportTooLarge(
                f"The export would hold {total} bytes of files, over the limit of {self.max_bytes} bytes"
            )
        return [(r.id, r.size) for r in rows]

    def _records(self, reader_id: str, keys: PrivateKeys, ids: Iterable[str]) -> Iterator[tuple[ExportedRecord, dict]]:
        """Open, verify and read each record in full; yields it with its listing (as the API shows it)."""
        people: dict[str, Person] = {}
        for rid in ids:
            record = self._vault.open(rid, reader_id, keys)
            content = b"".join(self._vault.read_range(record, 0, record.size))
            if len(content) != record.size:
                raise IntegrityError
            if record.uploader_id not in people:
                people[record.uploader_id] = self.person(record.uploader_id)
            listing = record.as_json()
            yield ExportedRecord(rid, record.metadata, record.created_at, people[record.uploader_id], content), listing

    # FHIR.

    def fhir_chart(
        self,
        reader_id: str,
        keys: PrivateKeys,
        patient: Person,
        authored: Iterable[fhirreview.Authored] = (),
        people: dict[str, str] | None = None,
        places: dict[str, str] | None = None,
    ) -> tuple[dict, list[str]]:
        """The chart as a FHIR collection Bundle, with the ids of the records in it: the records, the
        occurrences as clinical resources, the review as Basic resources, and every entry's Provenance."""
        ids = [rid for rid, _ in self.chart(reader_id, patient.id)]
        records = (rec for rec, _ in self._records(reader_id, keys, ids))
        authored = list(authored)
        occurrences = [{**a.entry["data"], "id": a.entry["id"]} for a in authored if a.entry["kind"] == "occurrence"]
        bundle = chart_bundle(
            patient,
            records,
            occurrences,
            now=time.time(),
            people=people,
            places=places,
            more=lambda author_ref, patient_ref: fhirreview.resources(authored, author_ref, patient_ref),
        )
        return bundle, ids

    def fhir_summary(self, reader_id: str, keys: PrivateKeys, record_id: str) -> dict:
        """A summary as a FHIR document Bundle (Composition first)."""
        ((record, _),) = self._records(reader_id, keys, [record_id])
        if record.metadata.get("category") != CATEGORY:
            raise ExportError("This record is not a summary")
        with self._engine.connect() as conn:
            owner = conn.execute(select(records.c.owner_id).where(records.c.id == record_id)).scalar_one()
        if record.uploader.id == owner:
            raise ExportError("This record is not a summary written by a specialist")
        cited = list(dict.fromkeys(c["record"] for c in summarydoc.citations_of(record.metadata)))
        with self._engine.connect() as conn:  # a specialist may have lost some since: those are named, not attached
            readable = set(
                conn.execute(
                    select(record_keys.c.record_id).where(
                        record_keys.c.record_id.in_(cited),
                        record_keys.c.reader_id == reader_id,
                        usable_key(time.time()),
                    )
                ).scalars()
            )
        found = [rec for rec, _ in self._records(reader_id, keys, [rid for rid in cited if rid in readable])]
        return summary_bundle(self.person(owner), record, time.time(), found)

    def import_fhir(
        self,
        desk: Desk,
        bundle: object,
        more_readers: Callable[[dict], list[tuple[str, str]]] | None = None,
        keep_head: int = 0,
        duplicate_key: bytes | None = None,
        present: Iterable[tuple[str, str, dict]] = (),
    ) -> Imported:
        """Records for the DocumentReferences and chart occurrences for the clinical resources, in the patient's
        own chart (`desk`); all or nothing, even if the process dies half-way.

        Every file is encrypted into a blob first (fsynced, in place); then one transaction inserts every record
        row, wrapped key and entry. Nothing is visible before it commits. On any failure the blobs are deleted;
        after a crash (kill -9) the start-up sweep removes them, since no row names them.

        The review (mar/fhirreview.py) comes in too, its links remapped to the new records and entries, each
        entry keeping its original author and signature as `origin`.

        Importing the same Bundle again adds nothing again: a file whose keyed hash (`duplicate_key`, the owner's)
        equals a current record's is not stored twice, its citations point at that record, and an entry equal to
        one already `present` in the chart (`(id, kind, data)`; citations aside) is not added twice."""
        found = read_chart(bundle)  # validates and maps everything but the files before any write
        reviews = _checked_review(found)
        have = {h: rid for rid, h, _ in self._vault.current_owned(desk.patient_id) if h} if duplicate_key else {}
        uploads: list[Upload] = []
        record_ids: list[str] = []
        checked = {
            c["record"]
            for data in [*found.occurrences, *(d for _, _, d in reviews)]
            for c in data.get("citations", [])
            if quotes.needs_text(c)
        } | {data["record"] for _, kind, data in reviews if from_record(kind, data)}
        texts: dict[str, Pages | None] = {}
        try:
            for n, imported in enumerate(found.records):
                if placeholder(n) in checked:  # only a cited file's text is read, while it is in memory
                    texts[placeholder(n)] = recordtext.of_content(imported.content, imported.content_type)
                digest = hmac.new(duplicate_key, imported.content, hashlib.sha256).hexdigest() if duplicate_key else ""
                if digest in have:
                    record_ids.append(have[digest])
                    continue
                upload = self._vault.begin_upload(desk.patient_id, self._max_upload)
                upload.keep_head = keep_head
                if duplicate_key:
                    upload.keep_duplicate_hash(duplicate_key)
                    have[digest] = upload.record_id  # the same file twice in one Bundle is stored once too
                uploads.append(upload)
                record_ids.append(upload.record_id)
                view = memoryview(imported.content)
                for start in range(0, len(view), CHUNK):
                    upload.write(view[start : start + CHUNK])
                upload.seal(imported.metadata, imported.filename, imported.content_type, desk.reader_id, desk.keys)
            for data in [*found.occurrences, *(d for _, _, d in reviews)]:  # quotes checked as when typed in
                quotes.check(data.get("citations", []), texts.get)
            for _, kind, data in reviews:
                if from_record(kind, data):
                    data.update(statement_text(texts.get(data["record"]), data))
            readers = [more_readers(u.metadata) if more_readers is not None else [] for u in uploads]
            occurrences = [
                (old, "occurrence", occ) for old, occ in zip(found.occurrence_ids, found.occurrences, strict=True)
            ]
            planned = [*occurrences, *reviews]
            entries = self._review_entries(desk, planned, record_ids, found.review.origins, list(present))
            with self._engine.begin() as conn:
                for upload, extra in zip(uploads, readers, strict=True):
                    upload.insert(conn, extra)
                if entries:
                    conn.execute(insert(chart_entries), [row for row, _ in entries])
        except BaseException:
            for upload in uploads:
                upload.discard()
            raise
        present_now = {"records": len(record_ids) - len(uploads), "entries": len(planned) - len(entries)}
        return Imported(uploads, [body for _, body in entries], found.not_kept, present_now)

    def _review_entries(
        self,
        desk: Desk,
        planned: list[tuple[str, str, dict]],
        record_ids: list[str],
        origins: dict[str, dict],
        present: list[tuple[str, str, dict]],
    ) -> list[tuple[dict, dict]]:
        """Rows and bodies of the entries to write, in Bundle order (1 µs apart: entries list by creation time),
        each link remapped from the Bundle's ids to this chart's, and those already present left out."""
        ids = {placeholder(n): rid for n, rid in enumerate(record_ids)}
        existing = {_fingerprint(kind, data): eid for eid, kind, data in present}
        known = {eid for eid, _, _ in present}
        keys = self._public_keys({o["author"] for o in origins.values()})
        now = time.time()
        out = []
        for n, (old, kind, data) in enumerate(planned):
            mapped = fhirreview.remap(data, ids)
            mark = _fingerprint(kind, mapped)
            if mark in existing:
                ids[old] = existing[mark]
                continue
            eid = existing[mark] = ids[old] = str(uuid.uuid4())
            missing = [x for x in entry_links(kind, mapped) if x not in known]
            if missing:
                raise FhirError(f"a {kind} of the Bundle links to an entry that is neither in it nor in the chart")
            known.add(eid)
            origin = origins.get(old)
            if origin is not None:
                verdict = fhirreview.verdict(origin, kind, data, keys.get(origin["author"]))
                origin = {k: v for k, v in origin.items() if k != "_signed"} | {"signature": verdict}
            out.append(seal_entry(desk, eid, kind, mapped, now + n / 1e6, origin=origin))
        return out

    def _public_keys(self, usernames: set[str]) -> dict[str, bytes]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(users.c.username, users.c.ed25519_public).where(users.c.username.in_(usernames)))
            return {row.username: row.ed25519_public for row in rows}

    # Offline archives.

    def _index_row(self, file: str, record: ExportedRecord, listing: dict) -> dict:
        return {
            **record.metadata,
            "file": file,
            "id": record.id,
            "size": len(record.content),
            "sha256": hashlib.sha256(record.content).hexdigest(),
            "uploaded_at": _iso(record.uploaded_at),
            "signed_by": listing["signed_by"],
            "signature_valid": listing["signature_valid"],
        }

    def age_archive(self, owner_id: str, keys: PrivateKeys) -> AgeArchive:
        """The owner's chart as a ZIP of age files sealed to a fresh identity, returned with that identity."""
        ids = [rid for rid, _ in self.chart(owner_id, owner_id)]
        identity, recipient = new_age_identity()
        buffer = io.BytesIO()
        rows = []
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # ciphertext does not compress
            archive.writestr("README.txt", README, zipfile.ZIP_DEFLATED)
            for record, listing in self._records(owner_id, keys, ids):
                name = f"records/{record.id}.age"
                archive.writestr(name, age_encrypt(recipient, record.content))
                rows.append(self._index_row(name, record, listing))
            archive.writestr("index.csv.age", age_encrypt(recipient, index_csv(rows)))
        return AgeArchive(identity, recipient, buffer.getvalue(), ids)

    def plain_zip(self, owner_id: str, keys: PrivateKeys) -> tuple[bytes, list[str]]:
        """The owner's chart as a plain ZIP: each file under records/<id>-<name>, and index.csv."""
        ids = [rid for rid, _ in self.chart(owner_id, owner_id)]
        buffer = io.BytesIO()
        rows = []
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for record, listing in self._records(owner_id, keys, ids):
                name = f"records/{record.id}-{record.metadata.get('filename') or 'upload'}"
                text = (record.metadata.get("content_type") or "").startswith(("text/", "application/json"))
                archive.writestr(name, record.content, zipfile.ZIP_DEFLATED if text else zipfile.ZIP_STORED)
                rows.append(self._index_row(name, record, listing))
            archive.writestr("index.csv", index_csv(rows))
        return buffer.getvalue(), ids


def base64_chunks(data: bytes, size: int = 3 * 65536) -> Iterator[bytes]:
    """Base64 of `data` in pieces that concatenate to the whole (each piece a multiple of 3 input bytes)."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield base64.b64encode(view[start : start + size])
