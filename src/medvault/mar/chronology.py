"""The chronology of a chart: occurrences in date order, split around an incident, gaps, and candidates.

Dates keep their precision: `2024-05` covers the whole of May. Occurrences sort by their first day, a coarser
date before a finer one on the same first day. With an incident date, an occurrence wholly before it is
`before`, one starting on or after it is `after`, and an approximate one whose period contains it is `around`.
A gap is a stretch of more than `gap_days` days of no care, from the incident (or the first date) to the last:
care is an occurrence, and also a record's date not yet accepted as one (a candidate or an open proposal), so
no gap is shown only because entries are not yet accepted. Candidates are readable records of the chart with a
date of service that no occurrence cites yet and no proposal of the reader covers; proposals are what reading
the records suggested (mar/proposals.py). Undated records are those with no date anywhere yet: listed, never
silently left out.

Records the patient judged one document (a fax of a report; vault/reviews.py) appear once (`_Documents`): one
candidate, proposal or undated row per document, the kept record preferred; of occurrences alike in date,
type, description and the documents they cite, the one citing the kept record. Whatever is shown names the
document's other records in `also` ("also as …" in the CSV and PDF). A decision naming a record the reader
cannot read changes nothing for that reader. A rejected suggestion is no decision and changes nothing.

Each item shown names, in `identities`, who its providers and facility are (mar/professionals.py,
mar/facilities.py: automatic grouping and saved merges); the page, the CSV and the PDF print that name, with the
record's own spelling beside it where it differs (`shown`), so a merge changes what every export says while
the signed entry keeps what was written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict

from medvault.mar import facilities, professionals, quotes
from medvault.mar.chart import Chart, Desk
from medvault.mar.entries import OCCURRENCE_TYPES, ChartError, check_date, first_day, last_day
from medvault.mar.identity import KINDS, as_written, identify

FIELDS = {"patient", "types", "provider", "facility", "from", "to", "incident", "gap_days"}


def _fold(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


class Query:
    def __init__(self, body: dict):
        unknown = set(body) - FIELDS
        if unknown:
            raise ChartError(f"unknown field(s): {', '.join(sorted(unknown))}")
        types = body.get("types")
        if types is not None and (not isinstance(types, list) or not set(types) <= set(OCCURRENCE_TYPES)):
            raise ChartError(f"'types' must be a list of {', '.join(OCCURRENCE_TYPES)}")
        self.types = set(types or ())
        for key in ("provider", "facility"):
            if body.get(key) is not None and (not isinstance(body[key], str) or len(body[key]) > 200):
                raise ChartError(f"{key!r} must be text of at most 200 characters")
        self.provider, self.facility = _fold(body.get("provider")), _fold(body.get("facility"))
        self.people: dict[str, str] = {}  # professionals.of_chart: a provider is found under any of their names
        self.places: dict[str, str] = {}  # facilities.of_chart: and a facility under any of its names
        self.start = first_day(check_date(body["from"], "'from'", allow_future=True)) if body.get("from") else None
        self.end = last_day(check_date(body["to"], "'to'", allow_future=True)) if body.get("to") else None
        if self.start and self.end and self.start > self.end:
            raise ChartError("'from' is after 'to'")
        incident = body.get("incident")
        if incident is not None and (not isinstance(incident, str) or len(incident) != 10):
            raise ChartError("'incident' must be a day, YYYY-MM-DD")
        self.incident = first_day(check_date(incident, "'incident'")) if incident else None
        gap = body.get("gap_days", 30)
        if isinstance(gap, bool) or not isinstance(gap, int) or not 1 <= gap <= 3650:
            raise ChartError("'gap_days' must be a whole number of days from 1 to 3650")
        self.gap_days = gap

    def matches(self, date: str | None, facility: str | None, providers: list[str]) -> bool:
        if (self.start or self.end) and not date:
            return False
        if self.start and last_day(date) < self.start:
            return False
        if self.end and first_day(date) > self.end:
            return False
        if self.facility and self._place(facility) != self._place(self.facility):
            return False
        if not self.provider:
            return True
        wanted = _fold(identify(self.people, self.provider))
        return wanted in {_fold(identify(self.people, p)) for p in providers}

    def _place(self, facility: str | None) -> str:
        return _fold(identify(self.places, facility or ""))

    def identities(self, named: dict) -> dict:
        """Who the `facility` and `providers` that `named` spells are, under the chart's identities."""
        facility = named.get("facility")
        return {
            "facility": identify(self.places, facility) if facility else None,
            "providers": [identify(self.people, p) for p in named.get("providers") or []],
        }


def shown(item: dict, field: str) -> str:
    """The item's `facility` or `providers` as printed (identity.as_written)."""
    return as_written(item.get("data", item).get(field), item["identities"][field])


