"""Chart workspace API: entries (occurrences, injuries, statements, marks, standards, annotations, merge
decisions), proposals read from the records (read, list, accept, reject), the chronology (JSON, CSV and PDF),
statement comparison, the standards checklist, professionals and facilities.

Everything that names a patient or a health detail travels in a JSON body, never in a URL; `patient` is a
user name, or null / "me" for the caller's own chart. One entry is read (GET), replaced (PUT) or deleted
(DELETE) at `/api/v1/charts/entries/{id}`: the entry id says whose chart. Every read and write enters the
audit trail.
"""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.mar import chronology as chrono
from medvault.mar import facilities, professionals, proposals, statements
from medvault.mar.entries import KINDS, ChartError, canonical_id
from medvault.web.api import json_body
from medvault.web.clientip import client_ip
from medvault.web.security import check_csrf, require_session, vault_of


def _refusals(handler):
    """ChartError carries its own 4xx status; everything else goes to the app's error handlers."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ChartError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    return wrapped


async def _open(request: Request, allowed: set[str], *required: str):
    """Session (CSRF checked), body (no unknown keys) and the desk at the named patient's chart."""
    session = require_session(request, roles=("patient", "specialist"))
    check_csrf(request, session)
    data = await json_body(request, *required)
    unknown = set(data) - allowed - {"patient"}
    if unknown:
        raise ChartError(f"unknown field(s): {', '.join(sorted(unknown))}")
    chart = vault_of(request).chart
    desk = await run_in_threadpool(chart.desk, session, data.get("patient"))
    return chart, desk, data


def _viewed(request: Request, chart, desk) -> None:
    chart.audit.append("chart-view", desk.reader_id, None, client_ip(request.scope))


@_refusals
async def entry_create(request: Request) -> Response:
    chart, desk, data = await _open(request, {"kind", "data"}, "kind")
    entry = await run_in_threadpool(chart.add, desk, data["kind"], data.get("data"), client_ip(request.scope))
    return JSONResponse(entry, 201)


async def _write(request: Request, fields: set[str], compute) -> Response:
    """A chart change: open the chart, `compute(chart, desk, data, ip)` off the event loop."""
    chart, desk, data = await _open(request, fields)
    return JSONResponse(await run_in_threadpool(compute, chart, desk, data, client_ip(request.scope)))


@_refusals
async def proposals_read(request: Request) -> Response:
    """Read the next records of the chart (text layer, else OCR) into proposals; says how many are left."""
    return await _write(request, {"limit"}, lambda c, d, data, ip: proposals.read(c, d, data.get("limit"), ip))


@_refusals
async def proposals_accept(request: Request) -> Response:
    def accept(c, d, data, ip):
        return proposals.accept(c, d, data.get("proposals"), data.get("edits"), ip)

    return await _write(request, {"proposals", "edits"}, accept)


@_refusals
async def proposals_reject(request: Request) -> Response:
    return await _write(
        request, {"proposals"}, lambda c, d, data, ip: proposals.reject(c, d, data.get("proposals"), ip)
    )


@_refusals
async def entry_list(request: Request) -> Response:
    chart, desk, data = await _open(request, {"kinds"})
    kinds = data.get("kinds")
    if kinds is not None and (not isinstance(kinds, list) or not set(kinds) <= set(KINDS)):
        raise ChartError(f"'kinds' must be a list of {', '.join(KINDS)}")
    items = await run_in_threadpool(chart.entries, desk, tuple(kinds or ()))
    _viewed(request, chart, desk)
    return JSONResponse({"patient": desk.patient, "can_write": desk.can_write, "items": items})


async def _entry_desk(request: Request, session):
    """The chart and desk of the entry named in the URL: the entry id says whose chart, access is checked as
    usual, and an entry in a chart the caller may not open is "not found" (no hint that it exists)."""
    try:
        entry_id = canonical_id(request.path_params["id"], "entry id")
    except ChartError:
        raise ChartError("Entry not found", 404) from None
    chart = vault_of(request).chart
    patient_id = chart.patient_of_entry(entry_id)
    if patient_id is None:
        raise ChartError("Entry not found", 404)
    try:
        desk = await run_in_threadpool(chart.desk_for_patient_id, session, patient_id)
    except ChartError as exc:
        if exc.status == 403:
            raise ChartError("Entry not found", 404) from None
        raise
    return chart, desk, entry_id


@_refusals
async def entry_get(request: Request) -> Response:
    """One entry with everything linked to it."""
    session = require_session(request, roles=("patient", "specialist"))
    chart, desk, entry_id = await _entry_desk(request, session)
    result = await run_in_threadpool(chart.entry_with_links, desk, entry_id)
    _viewed(request, chart, desk)
    return JSONResponse(result)


@_refusals
async def entry_replace(request: Request) -> Response:
    """Replace an entry's data `{"data": {...}}` (its kind stays), checked as a new entry is."""
    session = require_session(request, roles=("patient", "specialist"))
    check_csrf(request, session)
    data = await json_body(request)
    if set(data) != {"data"}:
        raise ChartError('the body is {"data": {...}}: the fields of the entry\'s kind')
    chart, desk, entry_id = await _entry_desk(request, session)
    entry = await run_in_threadpool(chart.replace, desk, entry_id, data["data"], client_ip(request.scope))
    return JSONResponse(entry)


