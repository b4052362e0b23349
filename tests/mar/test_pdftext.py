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


def _check(cite: dict, pages: Pages | None) -> dict:
    checked = {"record": "r", **cite}
    quotes.check([checked], lambda _: pages)
    return checked


def test_citation_levels_checked_against_the_record_text():
    """A quote on the cited page (or across a page break of a cited range) is verified on the page; on another
    page it is found elsewhere in the record, with the page it is on; nowhere in a whole text, or a page the
    document lacks, is refused; where there is no text to check against it is not checkable."""
    pdf = Pages(("Triage at 21:40.", "X-ray shows a displaced", "fracture. Cast applied."), 3)
    assert _check({"pages": "2", "quote": "x ray shows"}, pdf)["check"] == "page"
    assert _check({"pages": "2-3", "quote": "a displaced fracture"}, pdf)["check"] == "page"
    assert "check" not in _check({"pages": "3"}, pdf)
    elsewhere = _check({"pages": "1", "quote": "displaced fracture. Cast"}, pdf)
    assert (elsewhere["check"], elsewhere["found_on"]) == ("record", "2-3")
    assert _check({"quote": "cast applied"}, pdf) == {
        "record": "r",
        "quote": "cast applied",
        "check": "record",
        "found_on": "3",
    }
    with pytest.raises(ChartError, match=r"not on page\(s\) 1 nor elsewhere"):
        _check({"pages": "1", "quote": "the patient was seen by a surgeon"}, pdf)
    with pytest.raises(ChartError, match="not in record"):
        _check({"quote": "fabricated words"}, pdf)
    with pytest.raises(ChartError, match="3 page"):
        _check({"pages": "2, 7"}, pdf)
    assert _check({"pages": "1", "quote": "typed note"}, Pages(("A typed note.",), 1))["check"] == "page"
    assert _check({"quote": "typed note"}, Pages(("A typed note.",), 1))["check"] == "page"  # one page of text
    with pytest.raises(ChartError, match="1 page"):
        _check({"pages": "2", "quote": "typed note"}, Pages(("A typed note.",), 1))
    unchecked = [
        ({"pages": "9", "quote": "anything"}, None),  # an image: no text here
        ({"pages": "9", "quote": "anything"}, NO_TEXT),  # unreadable PDF
        ({"pages": "1", "quote": "anything"}, Pages(("",), 1)),  # a scan without text
        ({"pages": "2", "quote": "anything"}, Pages(("a", "b"), 3, cut=True)),  # page 2 not read whole
        ({"quote": "anything"}, Pages(("a", "b"), 3)),  # page 3 not read
    ]
    assert [_check(cite, pages)["check"] for cite, pages in unchecked] == ["unchecked"] * 5


def test_only_quotes_on_their_page_verify_an_entry():
    assert quotes.verified([{"record": "r", "quote": "q", "check": "page"}, {"record": "s"}])
    assert not quotes.verified([{"record": "r", "quote": "q", "check": "record", "found_on": "2"}])
    assert not quotes.verified([{"record": "r", "quote": "q", "check": "unchecked"}])
    assert not quotes.verified([{"record": "r", "quote": "q"}])  # written before quotes had levels
    assert not quotes.verified([])
