"""Proposals: what reading a chart's records suggests for its chronology, for the reader to accept or reject.

`read` opens, in the reader's own session, a few records of the chart not yet read by this reader (text layer,
else OCR: mar/recordtext.py), runs the rules of mar/extraction.py and stores one `proposal` entry per record,
sealed under the chart key and signed by the reader like any entry: nothing read leaves the session except
into the sealed chart. Each proposal cites the page and words its date, facility and professionals were read
from (checked as any citation is, mar/quotes.py). A record without a date is proposed too, as undated, so it
is never silently left out. `accept` turns proposals into occurrences, with the reader's edits, in one
transaction; `reject` keeps the proposal as rejected, so reading again does not propose it again.
"""

from __future__ import annotations

import uuid

from medvault.mar import extraction, recordtext
from medvault.mar.chart import Chart, Desk
from medvault.mar.entries import ChartError, canonical_id
from medvault.mar.pdftext import NO_TEXT
from medvault.vault import IntegrityError

BATCH = 10  # records read per call: the page shows progress between calls, and no request runs for minutes
MAX_BATCH = 50
EDITABLE = {"type", "date", "approximate", "facility", "providers", "description"}


def _proposals(chart: Chart, desk: Desk) -> list[dict]:
    return [e for e in chart.entries(desk, kinds=("proposal",)) if "data" in e]


def _cite(found: extraction.Found | None, record: str) -> list[dict]:
    return [{"record": record, "pages": str(found.page), "quote": found.quote}] if found and found.quote else []


def propose(record: str, pages, title: str | None) -> dict:
    """The proposal entry's data for one record's pages."""
    read = extraction.extract(pages)
    date = read.date_of_service
    present = [f.value for f in read.findings if f.kind == "present"]
    kind = read.document.value if read.document else None
    description = "; ".join(filter(None, [kind, ", ".join(present[:8]) or None])) or title or "Record"
    fields = {
        "type": read.occurrence_type,
        "date": date.value if date else None,
        "facility": read.facility.value if read.facility else None,
        "providers": [p.value for p in read.providers[:20]],
        "description": description[:2000],
    }
    citations = _cite(date, record) + _cite(read.facility, record)
    citations += [c for p in read.providers[:10] for c in _cite(p, record)]
    return {
        "record": record,
        "status": "open",
        "fields": fields,
        "findings": [
            {"text": f.value, "negated": f.kind == "negated", "page": f.page, "quote": f.quote}
            for f in read.findings[:100]
        ],
        "dates": [{"date": d.value, "kind": d.kind, "page": d.page, "quote": d.quote} for d in read.dates[:100]],
        "ocr": bool(pages.ocr),
        "citations": list({(c["pages"], c["quote"]): c for c in citations}.values())[:50],
    }


def read(chart: Chart, desk: Desk, limit: object, ip: str | None) -> dict:
    """Read up to `limit` records of the chart this reader has not read yet; what is left to read."""
    if limit is None:
        limit = BATCH
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_BATCH:
        raise ChartError(f"'limit' must be a whole number from 1 to {MAX_BATCH}")
    done = {p["data"]["record"] for p in _proposals(chart, desk) if p["author"] == desk.reader}
    cited = {
        c["record"] for e in chart.entries(desk, kinds=("occurrence",)) if "data" in e for c in e["data"]["citations"]
    }
    waiting = [
        r
        for r in reversed(chart.records(desk))  # oldest first
        if r.id not in done | cited
        and recordtext.has_text(r.metadata.get("content_type"))
        and r.metadata.get("category") != "summary"
    ]
    new, texts = [], {}
    for record in waiting[:limit]:
        try:
            pages = chart.record_text(desk, record.id)
        except IntegrityError:
            continue  # opening it says why; it stays waiting
        pages = pages or NO_TEXT  # over the size limits: proposed undated, with its title
        texts[record.id] = pages
        new.append((str(uuid.uuid4()), "proposal", propose(record.id, pages, record.metadata.get("title"))))
    made = chart.commit(desk, new, [], ip, by_server=True, texts=texts) if new else []
    return {"read": len(made), "remaining": max(len(waiting) - limit, 0), "proposals": made}


def listing(chart: Chart, desk: Desk, status: object) -> dict:
    if status is not None and status not in ("open", "accepted", "rejected"):
        raise ChartError("'status' must be open, accepted or rejected")
    items = [p for p in _proposals(chart, desk) if status is None or p["data"]["status"] == status]
    titles = {r.id: r.metadata.get("title") or r.metadata.get("filename") for r in chart.records(desk)}
    for item in items:
        item["record_title"] = titles.get(item["data"]["record"])
    return {"patient": desk.patient, "items": items}


def _chosen(chart: Chart, desk: Desk, ids: object) -> list[dict]:
    if not isinstance(ids, list) or not 1 <= len(ids) <= 500:
        raise ChartError("'proposals' must be a list of 1 to 500 proposal ids")
    wanted = [canonical_id(i, "proposal id") for i in dict.fromkeys(ids)]
    found = {p["id"]: p for p in _proposals(chart, desk) if desk.role == "patient" or p["author"] == desk.reader}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ChartError(f"Proposal(s) not found in this chart: {', '.join(missing)}", 404)
    closed = [i for i in wanted if found[i]["data"]["status"] != "open"]
    if closed:
        raise ChartError(f"Proposal(s) already decided: {', '.join(closed)}", 409)
    return [found[i] for i in wanted]


def _stored(proposal: dict, **changes) -> dict:
    """A proposal's data as it is written back (the server's citation checks are made again)."""
    return {**proposal["data"], **changes}


def accept(chart: Chart, desk: Desk, ids: object, edits: object, ip: str | None) -> dict:
    """Occurrences from the chosen proposals (with the reader's edits by proposal id), all or none."""
    chosen = _chosen(chart, desk, ids)
    edits = edits or {}
    if not isinstance(edits, dict) or any(not isinstance(v, dict) or set(v) - EDITABLE for v in edits.values()):
        raise ChartError(f"'edits' maps proposal ids to fields among {', '.join(sorted(EDITABLE))}")
    new, changed = [], []
    for proposal in chosen:
        fields = {**proposal["data"]["fields"], **edits.get(proposal["id"], {})}
        if not fields.get("date"):
            raise ChartError(f"Proposal {proposal['id']} has no date: give one in 'edits' to accept it")
        occurrence = str(uuid.uuid4())
        cites = proposal["data"]["citations"] or [{"record": proposal["data"]["record"]}]  # it cites its record
        new.append((occurrence, "occurrence", {**fields, "citations": cites}))
        changed.append((proposal, _stored(proposal, status="accepted", occurrence=occurrence)))
    written = chart.commit(desk, new, changed, ip, by_server=True)
    return {"accepted": [e for e in written if e["kind"] == "occurrence"]}


def reject(chart: Chart, desk: Desk, ids: object, ip: str | None) -> dict:
    chosen = _chosen(chart, desk, ids)
    written = chart.commit(desk, [], [(p, _stored(p, status="rejected")) for p in chosen], ip, by_server=True)
    return {"rejected": [e["id"] for e in written]}
