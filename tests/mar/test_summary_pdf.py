"""Summaries with citations: checked on the server like chart entries, delivered as a signed PDF and as a FHIR
Composition with one section per heading; nothing of either readable at rest."""

from __future__ import annotations

import io
import json
import re
import uuid

import pytest
from fhir.resources.R4B.bundle import Bundle
from pypdf import PdfReader

from tests.mar.pdfs import make_pdf
from tests.mar.test_fhir_typed import schema_errors
from tests.support import upload
from tests.vault.test_at_rest import _all_bytes_under

HTML = {"accept": "text/html"}
PAGES = [
    "Emergency note. Patient reports a fall on ice. Pain in the left wrist.",
    "Radiology: a displaced fracture of the distal radius is seen. No dislocation.",
]
VERIFIED = "displaced fracture of the distal radius"
ELSEWHERE = "fall on ice"  # on page 1, cited as page 2
MARKDOWN = (
    "## Assessment\n\nZORBLAT-ASSESS healing of the wrist [1].\n\n"
    "## Plan\n\nQUIXOTAL-PLAN physiotherapy for six weeks [2].\n\n"
    "## Next steps\n\n```\n## not a heading\n```\n"
)
ER = {"title": "ER visit", "provider": ["Dr. Ana Ruiz"], "facility": "St. Jude ED"}
WORDS = ("ZORBLAT-ASSESS", "QUIXOTAL-PLAN", "not a heading")


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def sent(server):
    """A patient's two-page PDF shared with a specialist, and a summary citing it twice sent back."""
    pat, dr = server.account("pdfpat"), server.account("pdfdoc", role="specialist")
    record = upload(pat["client"], make_pdf(PAGES), "er.pdf", ER).json()["id"]
    shared = pat["client"].post("/api/v1/shares", json={"specialist": "pdfdoc", "records": [record]})
    assert shared.status_code == 201, shared.text
    citations = [
        {"record": record, "pages": "2", "quote": VERIFIED},
        {"record": record, "pages": "2", "quote": ELSEWHERE},
    ]
    body = {"patient": "pdfpat", "title": "Wrist review", "markdown": MARKDOWN, "citations": citations}
    answer = dr["client"].post("/api/v1/summaries", json=body)
    assert answer.status_code == 201, answer.text
    return {"pat": pat["client"], "dr": dr["client"], "record": record, **answer.json()}


def test_pdf_holds_sections_and_only_verified_quotations(sent):
    """The PDF names title, signer and sections; the quote on its page is a quotation, the one found on another
    page is shown as the specialist's words with its level, never between quotation marks."""
    pdf = sent["pat"].get(f"/api/v1/records/{sent['pdf']}/content")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf.content))
    text = _flat("\n".join(page.extract_text() for page in reader.pages))
    for words in ("Wrist review", "Written by pdfdoc for pdfpat", "Assessment", "Plan", "Next steps", *WORDS[:2]):
        assert words in text, words
    assert f'[1] ER visit, p. 2: "{VERIFIED}" (verified on the page)' in text
    assert f"[2] ER visit, p. 2 (found elsewhere in the record, p. 1, in the reader's words: {ELSEWHERE})" in text
    assert f'"{ELSEWHERE}"' not in text
    assert "signed by pdfdoc" in text and re.search(r"page 1 of \d", text)


def test_fabricated_quotes_are_refused_and_nothing_is_sent(sent):
    """A quote that is nowhere in the record, a page it does not have, or a record of someone else's is refused;
    the inbox gains nothing."""
    before = sent["pat"].get("/api/v1/inbox").json()["items"]
    for cite, message in [
        ({"record": sent["record"], "pages": "1", "quote": "no fracture at all"}, "not on page(s) 1"),
        ({"record": sent["record"], "pages": "9", "quote": VERIFIED}, "page 9 cannot be cited"),
        ({"record": str(uuid.uuid4()), "quote": VERIFIED}, "not one of this patient's records"),
    ]:
        body = {"patient": "pdfpat", "title": "Fake", "markdown": "## Plan\n\nx", "citations": [cite]}
        refused = sent["dr"].post("/api/v1/summaries", json=body)
        assert refused.status_code in (400, 404) and message in refused.json()["detail"], refused.text
    assert sent["pat"].get("/api/v1/inbox").json()["items"] == before


