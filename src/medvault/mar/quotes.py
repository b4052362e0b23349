"""Citations checked against the text of the cited record, before an entry is signed.

A quote is looked for on the cited pages first, then in the rest of the record, and the citation keeps what
was found as its `check`, one of three levels the pages and the exports show (`LEVELS`):

- `page`: the words are on the cited pages (or, when no page is cited, the record is one page of text);
- `record`: they are elsewhere in the record, on the pages kept as `found_on`;
- `unchecked`: the record has no text to check them against (an image, a scan OCR could not read, a text
  beyond the extraction limits).

A citation of a page the document does not have, or a quote that is nowhere in a record whose whole text
was read, is refused with a message saying which. Only a `page` quote is printed as a quotation. Quotes are
compared without case, accents, spacing, punctuation and line-end hyphens (what text extraction, OCR and
retyping change), and across page breaks. The level is set here, on the server: a client cannot send it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import accumulate

from medvault.mar.entries import ChartError
from medvault.mar.index import normalise
from medvault.mar.pdftext import Pages

LEVELS = {
    "page": "verified on the page",
    "record": "found elsewhere in the record",
    "unchecked": "not checkable",
}

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


def level(cite: dict) -> str | None:
    """How the citation's quote was checked; None without a quote, `unchecked` for an entry written before
    quotes were checked."""
    return cite.get("check", "unchecked") if cite.get("quote") else None


def needs_text(cite: dict) -> bool:
    """Whether checking the citation reads its record: a bare reference to a record names nothing to check."""
    return "pages" in cite or bool(cite.get("quote"))


def verified(citations: list[dict]) -> bool:
    """An entry is verified when it cites a record and each of its quotes is on the page it names."""
    return bool(citations) and all(level(c) in (None, "page") for c in citations)


def described(cite: dict, name: str, quoted: tuple[str, ...] = ("page", "record")) -> str:
    """One citation as the chronology PDF and CSV print it: only a quote found in the record's text is put in
    quotation marks, with where it was found; an unchecked one is shown as the reader's words. A summary to the
    patient quotes only what is on the cited page (`quoted=("page",)`): a citation that names the wrong page
    is not a quotation of it."""
    line = name + (f", p. {cite['pages']}" if cite.get("pages") else "")
    quote, level_ = cite.get("quote"), level(cite)
    if level_ is None:
        return line
    found = f", p. {cite['found_on']}" if level_ == "record" else ""
    if level_ in quoted:
        return f'{line}: "{quote}" ({LEVELS[level_]}{found})'
    return f"{line} ({LEVELS[level_]}{found}, in the reader's words: {quote})"


def check(citations: list[dict], record_pages: Callable[[str], Pages | None]) -> None:
    """Set each quoted citation's `check` level, or refuse one its record contradicts; `record_pages(record)`
    is the record's text, None when its type has none."""
    read: dict[str, Pages | None] = {}
    for cite in filter(needs_text, citations):
        record = cite["record"]
        if record not in read:
            read[record] = record_pages(record)
        _check_one(cite, read[record])


def _check_one(cite: dict, pages: Pages | None) -> None:
    wanted = cited_pages(cite, pages)
    quote = squashed(cite.get("quote") or "")
    if not quote:
        return
    whole = [pages.page(n) for n in range(1, len(pages.texts) + 1)] if pages else []
    readable = [t for t in whole if t is not None]
    if not any(t.strip() for t in readable):
        cite["check"] = "unchecked"
        return
    cited = [pages.page(n) for n in wanted] or ([whole[0]] if pages.count == 1 else [])
    if cited and None not in cited and quote in squashed("".join(cited)):
        cite["check"] = "page"
        return
    found = _found_on(quote, readable)
    if found:
        cite["check"], cite["found_on"] = "record", found
    elif pages.truncated or None in cited:
        cite["check"] = "unchecked"
    else:
        where = f"on page(s) {cite['pages']} nor elsewhere in" if "pages" in cite else "in"
        raise ChartError(f"The quote is not {where} record {cite['record']}")


def cited_pages(cite: dict, pages: Pages | None) -> list[int]:
    """The page numbers a citation names (none listed for a record without known pages); refused when the
    document is known to have fewer."""
    if "pages" not in cite or pages is None or not pages.count:
        return []
    ranges = page_ranges(cite["pages"])
    highest = max(last for _, last in ranges)
    if highest > pages.count:
        raise ChartError(f"Record {cite['record']} has {pages.count} page(s): page {highest} cannot be cited")
    return [n for first, last in ranges for n in range(first, last + 1)]


def _found_on(quote: str, texts: list[str]) -> str | None:
    """The pages ("3" or "3-4") the squashed quote runs over in the record's whole pages, or None."""
    squashed_pages = [squashed(t) for t in texts]
    at = "".join(squashed_pages).find(quote)
    if at < 0:
        return None
    ends = list(accumulate(len(s) for s in squashed_pages))
    first = next(n for n, end in enumerate(ends, 1) if end > at)
    last = next(n for n, end in enumerate(ends, 1) if end >= at + len(quote))
    return str(first) if first == last else f"{first}-{last}"
