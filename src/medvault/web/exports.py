"""Export and import API: FHIR Bundles of a chart or a summary, FHIR import, and offline archives.

- `GET /api/v1/export/fhir`: the caller's own chart (patient); a specialist names a patient who shared with
  them in the `X-MedVault-Patient` header (id or username) or as `?patient=<id>` (ids only in a URL), and gets
  only the records they can read.
- `GET /api/v1/export/fhir/summary/{id}`: a specialist's summary as a FHIR document Bundle.
- `POST /api/v1/import/fhir` (patient, X-CSRF-Token): a Bundle as exported above becomes records, and its
  clinical resources occurrences in the patient's chart (`{"ids", "count", "entries"}`); all or nothing, even
  if the server dies half-way (mar/exports.py), and malformed FHIR is a 400 naming the problem.
- `POST /api/v1/export/age` and `POST /api/v1/export/zip` (patient, X-CSRF-Token, `{"password"}`): each behind
  a fresh password check counted by the login jails. `age` answers JSON `{"identity", "recipient", "records",
  "filename", "archive"}` (archive = base64 ZIP of `records/<id>.age`, `index.csv.age`, `README.txt`): the
  identity is shown this once and never stored. `zip` answers the plain ZIP (files and `index.csv`).

Each response is built completely before its first byte leaves (see mar/exports.py), so an error is an error
response and never a truncated file; everything carries `Cache-Control: no-store`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from medvault.auth import InvalidCredentials
from medvault.auth.sessions import Session
from medvault.mar import facilities, fhirreview, professionals
from medvault.mar.duplicates import duplicate_key
from medvault.mar.entries import ChartError
from medvault.mar.exports import ExportBusy, ToolMissing, base64_chunks
from medvault.mar.fhir import Person
from medvault.mar.fhirreview import Authored
from medvault.mar.index import TEXT_BYTES
from medvault.web.api import json_body
from medvault.web.clientip import client_ip
from medvault.web.login import guarded
from medvault.web.security import check_csrf, record_id_param, require_session, vault_of

PATIENT_HEADER = "x-medvault-patient"
_PIECE = 1 << 16
_NO_STORE = {"cache-control": "no-store"}


async def _run(work: Callable):
    """Run heavy export work off the event loop; a full house or a missing tool is a 503."""
    try:
        return await run_in_threadpool(work)
    except (ExportBusy, ToolMissing) as exc:
        raise HTTPException(503, str(exc)) from None


def _json_pieces(value: object) -> list[bytes]:
    """JSON in ~64 KiB pieces, all encoded before any is sent (NaN refused here, not half-way through)."""
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    pieces: list[bytes] = []
    pending: list[str] = []
    size = 0
    for part in encoder.iterencode(value):
        pending.append(part)
        size += len(part)
        if size >= _PIECE:
            pieces.append("".join(pending).encode())
            pending, size = [], 0
    pieces.append("".join(pending).encode())
    return pieces


def _stream(pieces: list[bytes], media_type: str, filename: str | None = None) -> Response:
    headers = {**_NO_STORE, "content-length": str(sum(len(p) for p in pieces))}
    if filename:
        headers["content-disposition"] = f'attachment; filename="{filename}"'
    return StreamingResponse(iter(pieces), media_type=media_type, headers=headers)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def _audit(request: Request, session: Session, action: str, ids: list[str]) -> None:
    medvault = vault_of(request)
    ip = client_ip(request.scope)
    for rid in ids:
        medvault.audit.append(action, session.user_id, rid, ip)


def _patient(request: Request, session: Session) -> Person:
    """Whose chart: the patient's own, or for a specialist a patient with a live share to them."""
    exports = vault_of(request).exports
    named = request.headers.get(PATIENT_HEADER)
    query = request.query_params.get("patient")
    if query is not None:
        try:
            query = str(uuid.UUID(query))
        except ValueError:
            raise HTTPException(
                400, "?patient= takes the patient's id; send a username in X-MedVault-Patient"
            ) from None
    wanted = named or query
    if session.role == "patient":
        if wanted and wanted not in (session.user_id, session.username):
            raise HTTPException(403, "Patients export their own chart")
        return exports.person(session.user_id)
    if not wanted:
        raise HTTPException(400, "Name the patient: X-MedVault-Patient header (id or username) or ?patient=<id>")
    patient = exports.shared_patient(session.user_id, wanted)
    if patient is None:
        raise HTTPException(404, "No chart shared with you by that patient")
    return patient


def review_for(
    request: Request, session: Session, patient: Person
) -> tuple[list[Authored], dict[str, str], dict[str, str]]:
    """The chart's entries for the export (occurrences and the review, each with its signed form and author),
    and who is who among the professionals and the facilities (professionals.of_chart, facilities.of_chart:
    saved merges, automatic groups).

    Only entries that open and verify are exported. A specialist whose patient has not opened the chart yet
    (no chart key for them: 409 from the chart) gets the records without entries.
    """
    medvault = vault_of(request)
    chart = medvault.chart
    try:
        desk = chart.desk_for_patient_id(session, patient.id)
    except ChartError as exc:
        if exc.status == 409:
            return [], {}, {}
        raise HTTPException(exc.status, str(exc)) from None
    signed = chart.signed_entries(desk, ("occurrence", "merge", *fhirreview.REVIEW_KINDS))
    people: dict[str, Person] = {}
    authored = []
    for entry, form in signed:
        author_id = form["manifest"]["author_id"]
        if author_id not in people:
            people[author_id] = medvault.exports.person(author_id)
        authored.append(fhirreview.Authored(entry, form, people[author_id]))
    entries, records = [e for e, _ in signed], chart.records(desk)
    return authored, professionals.of_chart(entries, records), facilities.of_chart(entries, records)