def test_the_patient_sees_one_summary_signed_with_its_pdf(sent):
    """The inbox lists the summary once, with its PDF; both are signed by the specialist, signature valid."""
    items = sent["pat"].get("/api/v1/inbox").json()["items"]
    assert [(i["id"], i["pdf"], i["signed_by"], i["signature_valid"]) for i in items] == [
        (sent["id"], sent["pdf"], "pdfdoc", True)
    ]
    pdf = sent["pat"].get(f"/api/v1/records/{sent['pdf']}").json()
    assert (pdf["content_type"], pdf["signed_by"], pdf["signature_valid"]) == ("application/pdf", "pdfdoc", True)
    assert sent["pat"].get(f"/api/v1/records/{sent['id']}/content").text == MARKDOWN
    inbox = sent["pat"].get("/inbox", headers=HTML).text
    assert f'href="/records/{sent["pdf"]}/download"' in inbox
    page = sent["pat"].get(f"/records/{sent['pdf']}", headers=HTML).text
    assert "pdfdoc" in page and 'id="signature">signature valid' in page
    assert f'href="/records/{sent["pdf"]}/download"' in sent["pat"].get(f"/records/{sent['id']}", headers=HTML).text


def test_composition_has_a_section_per_heading_and_validates(sent):
    """One section per `##` heading (LOINC codes only where the heading names a standard section), then the
    cited records as DocumentReferences; valid against the FHIR R4 JSON schema and the R4B models."""
    bundle = sent["pat"].get(f"/api/v1/export/fhir/summary/{sent['id']}").json()
    assert schema_errors(bundle) == []
    Bundle.model_validate(bundle)
    sections = bundle["entry"][0]["resource"]["section"]
    assert [s["title"] for s in sections] == ["Assessment", "Plan", "Next steps", "Cited records"]
    codes = [s.get("code", {}).get("coding", [{}])[0].get("code") for s in sections]
    assert codes == ["51848-0", "18776-5", None, None]
    assert "ZORBLAT-ASSESS" in sections[0]["text"]["div"] and "ZORBLAT" not in sections[1]["text"]["div"]
    cited = sections[-1]
    assert cited["entry"] == [{"reference": f"urn:uuid:{sent['record']}"}]
    assert f"&quot;{VERIFIED}&quot;" in cited["text"]["div"] and f"&quot;{ELSEWHERE}&quot;" not in cited["text"]["div"]
    resources = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert resources[f"urn:uuid:{sent['record']}"]["resourceType"] == "DocumentReference"
    references = re.findall(r'"reference": "([^"]+)"', json.dumps(bundle))
    assert references and set(references) <= set(resources), "every reference resolves inside the document"


def test_the_specialist_cites_from_the_summary_form(sent):
    """The form takes a record, pages and quoted words (with the CSRF token); a quote not in the record comes
    back refused with the form kept, a good one is sent with its PDF."""
    dr = sent["dr"]
    form = dr.get("/patients/pdfpat/summary", headers=HTML).text
    assert f'<option value="{sent["record"]}">ER visit' in form
    data = {
        "csrf_token": dr.headers["X-CSRF-Token"],
        "title": "Form review",
        "markdown": "## Plan\n\nRest.",
        "cite_record_1": sent["record"],
        "cite_pages_1": "2",
        "cite_quote_1": "an invented sentence",
        "action": "send",
    }
    refused = dr.post("/patients/pdfpat/summary", data=data, headers=HTML)
    assert refused.status_code == 400 and "The quote is not" in refused.text and "an invented sentence" in refused.text
    assert dr.post("/patients/pdfpat/summary", data={**data, "csrf_token": "x"}, headers=HTML).status_code == 403
    data["cite_quote_1"] = VERIFIED
    done = dr.post("/patients/pdfpat/summary", data=data, headers=HTML, follow_redirects=False)
    assert done.status_code == 303, done.text
    items = sent["pat"].get("/api/v1/inbox").json()["items"]
    assert items[0]["title"] == "Form review" and items[0]["pdf"]


def test_nothing_of_the_summary_is_readable_at_rest(server, sent):
    """The data folder (database, blobs, logs) and the temp folder hold none of the summary's words."""
    sent["pat"].get(f"/api/v1/export/fhir/summary/{sent['id']}")
    files = _all_bytes_under(server.data_dir, server.tmp_dir)
    assert any(path.endswith("medvault.db") for path, _ in files)
    for path, data in files:
        for words in (*WORDS, "Wrist review"):
            assert words.encode().lower() not in data.lower(), f"{words} found in {path}"
