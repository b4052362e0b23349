"""How the pages show chart entries: a one-line title, the fields in reading order, the citations with the
records they point to, how each linked entry relates to the one shown, and the notes made on a record.

Kept apart from the handlers so that every page (chronology, injuries, annotations, a record, one entry)
names and links entries the same way, and the templates hold no per-kind logic. Everything here works on
entries as `Chart.entries` returns them; an entry that failed its integrity check has no `data` and is
shown as such.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from medvault.auth.sessions import Session
from medvault.mar import quotes
from medvault.mar.chart import Chart, Desk
from medvault.mar.entries import ChartError, entry_links

KIND_NAMES = {
    "occurrence": "Occurrence",
    "injury": "Injury",
    "statement": "Witness statement",
    "mark": "Agreement or contradiction",
    "standard": "Standard of care",
    "annotation": "Annotation",
    "merge": "Decision about professionals",
}
# Per kind, the fields shown, in reading order; links to other entries and citations are shown apart.
FIELDS = {
    "occurrence": (
        ("type", "Type"),
        ("date", "Date"),
        ("facility", "Facility"),
        ("providers", "Providers"),
        ("description", "Description"),
    ),
    "injury": (
        ("date", "Date"),
        ("body_site", "Body site"),
        ("mechanism", "Mechanism"),
        ("severity", "Severity"),
        ("description", "Description"),
    ),
    "statement": (("witness", "Witness"), ("date", "Date"), ("text", "Statement")),
    "mark": (("verdict", "Verdict"), ("topic", "Topic"), ("note", "Note")),
    "standard": (("standard", "Standard"), ("status", "Status"), ("note", "Note")),
    "annotation": (("text", "Annotation"),),
    "merge": (("names", "Names"), ("decision", "Decision"), ("canonical", "Name kept"), ("note", "Note")),
}
LONG = {"description", "text", "note"}  # shown as paragraphs that keep the writer's line breaks
OUTGOING = (("occurrences", "Contributing occurrence"), ("notes", "Contributing note"), ("statements", "Compared"))
INCOMING = {
    "injury": "Injury it contributes to",
    "annotation": "Annotation on it",
    "standard": "Standard of care on it",
    "mark": "Mark comparing it",
}
SELF_NAMED = {"injury", "statement", "mark"}  # kinds whose title already says what they are
_FIRST_PAGE = re.compile(r"\d+")


def chart_base(desk: Desk) -> str:
    """Where the reader's pages of this chart live: their own chart, or a patient's shared with them."""
    return "/chart" if desk.role == "patient" else f"/patients/{quote(desk.patient, safe='')}/chart"


def _date(data: dict) -> str:
    date = data.get("date") or ""
    return f"{date} (approx.)" if date and data.get("approximate") else date


def _short(text: str | None, limit: int = 80) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def title(entry: dict) -> str:
    """One line naming the entry, for lists, links and headings."""
    data = entry.get("data")
    if data is None:
        return "An entry that failed its integrity check"
    kind = entry["kind"]
    if kind == "occurrence":
        head = f"{data['type'].capitalize()} on {_date(data)}"
        return f"{head}: {_short(data['description'])}" if data.get("description") else head
    if kind == "injury":
        what = ", ".join(data[k] for k in ("body_site", "mechanism") if data.get(k))
        return f"Injury on {_date(data)}" + (f": {_short(what)}" if what else "")
    if kind == "statement":
        return f"Statement of {data['witness']}" + (f", {_date(data)}" if data.get("date") else "")
    if kind == "mark":
        return data["verdict"].capitalize() + (f": {_short(data['topic'])}" if data.get("topic") else "")
    if kind == "standard":
        standard = data["standard"]
        return " ".join(filter(None, (standard["source"], standard.get("clause")))) + f": {data['status']}"
    if kind == "annotation":
        return _short(data["text"])
    return " / ".join(data["names"])


def heading(entry: dict) -> str:
    """The title with the kind in front, unless the title already names it ("Injury on ...")."""
    if entry["kind"] == "annotation" or "data" not in entry:
        return KIND_NAMES.get(entry["kind"], entry["kind"])
    if entry["kind"] in SELF_NAMED:
        return title(entry)
    return f"{KIND_NAMES[entry['kind']]}: {title(entry)}"


def _value(key: str, data: dict) -> str:
    value = data[key]
    if key == "date":
        return _date(data)
    if key == "standard":
        return " · ".join(filter(None, (value["source"], value.get("clause"), value.get("text"))))
    return "; ".join(value) if isinstance(value, list) else str(value)


def fields(entry: dict) -> list[dict]:
    """The entry's own fields as label, text and whether it is long text."""
    data = entry.get("data") or {}
    shown = FIELDS.get(entry["kind"], ())
    return [
        {"label": label, "value": _value(key, data), "long": key in LONG}
        for key, label in shown
        if data.get(key) not in (None, "", [])
    ]