async def export_fhir(request: Request) -> Response:
    session = require_session(request, roles=("patient", "specialist"))
    patient = _patient(request, session)
    exports = vault_of(request).exports

    def work() -> tuple[list[bytes], list[str]]:
        authored, people, places = review_for(request, session, patient)
        with exports.slot():
            bundle, ids = exports.fhir_chart(session.user_id, session.keys, patient, authored, people, places)
            return _json_pieces(bundle), ids

    pieces, ids = await _run(work)
    _audit(request, session, "export", ids)
    return _stream(pieces, "application/fhir+json", f"medvault-fhir-{_stamp()}.json")


async def export_summary(request: Request) -> Response:
    session = require_session(request, roles=("patient", "specialist"))
    record_id = record_id_param(request)
    exports = vault_of(request).exports

    def work() -> list[bytes]:
        with exports.slot():
            return _json_pieces(exports.fhir_summary(session.user_id, session.keys, record_id))

    pieces = await _run(work)
    _audit(request, session, "export", [record_id])
    return _stream(pieces, "application/fhir+json", f"medvault-summary-{_stamp()}.json")


async def _limited_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"The Bundle exceeds the import limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"The Bundle exceeds the import limit of {limit} bytes")
    return bytes(body)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


async def import_fhir(request: Request) -> Response:
    session = require_session(request, roles=("patient",))
    check_csrf(request, session)
    medvault = vault_of(request)
    exports = medvault.exports
    limit = exports.max_bytes * 4 // 3 + (1 << 20)  # base64 of the export limit, plus the JSON around it
    body = await _limited_body(request, limit)

    def work():
        try:
            data = json.loads(body, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, "Malformed FHIR: the body is not valid JSON") from None
        desk = medvault.chart.desk(session, None)  # the patient's own chart: occurrences go there
        present = [(e["id"], e["kind"], e["data"]) for e in medvault.chart.entries(desk) if "data" in e]
        with exports.slot():
            imported = exports.import_fhir(
                desk,
                data,
                lambda meta: medvault.sharing.readers_for_new_record(session.user_id, session.keys, meta),
                TEXT_BYTES,
                duplicate_key(medvault.search.store, session.user_id, session.keys),
                present,
            )
        return desk, imported

    desk, imported = await _run(work)
    ids = [u.record_id for u in imported.uploads]
    _audit(request, session, "import", ids)
    medvault.chart.audit_entries(desk, imported.entries, client_ip(request.scope))
    await run_in_threadpool(medvault.search.index_uploads, session, imported.uploads)  # a PDF's text takes CPU
    entries = [e["id"] for e in imported.entries]
    answer = {"ids": ids, "count": len(ids), "entries": entries, "not_kept": imported.not_kept}
    answer["already_present"] = imported.already_present
    return JSONResponse(answer, 201)


async def _fresh_password(request: Request, session: Session) -> None:
    """Re-check the password, under the same login jails as signing in (a stolen session cannot guess)."""
    data = await json_body(request, "password")
    accounts = vault_of(request).accounts
    await guarded(
        request,
        session.username,
        "export",
        lambda: accounts.authenticate(session.username, data["password"]),
        (InvalidCredentials,),
    )


async def _offline_export(request: Request, build):
    """Password checked again, then `build(exports, session)` in an export slot; returns (session, result)."""
    session = require_session(request, roles=("patient",))
    check_csrf(request, session)
    await _fresh_password(request, session)
    exports = vault_of(request).exports

    def work():
        with exports.slot():
            return build(exports, session)

    return session, await _run(work)


async def export_age(request: Request) -> Response:
    session, made = await _offline_export(request, lambda ex, s: ex.age_archive(s.user_id, s.keys))
    _audit(request, session, "export", made.record_ids)
    head = {
        "identity": made.identity,
        "recipient": made.recipient,
        "records": len(made.record_ids),
        "filename": f"medvault-age-{_stamp()}.zip",
        "created_at": time.time(),
    }
    opening = json.dumps(head)[:-1] + ', "archive": "'
    return _stream([opening.encode(), *base64_chunks(made.archive), b'"}'], "application/json")


async def export_zip(request: Request) -> Response:
    session, (archive, ids) = await _offline_export(request, lambda ex, s: ex.plain_zip(s.user_id, s.keys))
    _audit(request, session, "export", ids)
    return _stream([archive], "application/zip", f"medvault-export-{_stamp()}.zip")


routes = [
    Route("/api/v1/export/fhir", export_fhir, methods=["GET"]),
    Route("/api/v1/export/fhir/summary/{id}", export_summary, methods=["GET"]),
    Route("/api/v1/import/fhir", import_fhir, methods=["POST"]),
    Route("/api/v1/export/age", export_age, methods=["POST"]),
    Route("/api/v1/export/zip", export_zip, methods=["POST"]),
]
