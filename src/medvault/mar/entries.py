"""The shape of chart entries: what each kind holds, checked before anything is sealed.

Only the shape is checked here (types, sizes, dates, enumerations, unknown fields); whether cited records
and linked entries exist and are readable by the writer is the chart's job (mar/chart.py), which gets the
ids to check from `references`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

from medvault.vault import VaultError
from medvault.vault.metadata import valid_date


class ChartError(VaultError):
    """A refused chart operation; the message is safe to show, `status` is the HTTP answer (4xx)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


KINDS = ("occurrence", "injury", "statement", "mark", "standard", "annotation", "merge", "proposal")
SERVER_KINDS = ("proposal",)  # written by the server for the reader (mar/proposals.py), never sent by a client
PROPOSAL_STATUSES = ("open", "accepted", "rejected")
OCCURRENCE_TYPES = (
    "encounter",
    "diagnosis",
    "injury",
    "procedure",
    "medication",
    "test-result",
    "note",
    "allergy",
    "immunisation",
)
# The FHIR resource types an occurrence's `coded` elements may come from, by occurrence type.
CODED_TYPES = {
    "encounter": ("Encounter",),
    "diagnosis": ("Condition",),
    "injury": ("Condition",),
    "procedure": ("Procedure",),
    "medication": ("MedicationStatement", "MedicationRequest"),
    "test-result": ("Observation",),
    "note": ("Observation",),
    "allergy": ("AllergyIntolerance",),
    "immunisation": ("Immunization",),
}
CODED = 64_000
STATUSES = ("met", "not-met", "unclear")
VERDICTS = ("agreement", "contradiction")
DECISIONS = ("same", "different")
MERGED = ("professional", "facility")  # what a merge's names are; without `of`, professionals (mar/identity.py)
NAME = 200
SHORT = 2_000
LONG = 20_000
STATEMENT = 100_000
MAX_CITATIONS = 50
MAX_LINKS = 100
CHECKED_FIELDS = {"check", "found_on"}
_PAGES = re.compile(r"^\d{1,5}(-\d{1,5})?(,\s?\d{1,5}(-\d{1,5})?){0,19}$")


