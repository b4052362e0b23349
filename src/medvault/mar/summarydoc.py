"""A summary as a document: its sections, its checked citations, and the link to its PDF.

One source of truth. The Markdown record the specialist signs is the summary: its text, and its citations as
the server checked them (mar/quotes.py levels), kept in the record's sealed, signed metadata as custom fields
`medvault:citation:N` (one JSON object each, so a field stays under the metadata's 2,000 characters). The PDF
is a second record made from that source in the same send, signed by the same key, and never edited on its
own: the Markdown record names it (`medvault:pdf`) and it names the Markdown record (`medvault:summary`), both
set before either is committed, in one transaction. The FHIR Composition and the PDF read their sections from
the same `sections` below, so the two never disagree about what the summary says.

Sections are the Markdown's `##` headings (a `##` inside a fenced code block is text). Text before the first
heading is a section without a heading of its own. A heading gets a LOINC section code only where the name
says exactly what a standard section is (C-CDA's section codes); any other heading is text only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from medvault.mar.entries import ChartError

CITATION = "medvault:citation:"
PDF = "medvault:pdf"
SOURCE = "medvault:summary"
MAX_CITATIONS = 20
MAX_QUOTE = 500  # a citation's JSON must fit in one custom field (2,000 characters)

_HEADING = re.compile(r"^##(?!#)\s*(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")

# Headings (case folded, spacing squashed) that name a standard section, with its LOINC code and display.
SECTION_CODES = {
    "problem list": ("11450-4", "Problem list - Reported"),
    "problems": ("11450-4", "Problem list - Reported"),
    "medications": ("10160-0", "History of Medication use Narrative"),
    "allergies": ("48765-2", "Allergies and adverse reactions Document"),
    "assessment": ("51848-0", "Evaluation note"),
    "plan": ("18776-5", "Plan of care note"),
    "assessment and plan": ("51847-2", "Evaluation + Plan note"),
    "history of present illness": ("10164-2", "History of Present illness Narrative"),
    "chief complaint": ("10154-3", "Chief complaint Narrative - Reported"),
    "reason for referral": ("42349-1", "Reason for referral (narrative)"),
    "results": ("30954-2", "Relevant diagnostic tests/laboratory data Narrative"),
    "family history": ("10157-6", "History of family member diseases Narrative"),
    "social history": ("29762-2", "Social history Narrative"),
    "immunizations": ("11369-6", "History of Immunization Narrative"),
    "procedures": ("47519-4", "History of Procedures Document"),
    "physical examination": ("29545-1", "Physical findings Narrative"),
    "review of systems": ("10187-3", "Review of systems Narrative - Reported"),
    "vital signs": ("8716-3", "Vital signs"),
}


@dataclass(frozen=True)
class Section:
    title: str | None  # None: the text before the first heading
    text: str


def sections(markdown: str) -> list[Section]:
    """The summary's sections in order; blank ones (no heading, no text) left out."""
    found: list[Section] = []
    title: str | None = None
    lines: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            found.append(Section(title, "\n".join(lines).strip("\n")))
            title, lines = heading.group(1) or "Untitled section", []
        else:
            lines.append(line)
    found.append(Section(title, "\n".join(lines).strip("\n")))
    return [s for s in found if s.title is not None or s.text.strip()]


def section_code(title: str | None) -> tuple[str, str] | None:
    """The LOINC (code, display) of a heading that names a standard section exactly, else None."""
    return SECTION_CODES.get(" ".join((title or "").split()).casefold())


def citation_fields(citations: list[dict]) -> dict[str, str]:
    """Checked citations as the summary record's custom fields, numbered from 1 in the order given."""
    if len(citations) > MAX_CITATIONS:
        raise ChartError(f"A summary cites at most {MAX_CITATIONS} records")
    for cite in citations:
        if len(cite.get("quote") or "") > MAX_QUOTE:
            raise ChartError(f"A summary's quote is at most {MAX_QUOTE} characters")
    return {f"{CITATION}{n}": json.dumps(c, ensure_ascii=False, sort_keys=True) for n, c in enumerate(citations, 1)}


def citations_of(metadata: dict) -> list[dict]:
    """The summary's checked citations, in their numbered order (none for a summary without any)."""
    custom = metadata.get("custom") or {}
    numbered = {k[len(CITATION) :]: v for k, v in custom.items() if k.startswith(CITATION)}
    return [json.loads(numbered[n]) for n in sorted(filter(str.isdigit, numbered), key=int)]


def pdf_of(metadata: dict) -> str | None:
    """The id of the summary's PDF, for a summary sent with one."""
    return (metadata.get("custom") or {}).get(PDF)


def is_pdf_copy(metadata: dict) -> bool:
    """Whether the record is the PDF made from a summary (listed with its summary, not on its own)."""
    return SOURCE in (metadata.get("custom") or {})
