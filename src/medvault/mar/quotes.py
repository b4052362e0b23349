"""Citations of PDF pages checked against the text of those pages, before an entry is signed.

An entry with a citation is shown as verified, so a citation naming a page the PDF does not have, or quoting
words that are not on the cited pages, is refused with a message saying which. Quotes are compared without
case, accents, spacing, punctuation and line-end hyphens (what text extraction and retyping change), and
across the cited pages in order (a quote may run over a page break). Nothing is refused on what cannot be
seen: a PDF without text (a scan, malformed, too large), pages beyond the extraction limits, or a record that
is not a PDF.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from medvault.mar.entries import ChartError
from medvault.mar.index import normalise
from medvault.mar.pdftext import Pages

_NOT_WORD = re.compile(r"\W+")


def squashed(text: str) -> str:
    """Letters and digits only, case folded, accents removed: `Dis-\nplaced, left` becomes `displacedleft`."""
    return _NOT_WORD.sub("", normalise(text))


def page_ranges(spec: str) -> list[tuple[int, int]]:
    """The (first, last) page ranges a `3-4, 7` citation names; a range is read either way round."""
    ranges = []
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        first, last = sorted((int(low), int(high or low)))
        ranges.append((first, last))
    return ranges


def check(citations: list[dict], pdf_pages: Callable[[str], Pages | None]) -> None:
    """Refuse a citation whose pages or quote its PDF contradicts; `pdf_pages(record)` is None for non-PDFs."""
    read: dict[str, Pages | None] = {}
    for cite in citations:
        if "pages" not in cite:
            continue
        record = cite["record"]
        if record not in read:
            read[record] = pdf_pages(record)
        pages = read[record]
        if pages is None or not pages.count:
            continue
        ranges = page_ranges(cite["pages"])
        highest = max(last for _, last in ranges)
        if highest > pages.count:
            raise ChartError(f"Record {record} has {pages.count} page(s): page {highest} cannot be cited")
        quote = squashed(cite.get("quote") or "")
        texts = [pages.page(n) for first, last in ranges for n in range(first, last + 1)]
        if not quote or None in texts or not any(t.strip() for t in texts):
            continue
        if quote not in squashed("".join(texts)):
            raise ChartError(f"The quote is not on page(s) {cite['pages']} of record {record}")