def canonical_id(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ChartError(f"{what} must be an id (text)")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ChartError(f"{what} is not a valid id") from None


def first_day(date: str) -> dt.date:
    """The first day a date of any precision (YYYY, YYYY-MM, YYYY-MM-DD) covers."""
    if len(date) == 4:
        return dt.date(int(date), 1, 1)
    if len(date) == 7:
        return dt.date(int(date[:4]), int(date[5:]), 1)
    return dt.date.fromisoformat(date)


def last_day(date: str) -> dt.date:
    if len(date) == 4:
        return dt.date(int(date), 12, 31)
    if len(date) == 7:
        year, month = int(date[:4]), int(date[5:])
        return dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return dt.date.fromisoformat(date)


def check_date(value: object, what: str, allow_future: bool = False) -> str:
    """A real calendar date of any precision, not in the future (a partial date may contain today)."""
    if not valid_date(value):
        raise ChartError(f"{what} must be YYYY, YYYY-MM or YYYY-MM-DD")
    try:
        start = first_day(value)
    except ValueError:
        raise ChartError(f"{what} is not a calendar date") from None
    if start.year < 1800:
        raise ChartError(f"{what} is before 1800")
    if not allow_future and start > dt.date.today():
        raise ChartError(f"{what} is in the future")
    return value


def _text(data: dict, key: str, limit: int, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ChartError(f"{key!r} is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ChartError(f"{key!r} must be text of at most {limit} characters")
    if required and not value.strip():
        raise ChartError(f"{key!r} must not be empty")
    return value


def _choice(data: dict, key: str, allowed: tuple[str, ...], required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if value not in allowed:
        raise ChartError(f"{key!r} must be one of {', '.join(allowed)}")
    return value


def _ids(data: dict, key: str, minimum: int = 0) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_LINKS or len(value) < minimum:
        raise ChartError(f"{key!r} must be a list of {minimum} to {MAX_LINKS} ids")
    return list(dict.fromkeys(canonical_id(v, f"{key!r} item") for v in value))


def _names(data: dict, key: str, minimum: int = 0) -> list[str]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not minimum <= len(value) <= 20:
        raise ChartError(f"{key!r} must be a list of {minimum} to 20 names")
    names = []
    for name in value:
        if not isinstance(name, str) or not name.strip() or len(name) > NAME:
            raise ChartError(f"{key!r} items must be non-empty text of at most {NAME} characters")
        names.append(" ".join(name.split()))
    return list(dict.fromkeys(names))


def page_spec(pages: object, what: str) -> str:
    """Pages named as `3`, `3-4` or `3-4, 7` (a whole number is taken as one page)."""
    if isinstance(pages, int) and not isinstance(pages, bool) and 0 < pages < 100_000:
        pages = str(pages)
    if not isinstance(pages, str) or not _PAGES.match(pages):
        raise ChartError(f"{what} must look like 3, 3-4 or 3-4, 7")
    return pages


def citations(value: object) -> list[dict]:
    """`[{"record": id, "pages": "3-4"?, "quote": text?}]`: where a statement comes from. What the server found
    when it checked a quote (`CHECKED_FIELDS`, mar/quotes.py) is dropped, so an entry read back can be sent
    again, and checked again."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_CITATIONS:
        raise ChartError(f"'citations' must be a list of at most {MAX_CITATIONS} citations")
    clean = []
    for item in value:
        if not isinstance(item, dict) or "record" not in item:
            raise ChartError('each citation is an object {"record": id, "pages"?: "3-4", "quote"?: text}')
        unknown = set(item) - {"record", "pages", "quote"} - CHECKED_FIELDS
        if unknown:
            raise ChartError(f"unknown citation field(s): {', '.join(sorted(unknown))}")
        cite = {"record": canonical_id(item["record"], "citation 'record'")}
        if item.get("pages") is not None:
            cite["pages"] = page_spec(item["pages"], "citation 'pages'")
        quote = _text(item, "quote", SHORT)
        if quote:
            cite["quote"] = quote
        clean.append(cite)
    return clean


def _dated(data: dict, clean: dict, required: bool = True) -> None:
    date = data.get("date")
    if date is None:
        if required:
            raise ChartError("'date' is required")
        return
    clean["date"] = check_date(date, "'date'")
    approximate = data.get("approximate")
    if approximate is not None and not isinstance(approximate, bool):
        raise ChartError("'approximate' must be true or false")
    partial = len(clean["date"]) < 10
    if partial and approximate is False:
        raise ChartError("a date without a day (YYYY or YYYY-MM) is approximate")
    clean["approximate"] = bool(approximate) or partial


def _target(data: dict, clean: dict) -> None:
    """Exactly one of `record` and `occurrence`: what an annotation or a standard is about."""
    given = [k for k in ("record", "occurrence") if data.get(k) is not None]
    if len(given) != 1:
        raise ChartError("give exactly one of 'record' (a record id) and 'occurrence' (an entry id)")
    clean[given[0]] = canonical_id(data[given[0]], repr(given[0]))


FIELDS = {
    "occurrence": {
        "type",
        "date",
        "approximate",
        "facility",
        "provider",
        "providers",
        "description",
        "citations",
        "coded",
    },
    "injury": {
        "date",
        "approximate",
        "body_site",
        "mechanism",
        "severity",
        "description",
        "occurrences",
        "notes",
        "citations",
    },
    "statement": {"witness", "date", "approximate", "text", "record", "pages", "citations"},
    "mark": {"statements", "verdict", "topic", "note", "citations"},
    "standard": {"record", "occurrence", "standard", "status", "note", "citations"},
    "annotation": {"record", "occurrence", "text", "citations"},
    "merge": {"names", "decision", "canonical", "of", "note", "citations"},
    "proposal": {"record", "status", "occurrence", "fields", "findings", "dates", "ocr", "citations"},
}


def _found(items: object, key: str, keys: set[str]) -> list[dict]:
    """What extraction read (findings, dates): short texts with their page, as the server made them."""
    if not isinstance(items, list) or len(items) > 200:
        raise ChartError(f"{key!r} must be a list of at most 200 items")
    for item in items:
        if not isinstance(item, dict) or set(item) - keys or any(len(str(v)) > SHORT for v in item.values()):
            raise ChartError(f"{key!r} items are objects with {', '.join(sorted(keys))}")
    return items


def _proposal(data: dict, clean: dict) -> None:
    clean["record"] = canonical_id(data.get("record"), "'record'")
    clean["status"] = _choice(data, "status", PROPOSAL_STATUSES)
    if data.get("occurrence") is not None:
        clean["occurrence"] = canonical_id(data["occurrence"], "'occurrence'")
    fields = data.get("fields")
    if not isinstance(fields, dict):
        raise ChartError("'fields' must be the proposed occurrence's fields")
    proposed = {k: v for k, v in fields.items() if v is not None}
    # An undated record is proposed too (so it is never silently left out), its fields checked all the same.
    checked = validate("occurrence", {**proposed, "date": proposed.get("date", "1900")})
    dropped = {"citations"} if "date" in proposed else {"citations", "date", "approximate"}
    clean["fields"] = {k: v for k, v in checked.items() if k not in dropped}
    clean["findings"] = _found(data.get("findings", []), "findings", {"text", "negated", "page", "quote"})
    clean["dates"] = _found(data.get("dates", []), "dates", {"date", "kind", "page", "quote"})
    clean["ocr"] = bool(data.get("ocr"))


def holds_reference(value: object) -> bool:
    if isinstance(value, dict):
        return "reference" in value or any(map(holds_reference, value.values()))
    return isinstance(value, list) and any(map(holds_reference, value))


def _coded(coded: object, kind: str) -> dict:
    """The typed FHIR elements of an imported resource (codes, values with units, ranges, statuses), kept as
    given so an export gives them back; who and where stay in their own fields, so no reference is allowed."""
    types = CODED_TYPES[kind]
    if not isinstance(coded, dict) or coded.get("resourceType") not in types:
        raise ChartError(f"'coded' must be the elements of a FHIR {' or '.join(types)} for a {kind}")
    if len(json.dumps(coded)) > CODED:
        raise ChartError(f"'coded' is larger than {CODED} bytes")
    if holds_reference(coded):
        raise ChartError("'coded' must not hold references: providers and facility have their own fields")
    return coded


def validate(kind: object, data: object, by_server: bool = False) -> dict:
    """A clean copy of an entry's fields, or ChartError naming what is wrong; `by_server` for the kinds only the
    server writes."""
    if kind not in KINDS:
        raise ChartError(f"'kind' must be one of {', '.join(KINDS)}")
    if kind in SERVER_KINDS and not by_server:
        raise ChartError("Proposals are made by reading the records (POST /api/v1/charts/proposals/read)")
    if not isinstance(data, dict):
        raise ChartError("'data' must be a JSON object")
    unknown = set(data) - FIELDS[kind]
    if unknown:
        raise ChartError(f"unknown field(s) for {kind}: {', '.join(sorted(unknown))}")
    clean: dict = {}
    if kind == "occurrence":
        clean["type"] = _choice(data, "type", OCCURRENCE_TYPES)
        _dated(data, clean)
        clean["facility"] = _text(data, "facility", NAME)
        clean["providers"] = list(dict.fromkeys(_names(data, "providers") + _names(data, "provider")))
        clean["description"] = _text(data, "description", LONG)
        if data.get("coded") is not None:
            clean["coded"] = _coded(data["coded"], clean["type"])
    elif kind == "injury":
        _dated(data, clean)
        for key in ("body_site", "mechanism", "severity"):
            clean[key] = _text(data, key, NAME)
        clean["description"] = _text(data, "description", LONG)
        clean["occurrences"] = _ids(data, "occurrences")
        clean["notes"] = _ids(data, "notes")
    elif kind == "statement":
        clean["witness"] = " ".join(_text(data, "witness", NAME, required=True).split())
        _dated(data, clean)
        if (data.get("text") is None) == (data.get("record") is None):
            raise ChartError("give exactly one of 'text' and 'record' (a text or PDF record's id)")
        if data.get("text") is not None:
            clean["text"] = _text(data, "text", STATEMENT, required=True)
        else:
            clean["record"] = canonical_id(data["record"], "'record'")
            if data.get("pages") is not None:
                clean["pages"] = page_spec(data["pages"], "'pages' (of the statement's record)")
        if data.get("pages") is not None and "record" not in clean:
            raise ChartError("'pages' choose a part of the statement's record: give 'record' too")
    elif kind == "mark":
        clean["statements"] = _ids(data, "statements", minimum=2)
        clean["verdict"] = _choice(data, "verdict", VERDICTS)
        clean["topic"] = _text(data, "topic", SHORT)
        clean["note"] = _text(data, "note", LONG, required=True)
    elif kind == "standard":
        _target(data, clean)
        standard = data.get("standard")
        if not isinstance(standard, dict) or set(standard) - {"source", "clause", "text"}:
            raise ChartError("'standard' must be an object with 'source', 'clause' and 'text'")
        clean["standard"] = {
            "source": _text(standard, "source", NAME, required=True),
            "clause": _text(standard, "clause", NAME),
            "text": _text(standard, "text", LONG),
        }
        clean["status"] = _choice(data, "status", STATUSES)
        clean["note"] = _text(data, "note", LONG)
    elif kind == "annotation":
        _target(data, clean)
        clean["text"] = _text(data, "text", LONG, required=True)
    elif kind == "merge":
        clean["names"] = _names(data, "names", minimum=2)
        if len(clean["names"]) < 2:
            raise ChartError("'names' must hold at least two different names")
        clean["decision"] = _choice(data, "decision", DECISIONS)
        clean["canonical"] = _text(data, "canonical", NAME)
        clean["of"] = _choice(data, "of", MERGED, required=False)
        clean["note"] = _text(data, "note", SHORT)
    elif kind == "proposal":
        _proposal(data, clean)
    clean["citations"] = citations(data.get("citations"))
    return {k: v for k, v in clean.items() if v is not None}


def entry_links(kind: str, data: dict) -> dict[str, tuple[str, ...]]:
    """Entry ids this entry refers to, each with the kinds allowed there."""
    links: dict[str, tuple[str, ...]] = {}
    for eid in data.get("occurrences", []):
        links[eid] = ("occurrence",)
    for eid in data.get("notes", []):
        links[eid] = ("annotation", "occurrence")
    for eid in data.get("statements", []):
        links[eid] = ("statement",)
    if "occurrence" in data and kind != "proposal":  # an accepted proposal names its occurrence, not a link
        links[data["occurrence"]] = ("occurrence", "injury")
    return links


def record_refs(data: dict) -> list[str]:
    """Record ids this entry refers to: citations, and the record it is about or was read from."""
    ids = [c["record"] for c in data.get("citations", [])]
    if "record" in data:
        ids.append(data["record"])
    return list(dict.fromkeys(ids))
