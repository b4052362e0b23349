"""PDF text extraction and citation checks in process: text per page, the limits, unreadable PDFs that give no
text instead of an error, and quotes compared the way extraction changes text."""

from __future__ import annotations

import pytest

from medvault.mar import pdftext, quotes
from medvault.mar.entries import ChartError
from medvault.mar.pdftext import NO_TEXT, Pages, extract, is_pdf
from tests.mar.pdfs import make_pdf


def test_text_of_each_page():
    """Each page's words come back on their own page, accents and dashes intact."""
    pages = extract(make_pdf(["Admitted via the emergency room.", "Seen in Zürich – knee swollen."], unicode=True))
    assert pages.texts == ("Admitted via the emergency room.", "Seen in Zürich – knee swollen.")
    assert (pages.count, pages.truncated, pages.page(2)) == (2, False, "Seen in Zürich – knee swollen.")
    assert pages.page(0) is None and pages.page(3) is None


@pytest.mark.parametrize(
    "data",
    [b"", b"%PDF-1.4 not really a pdf", b"\x00" * 4096, make_pdf(["fine"])[:300], make_pdf(["x"]).replace(b"obj", b"")],
)
def test_unreadable_pdf_has_no_text_and_raises_nothing(data):
    """Garbage, truncated or broken PDFs give no text rather than an exception."""
    assert extract(data) == NO_TEXT


def test_pdf_locked_by_a_password_has_no_text_and_an_empty_one_is_read():
    """A PDF needing a user password is not read; one encrypted with an empty user password is."""
    assert extract(make_pdf(["secret words"], user_password="s3cret")) == NO_TEXT
    assert extract(make_pdf(["open words"], user_password="")).text == "open words"


def test_pdf_over_the_size_limit_is_not_read():
    """Bytes beyond MAX_PDF_BYTES are not parsed at all."""
    assert extract(make_pdf(["small"]) + b"\n" * pdftext.MAX_PDF_BYTES) == NO_TEXT


def test_page_and_text_limits_cut_the_text(monkeypatch):
    """Past MAX_PAGES pages are not read; past MAX_TEXT_BYTES the last page is cut and not offered whole."""
    data = make_pdf(["first page", "second page", "third page"])
    monkeypatch.setattr(pdftext, "MAX_PAGES", 2)
    pages = extract(data)
    assert (pages.texts, pages.count, pages.truncated, pages.page(2)) == (
        ("first page", "second page"),
        3,
        True,
        "second page",
    )
    monkeypatch.setattr(pdftext, "MAX_TEXT_BYTES", 14)
    pages = extract(data)
    assert pages.texts == ("first page", "seco") and pages.cut and pages.page(2) is None and pages.page(1)


def test_pdf_content_types():
    """application/pdf with parameters or in capitals is a PDF; other types are not."""
    assert is_pdf("application/PDF; name=x") and is_pdf("application/x-pdf")
    assert not is_pdf("text/plain") and not is_pdf(None)


def test_quotes_ignore_case_accents_spacing_and_line_end_hyphens():
    """A quote retyped without accents, with other spacing, over a hyphenated line end, is found."""
    assert quotes.squashed("Frac-\nture of the  Tibia, Zürich") == quotes.squashed("fracture of the tibia zurich")
    assert quotes.page_ranges("3-4, 7,9-8") == [(3, 4), (7, 7), (8, 9)]


def _check(cite: dict, pages: Pages | None) -> None:
    quotes.check([{"record": "r", **cite}], lambda _: pages)


def test_citation_checked_against_the_cited_pages():
    """A quote on the cited page (or across a page break of a cited range) passes; on another page, or a page
    the PDF lacks, it is refused; nothing is refused where there is no text to check against."""
    pdf = Pages(("Triage at 21:40.", "X-ray shows a displaced", "fracture. Cast applied."), 3)
    _check({"pages": "2", "quote": "x ray shows"}, pdf)
    _check({"pages": "2-3", "quote": "a displaced fracture"}, pdf)
    _check({"pages": "3"}, pdf)
    with pytest.raises(ChartError, match="not on page"):
        _check({"pages": "1", "quote": "cast applied"}, pdf)
    with pytest.raises(ChartError, match="3 page"):
        _check({"pages": "2, 7"}, pdf)
    _check({"pages": "9", "quote": "anything"}, None)  # not a PDF
    _check({"pages": "9", "quote": "anything"}, NO_TEXT)  # unreadable PDF
    _check({"pages": "1", "quote": "anything"}, Pages(("",), 1))  # a scan without text
    _check({"pages": "2", "quote": "anything"}, Pages(("a", "b"), 3, cut=True))  # page 2 not read whole
    _check({"quote": "anything"}, pdf)  # no pages: nothing to check against
