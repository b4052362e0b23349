"""Chart workspace pages: the chronology (split around an incident, gaps, candidates, CSV, PDF), occurrences and
annotations, witness statements compared word by word with agreement/contradiction marks, the standards-of-care
checklist, the professionals and the facilities with merge suggestions; injuries, the chart's annotations, and
each entry on a page of its own with its citations and everything linked to it (how entries are shown:
web/entryview.py).

The patient's own chart is under `/chart`; a specialist works on a shared one under
`/patients/{username}/chart`. Every form posts a CSRF token and calls the chart services the JSON API calls;
reads enter the audit trail as the API's do. Nothing about the patient's health travels in a URL.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medvault.mar import chronology as chrono
from medvault.mar import facilities, professionals, recordtext, statements
from medvault.mar.entries import OCCURRENCE_TYPES, STATUSES, ChartError, canonical_id
from medvault.web import entryview
from medvault.web.charts import chronology_file
from medvault.web.clientip import client_ip
from medvault.web.entryview import chart_base
from medvault.web.pages import render, render_error
from medvault.web.security import check_csrf, require_session, vault_of

CHART_FORM_LIMIT = 256 * 1024  # a statement's text may be long


class Form:
    """A posted form: first value per name, and every value of repeated names (checkboxes)."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = pairs
        self.first: dict[str, str] = {}
        for key, value in pairs:
            self.first.setdefault(key, value)

    def get(self, key: str, default: str = "") -> str:
        return self.first.get(key, default)

    def text(self, key: str) -> str | None:
        value = self.first.get(key, "").strip()
        return value or None

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.pairs if k == key and v]


