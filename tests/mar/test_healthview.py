"""The patient's health overview, from imported FHIR and from entries typed in: problems, medications,
allergies, immunisations and a chart per lab test (page and API)."""

from __future__ import annotations

import re

import pytest

from tests.mar.test_fhir_typed import _bundle
from tests.support import add_entry, upload

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def patient(server):
    account = server.account("healthpat")
    client = account["client"]
    imported = client.post("/api/v1/import/fhir", json=_bundle())
    assert imported.status_code == 201, imported.text
    account["not_kept"] = imported.json()["not_kept"]
    add_entry(
        client, "occurrence", {"type": "test-result", "date": "2024-06-01", "description": "Haemoglobin: 13.8 g/dL"}
    )
    add_entry(client, "occurrence", {"type": "diagnosis", "date": "2024-05-02", "description": "Migraine"})
    return account


def test_the_import_answer_lists_what_it_could_not_keep(patient):
    assert any("CarePlan" in n for n in patient["not_kept"])
    assert any("Practitioner.identifier" in n for n in patient["not_kept"])


def test_importing_the_same_bundle_again_adds_nothing(patient):
    client = patient["client"]
    before = client.post("/api/v1/charts/entries/list", json={}).json()["items"]
    again = client.post("/api/v1/import/fhir", json=_bundle())
    assert again.status_code == 201, again.text
    assert again.json()["entries"] == [] and again.json()["already_present"]["entries"] == 9
    assert client.post("/api/v1/charts/entries/list", json={}).json()["items"] == before


def test_importing_the_own_export_adds_no_record_and_no_occurrence(patient):
    client = patient["client"]
    made = upload(client, b"%PDF-1.4 discharge letter", "letter.pdf", {"title": "Discharge letter"})
    add_entry(
        client,
        "occurrence",
        {"type": "encounter", "date": "2024-03-16", "citations": [{"record": made.json()["id"]}]},
    )
    records = client.get("/api/v1/records").json()["items"]
    entries = client.post("/api/v1/charts/entries/list", json={}).json()["items"]
    exported = client.get("/api/v1/export/fhir").json()
    again = client.post("/api/v1/import/fhir", json=exported)
    assert again.status_code == 201, again.text
    assert again.json()["count"] == 0 and again.json()["entries"] == []
    assert again.json()["already_present"] == {"records": 1, "entries": len(entries)}
    assert client.get("/api/v1/records").json()["items"] == records


def test_overview_sections_and_lab_series(patient):
    view = patient["client"].post("/api/v1/charts/health", json={})
    assert view.status_code == 200, view.text
    data = view.json()
    assert [p["description"] for p in data["problems"]] == ["Migraine", "Cervical sprain"]
    assert data["problems"][1]["codes"] == ["SNOMED CT 81680005", "ICD-10 S13.4"]
    assert data["problems"][1]["status"] == "active"
    assert {m["description"] for m in data["medications"]} == {
        "Ibuprofen 600 MG Oral Tablet",
        "Acetaminophen 325 MG Oral Tablet",
    }
    (allergy,) = data["allergies"]
    assert "criticality high" in allergy["detail"] and "Skin rash" in allergy["detail"]
    (vaccine,) = data["immunisations"]
    assert vaccine["description"] == "Tdap" and "lot TD-4471" in vaccine["detail"]
    (hb,) = data["labs"]
    assert hb["name"] == "Haemoglobin" and hb["unit"] == "g/dL" and hb["loinc"] == "718-7"
    assert [(p["date"], p["value"], p["flag"]) for p in hb["points"]] == [
        ("2024-03-15", 11.2, "L"),
        ("2024-04-20", 12.9, "N"),
        ("2024-06-01", 13.8, None),
    ]
    assert (hb["low"], hb["high"]) == (12.0, 15.5)


def test_the_page_draws_a_chart_per_test(patient):
    page = patient["client"].get("/chart/health", headers=HTML)
    assert page.status_code == 200
    html = page.text
    figure = re.search(r'<figure class="lab-series" data-test="Haemoglobin">(.*?)</figure>', html, re.S).group(1)
    assert figure.count("<circle") == 3 and "<polyline" in figure and 'class="normal-band"' in figure
    assert (
        'aria-label="Haemoglobin: 11.2 g/dL on 2024-03-15, 12.9 g/dL on 2024-04-20, 13.8 g/dL on 2024-06-01"' in figure
    )
    for words in ("Cervical sprain", "Allergy to penicillin", "Tdap", "600 mg every 8 hours with food"):
        assert words in html


def test_a_specialist_without_a_share_sees_nothing(server, patient):
    other = server.account("healthdoc", "specialist")["client"]
    page = other.get("/patients/healthpat/chart/health", headers=HTML)
    assert page.status_code == 403 and "Cervical" not in page.text
    assert other.post("/api/v1/charts/health", json={"patient": "healthpat"}).status_code == 403