def _sort_key(item: dict) -> tuple:
    date = item["data"]["date"]
    return (first_day(date), len(date), item["created_at"], item["id"])


class _Documents:
    """The chart's records grouped by document: a record judged a copy of another belongs to the kept one's."""

    def __init__(self, records: list, same: dict[str, str]):
        self.titles = {r.id: r.metadata.get("title") or r.metadata.get("filename") or r.id for r in records}
        self.root: dict[str, str] = {}
        for record in same:
            kept, seen = record, set()
            while kept in same and same[kept] in self.titles and kept not in seen:  # a chain ends at the kept one
                seen.add(kept)
                kept = same[kept]
            if record in self.titles and kept != record:
                self.root[record] = kept
        self.members: dict[str, list[str]] = defaultdict(list)
        for record, kept in self.root.items():
            self.members[kept].append(record)
        self.grouped = set(self.root) | set(self.members)

    def of(self, record: str) -> str:
        return self.root.get(record, record)

    def widen(self, records: set[str]) -> set[str]:
        """The records with every other record of their documents."""
        roots = {self.of(r) for r in records}
        return records | roots | {m for root in roots for m in self.members.get(root, ())}

    def also(self, records: set[str]) -> list[dict]:
        others = sorted(self.widen(records) - records, key=lambda r: (self.titles[r], r))
        return [{"record": r, "title": self.titles[r]} for r in others]

    def once(self, items: list[dict], record_of) -> list[dict]:
        """One item per document (the kept record's when there is one, else the first), noting the others."""
        if not self.root:
            return items
        chosen: dict[str, dict] = {}
        for item in items:
            root = self.of(record_of(item))
            if root not in chosen or (record_of(item) == root and record_of(chosen[root]) != root):
                chosen[root] = item
        shown = {id(item) for item in chosen.values()}
        out = []
        for item in (i for i in items if id(i) in shown):
            also = self.also({record_of(item)})
            out.append({**item, "also": also} if also else item)
        return out

    def occurrences(self, items: list[dict]) -> list[dict]:
        """Occurrences alike in date, type, description and cited documents shown once, the one citing fewer
        copies preferred; occurrences that say something else all stay, each naming the document's other records."""
        if not self.root:
            return items

        def cited(item: dict) -> set[str]:
            return {c["record"] for c in item["data"].get("citations", [])}

        chosen: dict[tuple, int] = {}
        out: list[dict] = []
        for item in items:
            records = cited(item)
            if not records & self.grouped:
                out.append(item)
                continue
            data = item["data"]
            key = (data["date"], data["type"], _fold(data.get("description")), frozenset(self.of(r) for r in records))
            if key not in chosen:
                chosen[key] = len(out)
                out.append({**item, "also": self.also(records)})
            elif len(records & set(self.root)) < len(cited(out[chosen[key]]) & set(self.root)):
                out[chosen[key]] = {**item, "also": self.also(records)}
        return out


def chronology(chart: Chart, desk: Desk, body: dict) -> dict:
    query = Query(body)
    every = [e for e in chart.entries(desk, kinds=KINDS) if "data" in e]
    records = chart.records(desk)
    docs = _Documents(records, chart.same_documents(desk))
    query.people = professionals.of_chart(every, records, [body["provider"]] if query.provider else [])  # the filter's
    query.places = facilities.of_chart(every, records, [body["facility"]] if query.facility else [])
    mine = [e for e in every if e["kind"] == "proposal" and (e["author"] == desk.reader or desk.role == "patient")]
    every = [e for e in every if e["kind"] == "occurrence"]
    occurrences = [
        e
        for e in every
        if (not query.types or e["data"]["type"] in query.types)
        and query.matches(e["data"]["date"], e["data"].get("facility"), e["data"].get("providers", []))
    ]
    occurrences.sort(key=_sort_key)
    occurrences = [{**e, "identities": query.identities(e["data"])} for e in docs.occurrences(occurrences)]
    result: dict = {"patient": desk.patient, "gap_days": query.gap_days}
    if query.incident:
        result["incident"] = query.incident.isoformat()
        result["before"] = [e for e in occurrences if last_day(e["data"]["date"]) < query.incident]
        result["after"] = [e for e in occurrences if first_day(e["data"]["date"]) >= query.incident]
        result["around"] = [
            e for e in occurrences if first_day(e["data"]["date"]) < query.incident <= last_day(e["data"]["date"])
        ]
    else:
        result["occurrences"] = occurrences
    proposed_records = docs.widen({p["data"]["record"] for p in mine})
    proposed = docs.once(_proposed(query, [p for p in mine if p["data"]["status"] == "open"]), _record)
    candidates = docs.once(_candidates(records, query, every, proposed_records, docs), _record)
    result["proposed"] = [{**c, "identities": query.identities(c)} for c in proposed]
    result["candidates"] = [{**c, "identities": query.identities(c)} for c in candidates]
    result["undated"] = docs.once(_undated(records, every, mine, docs), _record)
    care = [(e["data"]["date"], e["id"]) for e in occurrences]
    care += [(c["date"], c["record"]) for c in result["candidates"] + result["proposed"]]
    result["gaps"] = _gaps(sorted(care, key=lambda c: (first_day(c[0]), len(c[0]))), query)
    return result