async def _form(request: Request, session) -> Form:
    body = await request.body()
    if len(body) > CHART_FORM_LIMIT:
        raise HTTPException(413, "Form too large")
    form = Form(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    check_csrf(request, session, form.get("csrf_token"))
    return form


async def _desk(request: Request):
    session = require_session(request, roles=("patient", "specialist"))
    username = request.path_params.get("username")
    if username is None and session.role != "patient":
        raise HTTPException(404, "Specialists open a patient's chart from the Patients page")
    chart = vault_of(request).chart
    desk = await run_in_threadpool(chart.desk, session, username)
    return session, chart, desk


def _viewed(request: Request, chart, desk) -> None:
    chart.audit.append("chart-view", desk.reader_id, None, client_ip(request.scope))


def _chart_errors(handler):
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ChartError as exc:
            return render_error(request, exc.status, str(exc))

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _records(chart, desk) -> dict[str, dict]:
    """The chart's readable records by id: what citations and targets are shown by."""
    out = {}
    for record in chart.records(desk):
        meta = record.metadata
        out[record.id] = {
            "id": record.id,
            "title": meta.get("title") or meta.get("filename") or record.id,
            "service_date": meta.get("service_date"),
            "content_type": meta.get("content_type"),
        }
    return out


def _citations(form: Form) -> list[dict]:
    record = form.text("cite_record")
    if not record:
        return []
    cite = {"record": record}
    if form.text("cite_pages"):
        cite["pages"] = form.text("cite_pages")
    return [cite]


# --- the chronology -----------------------------------------------------------------------------------------


def _chronology_body(form: Form | None) -> dict:
    body: dict = {}
    if form is None:
        return body
    for key in ("incident", "from", "to", "facility", "provider"):
        if form.text(key):
            body[key] = form.text(key)
    if form.text("gap_days"):
        try:
            body["gap_days"] = int(form.text("gap_days"))
        except ValueError:
            raise ChartError("The gap must be a whole number of days") from None
    types = [t for t in form.all("types") if t in OCCURRENCE_TYPES]
    if types:
        body["types"] = types
    return body


async def _chronology_page(request: Request, session, chart, desk, form: Form | None, status: int = 200, **extra):
    body = _chronology_body(form)
    query = {k: v for k, v in body.items() if k != "types"}
    try:
        result = await run_in_threadpool(chrono.chronology, chart, desk, body)
    except ChartError as exc:
        result = await run_in_threadpool(chrono.chronology, chart, desk, {})
        extra["error"] = str(exc)
        status = exc.status
    _viewed(request, chart, desk)
    records = await run_in_threadpool(_records, chart, desk)
    annotations = [e for e in await run_in_threadpool(chart.entries, desk, ("annotation",)) if "data" in e]
    notes: dict[str, list[dict]] = {}
    for note in annotations:
        target = note["data"].get("occurrence") or note["data"].get("record")
        notes.setdefault(target, []).append(note)
    if "incident" in result:
        sections = [
            ("before", "Before the incident", result["before"]),
            ("around", "Around the incident (approximate dates)", result["around"]),
            ("after", "On or after the incident", result["after"]),
        ]
    else:
        sections = [("occurrences", None, result["occurrences"])]
    gaps_before = {g["before"]: g for g in result["gaps"]}
    all_occurrences = [e for _, _, items in sections for e in items]
    return render(
        request,
        "chart.html",
        status,
        shown=chrono.shown,
        desk=desk,
        base=chart_base(desk),
        result=result,
        sections=sections,
        gaps_before=gaps_before,
        records=records,
        notes=notes,
        occurrences=all_occurrences,
        query=query,
        types_chosen=body.get("types", []),
        occurrence_types=OCCURRENCE_TYPES,
        **extra,
    )


@_chart_errors
async def chart_page(request: Request) -> Response:
    """GET: the whole chronology. POST: the same with the filters and incident date of the form."""
    session, chart, desk = await _desk(request)
    form = await _form(request, session) if request.method == "POST" else None
    notice = {"added": "Occurrence added.", "annotated": "Annotation added."}.get(request.query_params.get("done", ""))
    return await _chronology_page(request, session, chart, desk, form, notice=notice)


async def _chronology_download(request: Request):
    """The chronology with the form's filters, for a download; the read is audited like the page."""
    session, chart, desk = await _desk(request)
    form = await _form(request, session)
    result = await run_in_threadpool(chrono.chronology, chart, desk, _chronology_body(form))
    _viewed(request, chart, desk)
    return chart, desk, result


@_chart_errors
async def chronology_csv_page(request: Request) -> Response:
    return await chronology_file("csv", *await _chronology_download(request))


@_chart_errors
async def chronology_pdf_page(request: Request) -> Response:
    return await chronology_file("pdf", *await _chronology_download(request))


@_chart_errors
async def occurrence_add_page(request: Request) -> Response:
    session, chart, desk = await _desk(request)
    form = await _form(request, session)
    data: dict = {"type": form.get("type"), "date": form.text("date"), "citations": _citations(form)}
    for key in ("facility", "description"):
        if form.text(key):
            data[key] = form.text(key)
    providers = [p.strip() for p in form.get("providers").split(";") if p.strip()]
    if providers:
        data["providers"] = providers
    if form.get("approximate") == "yes":
        data["approximate"] = True
    try:
        await run_in_threadpool(chart.add, desk, "occurrence", data, client_ip(request.scope))
    except ChartError as exc:
        return await _chronology_page(request, session, chart, desk, None, exc.status, error=str(exc), draft=form.first)
    return RedirectResponse(f"{chart_base(desk)}?done=added", 303)


@_chart_errors
async def annotation_add_page(request: Request) -> Response:
    session, chart, desk = await _desk(request)
    form = await _form(request, session)
    target = form.get("target")
    kind, _, target_id = target.partition(":")
    data = {"text": form.get("text"), "citations": _citations(form)}
    if kind in ("occurrence", "record"):
        data[kind] = target_id
    try:
        await run_in_threadpool(chart.add, desk, "annotation", data, client_ip(request.scope))
    except ChartError as exc:
        return await _chronology_page(request, session, chart, desk, None, exc.status, error=str(exc))
    return RedirectResponse(f"{chart_base(desk)}?done=annotated", 303)


# --- statements ---------------------------------------------------------------------------------------------


async def _statements_page(request: Request, chart, desk, status: int = 200, **extra) -> Response:
    items = [e for e in await run_in_threadpool(chart.entries, desk, ("statement",)) if "data" in e]
    records = await run_in_threadpool(_records, chart, desk)
    _viewed(request, chart, desk)
    text_records = [r for r in records.values() if recordtext.has_text(r.get("content_type"))]
    return render(
        request,
        "chart_statements.html",
        status,
        desk=desk,
        base=chart_base(desk),
        statements=items,
        text_records=text_records,
        **extra,
    )


@_chart_errors
async def statements_page(request: Request) -> Response:
    _, chart, desk = await _desk(request)
    notice = "Statement added." if request.query_params.get("done") == "added" else None
    return await _statements_page(request, chart, desk, notice=notice)


@_chart_errors
async def statement_add_page(request: Request) -> Response:
    session, chart, desk = await _desk(request)
    form = await _form(request, session)
    data: dict = {"witness": form.get("witness"), "citations": []}
    if form.text("date"):
        data["date"] = form.text("date")
    if form.text("record"):
        data["record"] = form.text("record")
        if form.text("pages"):
            data["pages"] = form.text("pages")
    else:
        data["text"] = form.get("text")
    try:
        await run_in_threadpool(chart.add, desk, "statement", data, client_ip(request.scope))
    except ChartError as exc:
        return await _statements_page(request, chart, desk, exc.status, error=str(exc), draft=form.first)
    return RedirectResponse(f"{chart_base(desk)}/statements?done=added", 303)


def _compared(result: dict) -> dict:
    by_id = {s["id"]: s for s in result["statements"]}
    for pair in result["pairs"]:
        pair["a_statement"], pair["b_statement"] = by_id[pair["a"]], by_id[pair["b"]]
    return result


@_chart_errors
async def compare_page(request: Request) -> Response:
    """Compare the ticked statements; with `verdict`, first record the agreement or contradiction mark."""
    session, chart, desk = await _desk(request)
    form = await _form(request, session)
    chosen = form.all("statement")
    notice = None
    if form.text("verdict"):
        mark = {"statements": chosen, "verdict": form.get("verdict"), "note": form.get("note"), "citations": []}
        if form.text("topic"):
            mark["topic"] = form.text("topic")
        try:
            await run_in_threadpool(chart.add, desk, "mark", mark, client_ip(request.scope))
            notice = f"Marked as {form.get('verdict')}."
        except ChartError as exc:
            return await _statements_page(request, chart, desk, exc.status, error=str(exc))
    try:
        result = await run_in_threadpool(statements.compare, chart, desk, chosen)
    except ChartError as exc:
        return await _statements_page(request, chart, desk, exc.status, error=str(exc))
    _viewed(request, chart, desk)
    return render(
        request, "chart_compare.html", desk=desk, base=chart_base(desk), result=_compared(result), notice=notice
    )


# --- standards of care ----------------------------------------------------------------------------------------


async def _standards_page(request: Request, chart, desk, status: int = 200, **extra) -> Response:
    result = await run_in_threadpool(statements.checklist, chart, desk)
    records = await run_in_threadpool(_records, chart, desk)
    occurrences = [e for e in await run_in_threadpool(chart.entries, desk, ("occurrence",)) if "data" in e]
    _viewed(request, chart, desk)
    return render(
        request,
        "chart_standards.html",
        status,
        desk=desk,
        base=chart_base(desk),
        result=result,
        records=records,
        occurrences={o["id"]: o for o in occurrences},
        statuses=STATUSES,
        **extra,
    )


@_chart_errors
async def standards_page(request: Request) -> Response:
    _, chart, desk = await _desk(request)
    notice = "Standard added." if request.query_params.get("done") == "added" else None
    return await _standards_page(request, chart, desk, notice=notice)


@_chart_errors
async def standard_add_page(request: Request) -> Response:
    session, chart, desk = await _desk(request)
    form = await _form(request, session)
    kind, _, target_id = form.get("target").partition(":")
    standard = {"source": form.get("source")}
    for key in ("clause", "text"):
        if form.text(key):
            standard[key] = form.text(key)
    data: dict = {"standard": standard, "status": form.get("status"), "citations": _citations(form)}
    if kind in ("occurrence", "record"):
        data[kind] = target_id
    if form.text("note"):
        data["note"] = form.text("note")
    try:
        await run_in_threadpool(chart.add, desk, "standard", data, client_ip(request.scope))
    except ChartError as exc:
        return await _standards_page(request, chart, desk, exc.status, error=str(exc), draft=form.first)
    return RedirectResponse(f"{chart_base(desk)}/standards?done=added", 303)


# --- professionals and facilities ------------------------------------------------------------------------------

# Each directory lists who or what a chart names and suggests spellings of one; a decision is a `merge` entry.
_DIRECTORIES = {
    "professionals": (professionals.directory, "chart_professionals.html", None),
    "facilities": (facilities.directory, "chart_facilities.html", "facility"),
}


async def _directory_page(request: Request, chart, desk, what: str, status: int = 200, **extra) -> Response:
    directory, template, _ = _DIRECTORIES[what]
    result = await run_in_threadpool(directory, chart, desk)
    _viewed(request, chart, desk)
    return render(request, template, status, desk=desk, base=chart_base(desk), result=result, **extra)


def _directory_handlers(what: str):
    """The page of one directory and its merge form's handler."""
    of = _DIRECTORIES[what][2]  # the merge entry's `of`: none for professionals, as before facilities had one

    @_chart_errors
    async def page(request: Request) -> Response:
        _, chart, desk = await _desk(request)
        notice = "Decision recorded." if request.query_params.get("done") == "merged" else None
        return await _directory_page(request, chart, desk, what, notice=notice)

    @_chart_errors
    async def merge(request: Request) -> Response:
        session, chart, desk = await _desk(request)
        form = await _form(request, session)
        data: dict = {"names": form.all("names"), "decision": form.get("decision"), "citations": []}
        if form.get("decision") == "same" and form.all("names"):
            data["canonical"] = form.all("names")[-1]
        if of:
            data["of"] = of
        try:
            await run_in_threadpool(chart.add, desk, "merge", data, client_ip(request.scope))
        except ChartError as exc:
            return await _directory_page(request, chart, desk, what, exc.status, error=str(exc))
        return RedirectResponse(f"{chart_base(desk)}/{what}?done=merged", 303)

    return page, merge


professionals_page, merge_page = _directory_handlers("professionals")
facilities_page, facility_merge_page = _directory_handlers("facilities")


# --- one entry and what is linked to it; injuries; annotations ------------------------------------------------


def _entry_view(chart, desk, entry_id: str) -> dict:
    """One entry's page: its fields, what it is about, its citations, and each linked entry with its relation."""
    result = chart.entry_with_links(desk, entry_id)
    entry, linked = result["entry"], result["linked"]
    records = {r["id"]: r for r in result["records"]}
    base = chart_base(desk)
    return {
        "entry": entryview.card(entry),
        "about": entryview.about(entry, records, {e["id"]: e for e in linked}, base),
        "citations": entryview.citations(entry, records),
        "linked": [{**entryview.card(e), "relation": entryview.relation(entry, e)} for e in linked],
    }


@_chart_errors
async def entry_page(request: Request) -> Response:
    """One entry with its citations (to the page) and everything linked to it, both ways."""
    _, chart, desk = await _desk(request)
    try:
        entry_id = canonical_id(request.path_params["id"], "entry id")
    except ChartError:
        raise ChartError("Entry not found", 404) from None
    view = await run_in_threadpool(_entry_view, chart, desk, entry_id)
    _viewed(request, chart, desk)
    notice = "Injury recorded." if request.query_params.get("done") == "added" else None
    return render(request, "chart_entry.html", desk=desk, base=chart_base(desk), notice=notice, **view)


def _by_date(entries: list[dict]) -> list[dict]:
    return sorted(entries, key=lambda e: (e["data"].get("date") or "", e["created_at"]))


async def _injuries_page(request: Request, chart, desk, status: int = 200, **extra) -> Response:
    kinds = ("injury", "occurrence", "annotation")
    entries = [e for e in await run_in_threadpool(chart.entries, desk, kinds) if "data" in e]
    records = await run_in_threadpool(_records, chart, desk)
    _viewed(request, chart, desk)
    of = {kind: [e for e in entries if e["kind"] == kind] for kind in kinds}
    return render(
        request,
        "chart_injuries.html",
        status,
        desk=desk,
        base=chart_base(desk),
        injuries=[entryview.card(e) for e in _by_date(of["injury"])],
        occurrences=[entryview.card(e) for e in _by_date(of["occurrence"])],
        notes=[entryview.card(e) for e in of["annotation"]],
        records=records,
        **extra,
    )


@_chart_errors
async def injuries_page(request: Request) -> Response:
    _, chart, desk = await _desk(request)
    return await _injuries_page(request, chart, desk)


@_chart_errors
async def injury_add_page(request: Request) -> Response:
    """An injury linking its contributing occurrences and notes; its own page shows them."""
    session, chart, desk = await _desk(request)
    form = await _form(request, session)
    data: dict = {
        "date": form.text("date"),
        "occurrences": form.all("occurrences"),
        "notes": form.all("notes"),
        "citations": _citations(form),
    }
    for key in ("body_site", "mechanism", "severity", "description"):
        if form.text(key):
            data[key] = form.text(key)
    if form.get("approximate") == "yes":
        data["approximate"] = True
    try:
        entry = await run_in_threadpool(chart.add, desk, "injury", data, client_ip(request.scope))
    except ChartError as exc:
        draft = {**form.first, "occurrences": form.all("occurrences"), "notes": form.all("notes")}
        return await _injuries_page(request, chart, desk, exc.status, error=str(exc), draft=draft)
    return RedirectResponse(f"{chart_base(desk)}/entries/{entry['id']}?done=added", 303)


@_chart_errors
async def annotations_page(request: Request) -> Response:
    """Every annotation in the chart, newest first, each with what it is about."""
    _, chart, desk = await _desk(request)
    entries = await run_in_threadpool(chart.entries, desk, ("annotation", "occurrence", "injury"))
    records = await run_in_threadpool(_records, chart, desk)
    _viewed(request, chart, desk)
    by_id = {e["id"]: e for e in entries if "data" in e}
    base = chart_base(desk)
    notes = [
        {**entryview.card(e), "about": entryview.about(e, records, by_id, base)}
        for e in reversed(entries)
        if e["kind"] == "annotation"
    ]
    return render(request, "chart_annotations.html", desk=desk, base=base, notes=notes)


def _routes(prefix: str) -> list[Route]:
    return [
        Route(prefix, chart_page, methods=["GET", "POST"]),
        Route(f"{prefix}/chronology.csv", chronology_csv_page, methods=["POST"]),
        Route(f"{prefix}/chronology.pdf", chronology_pdf_page, methods=["POST"]),
        Route(f"{prefix}/occurrences", occurrence_add_page, methods=["POST"]),
        Route(f"{prefix}/annotations", annotation_add_page, methods=["POST"]),
        Route(f"{prefix}/statements", statements_page),
        Route(f"{prefix}/statements/add", statement_add_page, methods=["POST"]),
        Route(f"{prefix}/statements/compare", compare_page, methods=["POST"]),
        Route(f"{prefix}/standards", standards_page),
        Route(f"{prefix}/standards/add", standard_add_page, methods=["POST"]),
        Route(f"{prefix}/professionals", professionals_page),
        Route(f"{prefix}/professionals/merge", merge_page, methods=["POST"]),
        Route(f"{prefix}/facilities", facilities_page),
        Route(f"{prefix}/facilities/merge", facility_merge_page, methods=["POST"]),
        Route(f"{prefix}/entries/{{id}}", entry_page),
        Route(f"{prefix}/injuries", injuries_page),
        Route(f"{prefix}/injuries/add", injury_add_page, methods=["POST"]),
        Route(f"{prefix}/annotations", annotations_page),
    ]


routes = [*_routes("/chart"), *_routes("/patients/{username}/chart")]