@_refusals
async def entry_delete(request: Request) -> Response:
    """Delete an entry no other entry links to (409 naming them otherwise)."""
    session = require_session(request, roles=("patient", "specialist"))
    check_csrf(request, session)
    chart, desk, entry_id = await _entry_desk(request, session)
    await run_in_threadpool(chart.delete, desk, entry_id, client_ip(request.scope))
    return Response(status_code=204)


async def _chronology(request: Request) -> tuple[dict, object, object]:
    chart, desk, data = await _open(request, chrono.FIELDS)
    result = await run_in_threadpool(chrono.chronology, chart, desk, data)
    _viewed(request, chart, desk)
    return result, chart, desk


@_refusals
async def chronology(request: Request) -> Response:
    result, _, _ = await _chronology(request)
    return JSONResponse(result)


def attachment(content: str | bytes, media_type: str, filename: str) -> Response:
    """A download that no cache keeps (it holds health data)."""
    headers = {"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"}
    return Response(content, media_type=media_type, headers=headers)


async def chronology_file(kind: str, chart, desk, result: dict) -> Response:
    """The chronology as a `csv` or `pdf` download (the API and the chart page share it)."""
    if kind == "csv":
        return attachment(chrono.to_csv(result), "text/csv; charset=utf-8", "chronology.csv")
    from medvault.mar import chronopdf  # fpdf2, and numpy that it imports when installed, load on the first PDF

    pdf = await run_in_threadpool(chronopdf.export, chart, desk, result)
    return attachment(pdf, "application/pdf", "chronology.pdf")


@_refusals
async def chronology_csv(request: Request) -> Response:
    result, chart, desk = await _chronology(request)
    return await chronology_file("csv", chart, desk, result)


@_refusals
async def chronology_pdf(request: Request) -> Response:
    result, chart, desk = await _chronology(request)
    return await chronology_file("pdf", chart, desk, result)


async def _read(request: Request, fields: set[str], compute) -> Response:
    """A read-only chart view: open the chart, `compute(chart, desk, data)` off the event loop, audit it."""
    chart, desk, data = await _open(request, fields)
    result = await run_in_threadpool(compute, chart, desk, data)
    _viewed(request, chart, desk)
    return JSONResponse(result)


@_refusals
async def compare(request: Request) -> Response:
    return await _read(request, {"statements"}, lambda c, d, data: statements.compare(c, d, data.get("statements")))


@_refusals
async def proposal_list(request: Request) -> Response:
    return await _read(request, {"status"}, lambda c, d, data: proposals.listing(c, d, data.get("status")))


@_refusals
async def standards(request: Request) -> Response:
    return await _read(request, set(), lambda c, d, _: statements.checklist(c, d))


@_refusals
async def professional_list(request: Request) -> Response:
    return await _read(request, set(), lambda c, d, _: professionals.directory(c, d))


async def _merge(request: Request, of: str | None) -> Response:
    """The user's decision on names suggested as one, kept as a signed `merge` entry (`of` a facility's)."""
    fields = {"names", "decision", "canonical", "note", "citations"}
    chart, desk, data = await _open(request, fields, "decision")
    body = {k: v for k, v in data.items() if k in fields} | ({"of": of} if of else {})
    entry = await run_in_threadpool(chart.add, desk, "merge", body, client_ip(request.scope))
    return JSONResponse(entry, 201)


@_refusals
async def professional_merge(request: Request) -> Response:
    return await _merge(request, None)


@_refusals
async def facility_list(request: Request) -> Response:
    return await _read(request, set(), lambda c, d, _: facilities.directory(c, d))


@_refusals
async def facility_merge(request: Request) -> Response:
    return await _merge(request, "facility")


routes = [
    Route("/api/v1/charts/entries", entry_create, methods=["POST"]),
    Route("/api/v1/charts/entries/list", entry_list, methods=["POST"]),
    Route("/api/v1/charts/entries/{id}", entry_get, methods=["GET"]),
    Route("/api/v1/charts/entries/{id}", entry_replace, methods=["PUT"]),
    Route("/api/v1/charts/entries/{id}", entry_delete, methods=["DELETE"]),
    Route("/api/v1/charts/proposals", proposal_list, methods=["POST"]),
    Route("/api/v1/charts/proposals/read", proposals_read, methods=["POST"]),
    Route("/api/v1/charts/proposals/accept", proposals_accept, methods=["POST"]),
    Route("/api/v1/charts/proposals/reject", proposals_reject, methods=["POST"]),
    Route("/api/v1/charts/chronology", chronology, methods=["POST"]),
    Route("/api/v1/charts/chronology.csv", chronology_csv, methods=["POST"]),
    Route("/api/v1/charts/chronology.pdf", chronology_pdf, methods=["POST"]),
    Route("/api/v1/charts/statements/compare", compare, methods=["POST"]),
    Route("/api/v1/charts/standards", standards, methods=["POST"]),
    Route("/api/v1/charts/professionals", professional_list, methods=["POST"]),
    Route("/api/v1/charts/professionals/merge", professional_merge, methods=["POST"]),
    Route("/api/v1/charts/facilities", facility_list, methods=["POST"]),
    Route("/api/v1/charts/facilities/merge", facility_merge, methods=["POST"]),
]