def _record(item: dict) -> str:
    return item["record"]


def _proposed(query: Query, proposals: list[dict]) -> list[dict]:
    out = []
    for proposal in proposals:
        fields = proposal["data"]["fields"]
        if "date" in fields and query.matches(fields["date"], fields.get("facility"), fields.get("providers", [])):
            out.append({"proposal": proposal["id"], "record": proposal["data"]["record"], **fields})
    out.sort(key=lambda c: (first_day(c["date"]), len(c["date"]), c["record"]))
    return out


def _undated(records: list, occurrences: list[dict], proposals: list[dict], docs: _Documents) -> list[dict]:
    """Records with no date yet: none in their metadata, no occurrence citing them, no dated proposal (nor any
    of these for another record of the same document)."""
    cited = {c["record"] for e in occurrences for c in e["data"].get("citations", [])}
    dated = {p["data"]["record"] for p in proposals if "date" in p["data"]["fields"] and p["data"]["status"] == "open"}
    dated = docs.widen(dated | cited | {r.id for r in records if r.metadata.get("service_date")})
    return [
        {"record": r.id, "title": r.metadata.get("title") or r.metadata.get("filename")}
        for r in records
        if not r.metadata.get("service_date") and r.id not in cited | dated and r.metadata.get("category") != "summary"
    ]


def _gaps(care: list[tuple[str, str]], query: Query) -> list[dict]:
    """Stretches of more than `gap_days` without care, from the incident when there is one."""
    gaps = []
    covered_to: dt.date | None = None
    last_id = None
    if query.incident:
        covered_to, last_id = query.incident, "incident"
        care = [c for c in care if last_day(c[0]) >= query.incident]
    for date, ref in care:
        start, end = first_day(date), last_day(date)
        if covered_to is not None and (start - covered_to).days - 1 > query.gap_days:
            gaps.append(
                {
                    "from": (covered_to + dt.timedelta(days=1)).isoformat(),
                    "to": (start - dt.timedelta(days=1)).isoformat(),
                    "days": (start - covered_to).days - 1,
                    "after": last_id,
                    "before": ref,
                }
            )
        if covered_to is None or end > covered_to:
            covered_to, last_id = end, ref
    return gaps


def _candidates(records: list, query: Query, occurrences: list[dict], proposed: set[str], docs: _Documents) -> list:
    cited = docs.widen({c["record"] for e in occurrences for c in e["data"].get("citations", [])})
    out = []
    for record in records:
        meta = record.metadata
        date = meta.get("service_date")
        if not date or record.id in cited | proposed or meta.get("category") == "summary":
            continue
        providers = meta.get("provider") or []
        if not query.matches(date, meta.get("facility"), providers):
            continue
        out.append(
            {
                "record": record.id,
                "date": date,
                "approximate": len(date) < 10,
                "type": "encounter",
                "facility": meta.get("facility"),
                "providers": providers,
                "description": meta.get("title") or meta.get("type") or meta.get("filename"),
            }
        )
    out.sort(key=lambda c: (first_day(c["date"]), len(c["date"]), c["record"]))
    return out


CSV_COLUMNS = (
    "section",
    "date",
    "approximate",
    "type",
    "facility",
    "providers",
    "description",
    "citations",
    "also_as",
    "verified",
    "author",
    "signature_valid",
    "entry_id",
)


def _cell(value: object) -> str:
    """Spreadsheet-safe text: a cell starting with = + - @ (or a tab/CR) is prefixed so it is not a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(result: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    sections = ("before", "around", "after") if "incident" in result else ("occurrences",)
    for section in sections:
        for e in result[section]:
            d = e["data"]
            cites = "; ".join(quotes.described(c, c["record"]) for c in d.get("citations", []))
            row = (
                section if section != "occurrences" else "",
                d["date"],
                "yes" if d.get("approximate") else "no",
                d["type"],
                shown(e, "facility"),
                shown(e, "providers"),
                d.get("description"),
                cites,
                "; ".join(a["title"] for a in e.get("also", [])),
                "yes" if e["verified"] else "no",
                e["author"],
                "yes" if e["signature_valid"] else "no",
                e["id"],
            )
            writer.writerow([_cell(v) for v in row])
    for gap in result["gaps"]:
        writer.writerow(
            [_cell(v) for v in ("gap", gap["from"], "", "", "", "", f"{gap['days']} days", "", "", "", "", "", "")]
        )
    return out.getvalue()
