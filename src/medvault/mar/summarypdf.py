"""A summary as a PDF for the patient: what the specialist wrote, with its sources, readable without MedVault.

Made in memory in the specialist's session when the summary is sent (mar/summaries.py), then sealed and signed
as a record of its own: the footer of every page names the signer, and the patient's view checks that
signature like any record's. The page is chronopdf's document (same fonts and fallbacks), upright: the title,
who wrote it for whom and when, one heading per section of the Markdown (mar/summarydoc.py), the text as
written (Markdown is not interpreted, as on every page of MedVault), then the numbered citations with the
record's title, the pages and how the quote was checked. Only a quote verified on the cited page is printed in
quotation marks; any other is the specialist's words, with its level.
"""

from __future__ import annotations

import datetime as dt

from medvault.mar import quotes, summarydoc
from medvault.mar.chronopdf import Document

LINE = 5  # mm per line of body text


def _heading(doc: Document, text: str, size: int) -> None:
    doc.set_font(doc.family, style="B", size=size)
    doc.multi_cell(0, size * 0.5, doc.printable(text), new_x="LMARGIN", new_y="NEXT")
    doc.ln(1)


def _body(doc: Document, text: str) -> None:
    doc.set_font(doc.family, size=10)
    doc.multi_cell(0, LINE, doc.printable(text), new_x="LMARGIN", new_y="NEXT")
    doc.ln(3)


def to_pdf(
    title: str,
    specialist: str,
    patient: str,
    written: dt.datetime,
    markdown: str,
    citations: list[dict],
    titles: dict[str, str],
) -> bytes:
    """The summary's PDF bytes; `titles` names the cited records by id."""
    doc = Document(f"{title} · signed by {specialist} (MedVault signature)", orientation="P")
    doc.set_title(doc.printable(title))
    doc.set_author(doc.printable(specialist))
    doc.set_creator("MedVault")
    doc.set_creation_date(written)
    doc.add_page()
    _heading(doc, title, 16)
    doc.set_font(doc.family, size=9)
    facts = f"Written by {specialist} for {patient}, {written:%Y-%m-%d %H:%M} UTC. Signed with {specialist}'s key."
    doc.multi_cell(0, LINE, doc.printable(facts), new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)
    for section in summarydoc.sections(markdown):
        if section.title is not None:
            _heading(doc, section.title, 12)
        if section.text.strip():
            _body(doc, section.text)
    if citations:
        _heading(doc, "Citations", 12)
        lines = [
            f"[{n}] " + quotes.described(c, titles.get(c["record"]) or f"record {c['record'][:8]}", quoted=("page",))
            for n, c in enumerate(citations, 1)
        ]
        _body(doc, "\n".join(lines))
    return bytes(doc.output())
