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


POLICE_REPORT = [
    "Police report 24-0316. Collision at the crossing of Main Street and Oak Road. Officer K. Brandt.",
    "Witness 1, Mr. A. Novak: I was on Main Street at 9pm. The blue car was going about 40 mph and ran the red "
    "light. It hit the cyclist.",
    "Witness 2, Ms. B. Ortega: At 21:10 I saw the blue car on Main Street, maybe 25 mph. The light was green for "
    "the car. The cyclist swerved.",
]


def test_statements_from_pages_of_a_police_report_compared_fact_by_fact(pat):
    """Two witnesses on pages 2 and 3 of one report: each statement keeps only its pages' text (and cites them);
    the comparison lays out time, place, speed, vehicle, who and the light side by side: they agree on the
    place, the car and the cyclist, and differ on the time, the speed and the light. A page the report lacks,
    or pages without a record, are refused."""
    rid = _upload_pdf(pat, POLICE_REPORT, "police.pdf")
    novak = _add(pat, "statement", {"witness": "A. Novak", "date": "2024-03-16", "record": rid, "pages": "2"})
    ortega = _add(pat, "statement", {"witness": "B. Ortega", "date": "2024-03-16", "record": rid, "pages": 3})
    assert novak["data"]["text"].startswith("Witness 1") and "Ortega" not in novak["data"]["text"]
    assert ortega["data"]["citations"] == [{"record": rid, "pages": "3"}]
    result = pat.post("/api/v1/charts/statements/compare", json={"statements": [novak["id"], ortega["id"]]})
    assert result.status_code == 200, result.text
    facts = {
        row["fact"]: (row["status"], row["values"][novak["id"]], row["values"][ortega["id"]])
        for row in result.json()["facts"]
    }
    assert facts == {
        "time": ("differ", ["21:00"], ["21:10"]),
        "place": ("agree", ["main street"], ["main street"]),
        "speed": ("differ", ["40 mph"], ["25 mph"]),
        "vehicle": ("agree", ["blue car"], ["blue car"]),
        "who": ("agree", ["cyclist"], ["cyclist"]),
        "traffic light": ("differ", ["red"], ["green"]),
    }
    beyond = _add(pat, "statement", {"witness": "C", "date": "2024-03-16", "record": rid, "pages": "4"}, 400)
    assert "3 page(s)" in beyond["detail"]
    orphan = _add(pat, "statement", {"witness": "C", "date": "2024-03-16", "text": "Saw it", "pages": "2"}, 400)
    assert "give 'record' too" in orphan["detail"]


def test_citations_quote_the_cited_page(pat):
    """A quote from page 2 cited as page 2 is verified on the page; cited as page 1 it is kept as found
    elsewhere (on page 2) and the entry is not verified; a fabricated quote, a quote from another record and a
    page the PDF does not have are refused and nothing is written; an entry sent back with its levels is checked
    again, not trusted."""
    rid = _upload_pdf(pat, DISCHARGE, "cited.pdf")
    other = _upload_pdf(pat, ["Knee clinic letter.", "Meniscus tear on MRI, arthroscopy advised."], "knee.pdf")
    quote = "cast applied -- review in six weeks"

    def occurrence(cite: dict, status: int = 201) -> dict:
        return _add(pat, "occurrence", {"type": "diagnosis", "date": "2024-02-01", "citations": [cite]}, status)

    entry = occurrence({"record": rid, "pages": "2", "quote": quote})
    assert entry["verified"] is True and entry["data"]["citations"][0] == {
        "record": rid,
        "pages": "2",
        "quote": quote,
        "check": "page",
    }
    elsewhere = occurrence({"record": rid, "pages": "1", "quote": quote})
    assert elsewhere["verified"] is False
    assert elsewhere["data"]["citations"][0] | {"quote": ""} == {
        "record": rid,
        "pages": "1",
        "quote": "",
        "check": "record",
        "found_on": "2",
    }
    before = len(pat.post(f"{ENTRIES}/list", json={}).json()["items"])
    fabricated = occurrence({"record": rid, "pages": "2", "quote": "no fracture was seen"}, 400)
    assert f"quote is not on page(s) 2 nor elsewhere in record {rid}" in fabricated["detail"]
    borrowed = occurrence({"record": rid, "quote": "meniscus tear on MRI"}, 400)
    assert f"quote is not in record {rid}" in borrowed["detail"]
    beyond = _add(
        pat, "occurrence", {"type": "note", "date": "2024-02-01", "citations": [{"record": rid, "pages": "4-5"}]}, 400
    )
    assert "3 page(s)" in beyond["detail"]
    assert len(pat.post(f"{ENTRIES}/list", json={}).json()["items"]) == before
    forged = {**elsewhere["data"], "citations": [{**elsewhere["data"]["citations"][0], "check": "page"}]}
    again = pat.put(f"{ENTRIES}/{elsewhere['id']}", json={"data": forged})
    assert again.status_code == 200, again.text
    assert (again.json()["verified"], again.json()["data"]["citations"][0]["check"]) == (False, "record")
    assert occurrence({"record": other, "pages": "2", "quote": "meniscus tear on MRI"})["verified"] is True


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