def card(entry: dict) -> dict:
    """What a list shows of an entry: kind, title, author, time, checks and fields."""
    return {
        "id": entry["id"],
        "kind": entry["kind"],
        "kind_name": KIND_NAMES.get(entry["kind"], entry["kind"]),
        "title": title(entry),
        "heading": heading(entry),
        "author": entry.get("author"),
        "created_at": entry.get("created_at"),
        "signature_valid": entry.get("signature_valid", False),
        "verified": entry.get("verified", False),
        "origin": entry.get("origin"),
        "fields": fields(entry),
    }


def first_page(pages: str | None) -> int | None:
    """The first page a citation names ("3-4, 7" → 3): where the record's preview opens."""
    match = _FIRST_PAGE.match(pages or "")
    return int(match.group()) if match else None


def citations(entry: dict, records: dict[str, dict]) -> list[dict]:
    """The entry's citations with the cited record's brief (None when this reader cannot open it) and, for a
    quote, how it was checked (mar/quotes.py)."""
    out = []
    for cite in (entry.get("data") or {}).get("citations", []):
        check = quotes.level(cite)
        page = first_page(cite.get("found_on") if check == "record" else cite.get("pages"))
        out.append(
            {
                **cite,
                "brief": records.get(cite["record"]),
                "page": page,
                "check": check,
                "level": quotes.LEVELS.get(check),
            }
        )
    return out


def about(entry: dict, records: dict[str, dict], entries: dict[str, dict], base: str) -> dict | None:
    """What an annotation or a standard is about, as a label and a link (none to a record the reader cannot
    open); None for other kinds."""
    data = entry.get("data") or {}
    if entry["kind"] not in ("annotation", "standard"):
        return None
    if "record" in data:
        brief = records.get(data["record"])
        if brief is None:
            return {"label": "a record you cannot open", "href": None}
        return {"label": brief.get("title") or "Untitled record", "href": f"/records/{data['record']}"}
    target = entries.get(data.get("occurrence"))
    return {"label": title(target) if target else "an entry", "href": f"{base}/entries/{data.get('occurrence')}"}


def relation(entry: dict, other: dict) -> str:
    """How a linked entry stands to the one shown: what it refers to, what refers to it, or one step further."""
    data = entry["data"]
    for key, label in OUTGOING:
        if other["id"] in data.get(key, []):
            return label
    if data.get("occurrence") == other["id"]:
        return "About"
    if entry["id"] in entry_links(other["kind"], other["data"]):
        return INCOMING.get(other["kind"], "Refers to it")
    return f"{KIND_NAMES[other['kind']]} on a linked entry"


def notes_on_record(chart: Chart, session: Session, record_id: str, owner_id: str) -> tuple[Desk | None, list[dict]]:
    """The annotations and standards of care about one record that this reader may read, oldest first.

    None (and no notes) when the reader has no chart of the record's owner open to them: a specialist whose
    share does not reach the chart yet, or someone's own record outside any chart."""
    try:
        desk = chart.desk_for_patient_id(session, owner_id)
    except ChartError:
        return None, []
    entries = chart.entries(desk, ("annotation", "standard"))
    return desk, [e for e in entries if (e.get("data") or {}).get("record") == record_id]
