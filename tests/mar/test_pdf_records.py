"""PDF records over the real API: their page text is searchable, compared as witness statements, checked in
citations and used to find re-scans, without a word of it in plaintext at rest; a malformed PDF is simply
stored without text."""

from __future__ import annotations

import pytest

from tests.mar.pdfs import make_pdf
from tests.support import upload
from tests.vault.test_at_rest import _all_bytes_under

ENTRIES = "/api/v1/charts/entries"
MARKER = "WOMBATPAGETWO7731"
DISCHARGE = [
    "Discharge letter. Patient admitted on the evening of the fall with pain in the left wrist.",
    f"Radiology: distal radius fracture {MARKER}, displaced. Cast applied, review in six weeks.",
    "Medication: ibuprofen as needed. Follow-up with orthopaedics at General Hospital.",
]


@pytest.fixture(scope="module")
def pat(server):
    return server.account("pdfpat")["client"]


def _upload_pdf(client, pages: list[str], name: str, meta: dict | None = None, **kw) -> str:
    response = upload(client, make_pdf(pages, **kw), name, meta or {"title": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _search(client, q: str) -> list[str]:
    response = client.post("/api/v1/records/search", json={"q": q})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def _add(client, kind: str, data: dict, status: int = 201) -> dict:
    response = client.post(ENTRIES, json={"kind": kind, "data": data})
    assert response.status_code == status, response.text
    return response.json()


def test_words_on_a_later_page_are_found(pat, server):
    """Words of page 2 find the PDF, for the uploader at once and for a specialist it is shared with later."""
    rid = _upload_pdf(pat, DISCHARGE, "discharge.pdf")
    assert _search(pat, MARKER.lower()) == [rid]
    assert _search(pat, "radius fract") == [rid]
    doc = server.account("pdfdoc", role="specialist")["client"]
    assert pat.post("/api/v1/shares", json={"specialist": "pdfdoc", "records": [rid]}).status_code == 201
    assert _search(doc, "orthopaedics") == [rid]


def test_malformed_pdf_is_stored_without_text(pat):
    """A PDF pypdf cannot read uploads and downloads as any record; it has no words and no statement text."""
    content = b"%PDF-1.4\n1 0 obj << /Type /Catalog QUOKKABROKEN ... truncated"
    response = upload(pat, content, "broken.pdf", {"title": "Broken scan"})
    assert response.status_code == 201, response.text
    rid = response.json()["id"]
    assert pat.get(f"/api/v1/records/{rid}/content").content == content
    assert _search(pat, "quokkabroken") == []
    assert _search(pat, "broken scan") == [rid]
    statement = _add(pat, "statement", {"witness": "Nobody", "date": "2024-01-01", "record": rid})
    assert statement["data"]["text_available"] is False


def test_pdf_witness_statements_compared_word_by_word(pat):
    """Two statements read from PDFs differ on time and street: those are the replace segments."""
    first = _upload_pdf(pat, ["Statement of A.", "I saw the blue car hit him at 9pm on Main Street."], "a.pdf")
    second = _upload_pdf(pat, ["Statement of B.", "I saw the blue car hit him at 11pm on Oak Road."], "b.pdf")
    a = _add(pat, "statement", {"witness": "Witness A", "date": "2024-03-16", "record": first})
    b = _add(pat, "statement", {"witness": "Witness B", "date": "2024-03-17", "record": second})
    assert a["data"]["text_available"] is True and "9pm" in a["data"]["text"]
    result = pat.post("/api/v1/charts/statements/compare", json={"statements": [a["id"], b["id"]]})
    assert result.status_code == 200, result.text
    (pair,) = result.json()["pairs"]
    changed = [(s["a"], s["b"]) for s in pair["segments"] if s["op"] == "replace"]
    assert changed == [("A.", "B."), ("9pm", "11pm"), ("Main Street.", "Oak Road.")]


def test_citations_quote_the_cited_page(pat):
    """A quote from page 2 cited as page 2 is kept; the same quote cited as page 1, or a page the PDF does not
    have, is refused and nothing is written."""
    rid = _upload_pdf(pat, DISCHARGE, "cited.pdf")
    quote = "cast applied -- review in six weeks"
    entry = _add(
        pat,
        "occurrence",
        {"type": "diagnosis", "date": "2024-02-01", "citations": [{"record": rid, "pages": "2", "quote": quote}]},
    )
    assert entry["verified"] is True and entry["data"]["citations"][0]["pages"] == "2"
    before = len(pat.post(f"{ENTRIES}/list", json={}).json()["items"])
    wrong = _add(
        pat,
        "occurrence",
        {"type": "diagnosis", "date": "2024-02-01", "citations": [{"record": rid, "pages": "1", "quote": quote}]},
        status=400,
    )
    assert "quote is not on page(s) 1" in wrong["detail"]
    beyond = _add(
        pat, "occurrence", {"type": "note", "date": "2024-02-01", "citations": [{"record": rid, "pages": "4-5"}]}, 400
    )
    assert "3 page(s)" in beyond["detail"]
    assert len(pat.post(f"{ENTRIES}/list", json={}).json()["items"]) == before


def test_rescanned_pdf_is_a_near_duplicate(server):
    """The same letter as two PDFs (other layout, other bytes, other title) is suggested as the same text."""
    client = server.account("pdfdup")["client"]
    first = _upload_pdf(client, DISCHARGE, "letter.pdf", {"title": "Letter"})
    again = _upload_pdf(client, DISCHARGE, "scan.pdf", {"title": "Scanned letter"}, size=13)
    _upload_pdf(client, ["A different letter about a knee.", "Nothing alike."], "knee.pdf", {"title": "Knee"})
    near = client.post("/api/v1/records/duplicates", json={}).json()["near"]
    assert [({r["id"] for r in n["records"]}, n["reason"]) for n in near] == [({first, again}, "same text")]
    assert near[0]["similarity"] >= 0.9


def test_pdf_text_is_nowhere_at_rest(pat, server):
    """After upload, search, a statement, a citation and duplicate detection, a word that only a PDF's second
    page holds is in no byte of the data folder, the temp folder or the server's log."""
    rid = _upload_pdf(pat, DISCHARGE, "at-rest.pdf")
    assert rid in _search(pat, MARKER)
    _add(pat, "statement", {"witness": "Clerk", "date": "2024-01-01", "record": rid})
    _add(
        pat,
        "annotation",
        {"record": rid, "text": "see p. 2", "citations": [{"record": rid, "pages": "2", "quote": MARKER}]},
    )
    assert pat.post("/api/v1/records/duplicates", json={}).status_code == 200
    log = server.data_dir.parent / f"{server.data_dir.name}-server.log"
    files = [*_all_bytes_under(server.data_dir, server.tmp_dir), (str(log), log.read_bytes())]
    assert MARKER.encode() in make_pdf(DISCHARGE), "the test PDF holds the marker as it is"
    for path, data in files:
        assert MARKER.lower().encode() not in data.lower(), f"{MARKER} found in {path}"
