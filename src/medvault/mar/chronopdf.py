"""The chronology as a PDF: a table a court, an insurer or a colleague reads without MedVault.

fpdf2 (pure Python) writes it in memory; nothing goes to disk. One row per occurrence: date, kind,
description (with its author), facility, providers, and sources (the cited records by title where the reader
can open them, with pages, quotes and how each was checked, or "not verified"). With an incident date the rows
fall under three headings, before / around / on or after it; a gap longer than `gap_days` is a shaded row
where it falls, as on the chronology page. The title names the patient and when the document was made; every
page is numbered.

Fonts. DejaVu Sans (Debian's fonts-dejavu-core) covers Latin, Greek and Cyrillic; a character it lacks becomes
"?" here, rather than fpdf2 writing the missing character into the server's log. Without DejaVu the PDF core
font Helvetica is used and characters outside Latin-1 become "?": the export degrades, it never fails.
A table row cannot be taller than a page, so long cells continue on rows of their own.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from medvault.mar import quotes
from medvault.mar.chart import Chart, Desk
from medvault.mar.chronology import shown

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
COLUMNS = (("Date", 24), ("Kind", 22), ("Description", 95), ("Facility", 40), ("Provider", 40), ("Sources", 56))
FONT_SIZE = 8
LINE = 3.6  # mm per line of text
PADDING = 1.2  # mm inside each cell
LINES_PER_ROW = 45  # a row of at most this many lines always fits on a page under the repeated headings
SECTIONS = {
    "before": "Before the incident of {incident}",
    "around": "Around the incident of {incident} (approximate dates that contain it)",
    "after": "On or after the incident of {incident}",
}
GAP_FILL = (255, 236, 179)
SECTION_FILL = (222, 230, 240)


class Document(FPDF):
    """An A4 page (landscape unless asked) with the document's name and page number at the foot; the summary
    PDF (mar/summarypdf.py) uses it too, so both print with the same fonts and fallbacks."""

    def __init__(self, name: str, orientation: str = "L"):
        super().__init__(orientation=orientation, unit="mm", format="A4")
        self.name = name
        self.family = "helvetica"
        self.glyphs: set[int] | None = None  # the font's characters; None: the core font's Latin-1
        if all((FONT_DIR / f).is_file() for f in FONT_FILES.values()):
            for style, file in FONT_FILES.items():
                self.add_font("body", style=style, fname=str(FONT_DIR / file))
            self.family, self.glyphs = "body", set(self.fonts["body"].cmap) & set(self.fonts["bodyB"].cmap)
        self.set_margins(10, 10, 10)
        self.set_auto_page_break(True, margin=12)

    def printable(self, text: str) -> str:
        """The text with every character the font cannot show replaced by "?" (line breaks kept)."""
        if self.glyphs is None:
            return text.encode("latin-1", "replace").decode("latin-1")
        return "".join(c if c == "\n" or ord(c) in self.glyphs else "?" for c in text)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(self.family, size=7)
        self.cell(0, 4, self.printable(f"{self.name} · page {self.page_no()} of {{nb}}"), align="R")


def _sources(item: dict, titles: dict[str, str]) -> str:
    cites = item["data"].get("citations", [])
    if not cites:
        return "not verified (no source cited)"
    also = [f"also as {a['title']}" for a in item.get("also", [])]  # records judged the same document
    named = [quotes.described(c, titles.get(c["record"]) or f"record {c['record'][:8]}") for c in cites]
    return "\n".join(named + also)


def _description(item: dict) -> str:
    text = item["data"].get("description") or ""
    signed = f"by {item['author']}" + ("" if item["signature_valid"] else " (SIGNATURE INVALID)")
    return f"{text}\n{signed}" if text else signed


def _date(item: dict) -> str:
    return item["data"]["date"] + (" (approx.)" if item["data"].get("approximate") else "")


def _pieces(doc: Document, text: str, width: float) -> list[str]:
    """The text wrapped to the column, in pieces of at most LINES_PER_ROW lines."""
    lines = doc.multi_cell(width - 2 * PADDING, LINE, doc.printable(text), dry_run=True, output="LINES")
    return ["\n".join(lines[i : i + LINES_PER_ROW]) for i in range(0, len(lines), LINES_PER_ROW)] or [""]


def _occurrence_rows(doc: Document, table, item: dict, titles: dict[str, str]) -> None:
    cells = (
        _date(item),
        item["data"]["type"],
        _description(item),
        shown(item, "facility"),
        shown(item, "providers"),
        _sources(item, titles),
    )
    pieces = [_pieces(doc, text, width) for text, (_, width) in zip(cells, COLUMNS, strict=True)]
    for i in range(max(len(p) for p in pieces)):
        table.row([p[i] if i < len(p) else "" for p in pieces])


def _wide_row(doc: Document, table, text: str, fill: tuple[int, int, int]) -> None:
    """A section heading or a gap: one bold, shaded cell across the table."""
    table.row(style=FontFace(emphasis="BOLD", fill_color=fill)).cell(doc.printable(text), colspan=len(COLUMNS))


def to_pdf(result: dict, titles: dict[str, str], generated: dt.datetime) -> bytes:
    """The chronology `result` (mar/chronology.py) as PDF bytes; `titles` names cited records by id."""
    patient = result["patient"]
    doc = Document(f"Chronology of {patient}, {generated:%Y-%m-%d %H:%M} UTC")
    doc.set_title(doc.printable(f"Chronology of {patient}"))
    doc.set_creator("MedVault")
    doc.set_creation_date(generated)
    doc.add_page()
    doc.set_font(doc.family, style="B", size=14)
    doc.multi_cell(0, 7, doc.printable(f"Chronology of {patient}"), new_x="LMARGIN", new_y="NEXT")
    doc.set_font(doc.family, size=9)
    incident = result.get("incident")
    sections = (
        [(key, SECTIONS[key].format(incident=incident)) for key in SECTIONS] if incident else [("occurrences", None)]
    )
    count = sum(len(result[key]) for key, _ in sections)
    facts = [
        f"Generated {generated:%Y-%m-%d %H:%M} UTC",
        f"{count} occurrence{'s' if count != 1 else ''}",
        f"incident {incident}" if incident else "no incident date",
        f"{len(result['gaps'])} gap(s) longer than {result['gap_days']} days flagged",
    ]
    doc.multi_cell(0, 5, doc.printable(" · ".join(facts)), new_x="LMARGIN", new_y="NEXT")
    if result["gaps"]:  # listed whole: a gap before a record not yet accepted has no row to be printed above
        spans = "; ".join(f"{g['from']} to {g['to']} ({g['days']} days)" for g in result["gaps"])
        doc.multi_cell(0, 5, doc.printable(f"Gaps in care: {spans}"), new_x="LMARGIN", new_y="NEXT")
    doc.ln(2)
    doc.set_font(doc.family, size=FONT_SIZE)
    if not count:
        doc.multi_cell(0, 5, "No occurrences match these filters.")
        return bytes(doc.output())
    gaps = {g["before"]: g for g in result["gaps"]}
    with doc.table(
        col_widths=tuple(width for _, width in COLUMNS),
        width=sum(width for _, width in COLUMNS),
        line_height=LINE,
        padding=PADDING,
        text_align="LEFT",
        v_align="TOP",
        headings_style=FontFace(emphasis="BOLD", fill_color=SECTION_FILL),
    ) as table:
        table.row([name for name, _ in COLUMNS])
        for key, heading in sections:
            if heading:
                _wide_row(doc, table, f"{heading}: {len(result[key])}", SECTION_FILL)
            for item in result[key]:
                gap = gaps.get(item["id"])
                if gap:
                    text = f"GAP: {gap['days']} days with nothing recorded, {gap['from']} to {gap['to']}"
                    _wide_row(doc, table, text, GAP_FILL)
                _occurrence_rows(doc, table, item, titles)
    return bytes(doc.output())


def export(chart: Chart, desk: Desk, result: dict) -> bytes:
    """The PDF of a chronology just computed for `desk`, its sources named by the records' titles."""
    cited = {
        c["record"]
        for key in ("occurrences", *SECTIONS)
        for e in result.get(key, [])
        for c in e["data"].get("citations", [])
    }
    titles = {}
    if cited:
        for record in chart.records(desk):
            if record.id in cited:
                titles[record.id] = record.metadata.get("title") or record.metadata.get("filename") or record.id
    return to_pdf(result, titles, dt.datetime.now(dt.UTC))
