"""The chronology as a PDF, over the API and from the chart page: it parses, carries the occurrences, the
incident split and the gaps, survives any Unicode, and bad requests get a JSON refusal."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from pypdf import PdfReader

from medvault.mar import chronopdf
from tests.mar.pdfs import make_pdf
from tests.support import upload

PDF = "/api/v1/charts/chronology.pdf"


def _text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module")
def chart(server):
    pat = server.account("cpdfpat")["client"]
    rid = upload(pat, make_pdf(["ER notes", "Triage at 21:40"]), "er.pdf", {"title": "ER notes"}).json()["id"]
    photo = upload(pat, b"\xff\xd8\xff\xe0 not really", "wrist.jpg", {"title": "Photo"}, "image/jpeg").json()["id"]
    occurrences = [
        {
            "type": "encounter",
            "date": "2024-01-10",
            "facility": "Universitätsspital Zürich",
            "providers": ["Dr. Ana Núñez"],
            "description": "Fall on ice – wrist swollen",
            "citations": [
                {"record": rid, "pages": "2", "quote": "Triage at 21:40"},
                {"record": rid, "pages": "2", "quote": "ER notes"},
                {"record": photo, "quote": "Swelling over the wrist"},
            ],
        },
        {"type": "diagnosis", "date": "2024-03", "description": "Fracture suspected ≥ 2 mm (Ω)"},
        {"type": "procedure", "date": "2024-06-01", "description": "Cast removed " + "and reviewed " * 900},
    ]
    for data in occurrences:
        response = pat.post("/api/v1/charts/entries", json={"kind": "occurrence", "data": data})
        assert response.status_code == 201, response.text
    return pat


def test_chronology_pdf_has_the_rows_the_split_and_the_gaps(chart):
    """The PDF parses; it names the patient, the incident sections, the gap after the incident, every
    description, the cited record by title with its page and each quote's check (an unchecked one not as a
    quotation), and keeps non-Latin-1 text."""
    response = chart.post(PDF, json={"incident": "2024-03-15", "from": "2024"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="chronology.pdf"'
    assert response.headers["cache-control"] == "no-store"
    text = " ".join(_text(response.content).split())
    for expected in (
        "Chronology of cpdfpat",
        "Generated ",
        "3 occurrences",
        "Before the incident of 2024-03-15: 1",
        "Around the incident of 2024-03-15",
        "On or after the incident of 2024-03-15: 1",
        "1 gap(s) longer than 30 days flagged",  # counted from the incident: January's is before it
        "Gaps in care: 2024-04-01 to 2024-05-31 (61 days)",
        "GAP: 61 days with nothing recorded, 2024-04-01 to 2024-05-31",
        "Fall on ice – wrist swollen",
        "Universitätsspital Zürich",
        "Fracture suspected ≥ 2 mm (Ω)",
        "Cast removed and reviewed",
        'ER notes, p. 2: "Triage at 21:40" (verified on the page)',
        'ER notes, p. 2: "ER notes" (found elsewhere in the record, p. 1)',
        "Photo (not checkable, in the reader's words: Swelling over the wrist)",
        "not verified",
    ):
        assert expected in text, expected
    assert text.count("reviewed") == 900, "a description longer than a page continues, nothing lost"
    assert '"Swelling' not in text, "a quote nobody could check is never printed as a quotation"


def test_chronology_pdf_without_incident_and_with_filters(chart):
    """Without an incident the rows are one list; filters apply as in the JSON chronology."""
    response = chart.post(PDF, json={"types": ["diagnosis"], "gap_days": 10})
    text = _text(response.content)
    assert "Fracture suspected" in text and "Fall on ice" not in text and "Before the incident" not in text
    empty = _text(chart.post(PDF, json={"to": "1990"}).content)
    assert "No occurrences match these filters." in empty


def test_chart_page_downloads_the_pdf(chart):
    """The chronology page's Download PDF button posts the form to a route that answers the PDF."""
    page = chart.get("/chart")
    assert 'formaction="/chart/chronology.pdf"' in page.text
    token = chart.headers["X-CSRF-Token"]
    response = chart.post("/chart/chronology.pdf", data={"csrf_token": token, "incident": "2024-03-15"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert "Before the incident of 2024-03-15" in _text(response.content)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"gap_days": "thirty"}, "gap_days"),
        ({"incident": "2024-13-01"}, "incident"),
        ({"from": "2024-05", "to": "2024-01"}, "after"),
        ({"types": ["dance"]}, "types"),
        ({"colour": "red"}, "unknown"),
        ({"patient": "nobody-here"}, "shared"),
    ],
)
def test_bad_requests_are_refused_with_a_json_detail(chart, body, detail):
    """Bad filters, unknown fields and someone else's chart get a 4xx with a JSON `detail`, not a PDF."""
    response = chart.post(PDF, json=body)
    assert 400 <= response.status_code < 500 and response.headers["content-type"] == "application/json"
    assert detail in response.json()["detail"]


def test_body_that_is_not_json_is_refused(chart):
    """A body that is not a JSON object is a 400 with a detail."""
    response = chart.post(PDF, content=b"incident=2024-03-15", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["detail"]


def test_without_dejavu_the_core_font_replaces_what_it_cannot_show(monkeypatch, tmp_path):
    """Without the DejaVu font the PDF is still written; Latin-1 text stays, other characters become "?"."""
    monkeypatch.setattr(chronopdf, "FONT_DIR", tmp_path)
    item = {
        "id": "e1",
        "author": "p",
        "signature_valid": True,
        "data": {"type": "note", "date": "2024-01-01", "description": "Zürich – 東京", "citations": []},
        "identities": {"facility": None, "providers": []},
    }
    result = {"patient": "p", "gap_days": 30, "occurrences": [item], "gaps": [], "candidates": []}
    text = _text(chronopdf.to_pdf(result, {}, dt.datetime(2025, 1, 2, tzinfo=dt.UTC)))
    assert "Zürich ? ??" in text and "Generated 2025-01-02 00:00 UTC" in text
