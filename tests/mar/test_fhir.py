"""FHIR R4 export and import: mapping functions, the chart and summary Bundles over the API, the round trip,
and malformed or oversized input refused with nothing half-written. Every Bundle is validated with the
`fhir.resources` R4B models."""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import threading
import time
import uuid

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from medvault.mar.entries import validate
from medvault.mar.fhir import (
    CONFIDENTIALITY_SYSTEM,
    CUSTOM_FIELD,
    LOINC,
    OCCURRENCE_KINDS,
    SOURCE,
    USERNAME_SYSTEM,
    ExportedRecord,
    FhirError,
    Person,
    chart_bundle,
    summary_bundle,
)
from medvault.mar.fhirimport import placeholder, read_chart
from medvault.mar.fhirreview import remap
from tests.support import Server, upload

LIMIT = 1024 * 1024  # this module's server refuses exports over 1 MiB of files

KNEE = {
    "title": "MRI of the knee",
    "description": "Left knee, <b>no</b> tear & no effusion",
    "facility": "St. Mary's Hospital",
    "provider": ["Dr. J. Smith", "Dr. Ana Lópes", "Dr. J. Smith"],
    "type": "18748-4",
    "category": "imaging",
    "service_date": "2024-05",
    "document_date": "2024-05-12",
    "tags": ["knee", " two  spaces "],
    "custom": {"Blood pressure": "120/80", "visits": 3, "score": 0.1, "insured": True, "next check": "2025-01"},
    "confidentiality": "restricted",
}
PSYCH = {
    "title": "Psychotherapy note",
    "type": "Therapy note",
    "service_date": "2023",
    "provider": ["Dr. J. Smith"],
    "facility": "Clinic Z",
    "confidentiality": "very-restricted",
}
FILES = [
    (b"%PDF-1.4 knee " + os.urandom(2000), "knee.pdf", KNEE, "application/pdf"),
    ("Séance 3: talked about sleep.\n".encode(), "notes.txt", PSYCH, "text/plain"),
    (bytes(range(256)) * 4, "raw.bin", {}, "application/octet-stream"),
]

# A quote for each of FILES: the PDF without a text layer and the binary cannot be checked, the one-page note can.
QUOTED = [{"pages": "1-2", "quote": "no tear"}, {"pages": "1", "quote": "talked about sleep"}, {"quote": "no tear"}]


def documents(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference"]


def resolve(bundle: dict, reference: dict) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"])


def metadata_of(bundle: dict) -> list[dict]:
    """What an import would make of the Bundle: metadata plus file name, type and bytes, per record."""
    return [
        {**r.metadata, "filename": r.filename, "content_type": r.content_type, "content": r.content}
        for r in read_chart(bundle).records
    ]


# Pure mapping.


def _exported(metadata: dict, content: bytes, filename: str, content_type: str, n: int) -> ExportedRecord:
    meta = {"confidentiality": "normal", **metadata, "filename": filename, "content_type": content_type}
    uploader = Person("4d9d0a52-0000-4000-8000-000000000001", "pat", "patient")
    return ExportedRecord(f"7e0f6c11-0000-4000-8000-00000000000{n}", meta, 1_715_000_000.5, uploader, content)


def test_chart_bundle_maps_every_field_and_validates():
    """A chart Bundle validates against R4B; LOINC types are codings, text types text, custom fields typed."""
    patient = Person("4d9d0a52-0000-4000-8000-000000000001", "pat", "patient")
    records = [_exported(meta, content, name, ctype, n) for n, (content, name, meta, ctype) in enumerate(FILES)]
    bundle = chart_bundle(patient, records, now=1_715_000_100)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Patient") == 1 and kinds.count("DocumentReference") == 3
    assert kinds.count("Practitioner") == 2 and kinds.count("Organization") == 2, "one per distinct name"
    knee, psych, raw = documents(bundle)
    assert knee["type"] == {"coding": [{"system": LOINC, "code": "18748-4"}]}
    assert psych["type"] == {"text": "Therapy note"}
    assert knee["context"]["period"] == {"start": "2024-05", "end": "2024-05"}
    assert knee["content"][0]["attachment"]["creation"] == "2024-05-12"
    assert base64.b64decode(knee["content"][0]["attachment"]["data"]) == FILES[0][0]
    assert [resolve(bundle, a)["name"][0]["text"] for a in knee["author"]] == KNEE["provider"]
    assert resolve(bundle, knee["custodian"])["name"] == "St. Mary's Hospital"
    labels = [
        (d["securityLabel"][0]["coding"][0]["system"], d["securityLabel"][0]["coding"][0]["code"])
        for d in (knee, psych, raw)
    ]
    assert labels == [(CONFIDENTIALITY_SYSTEM, "R"), (CONFIDENTIALITY_SYSTEM, "V"), (CONFIDENTIALITY_SYSTEM, "N")]
    custom = {e["url"][len(CUSTOM_FIELD) :]: e for e in knee["extension"]}
    assert custom["Blood%20pressure"] == {"url": CUSTOM_FIELD + "Blood%20pressure", "valueString": "120/80"}
    assert custom["visits"]["valueDecimal"] == 3 and custom["insured"]["valueBoolean"] is True
    assert custom["next%20check"]["valueDate"] == "2025-01"
    assert [t["display"] for t in knee["meta"]["tag"]] == KNEE["tags"]
    assert "author" not in raw and "custodian" not in raw and "context" not in raw


def test_mapping_back_loses_nothing():
    """read_chart gives back exactly the metadata, file name, type and bytes that went in."""
    patient = Person("4d9d0a52-0000-4000-8000-000000000001", "pat", "patient")
    records = [_exported(meta, content, name, ctype, n) for n, (content, name, meta, ctype) in enumerate(FILES)]
    bundle = json.loads(json.dumps(chart_bundle(patient, records, now=1_715_000_100)))
    expected = [
        {"confidentiality": "normal", **meta, "filename": name, "content_type": ctype, "content": content}
        for content, name, meta, ctype in FILES
    ]
    assert metadata_of(bundle) == expected


def test_every_occurrence_type_maps_to_a_valid_resource():
    """Encounter, Condition, Procedure, MedicationStatement, Observation, AllergyIntolerance and Immunization,
    each citing its source record."""
    patient = Person("4d9d0a52-0000-4000-8000-000000000001", "pat", "patient")
    record = _exported(KNEE, b"x", "knee.pdf", "application/pdf", 1)
    occurrences = [
        {
            "id": f"0c5a3e7d-0000-4000-8000-00000000001{n}",
            "type": kind,
            "date": "2024-05-02",
            "approximate": False,
            "facility": "St. Mary's Hospital",
            "providers": ["Dr. J. Smith"],
            "description": f"{kind} at the knee",
            "citations": [{"record": record.id, "pages": "2-3", "quote": "no tear"}, {"record": "not-here"}],
        }
        for n, kind in enumerate(OCCURRENCE_KINDS)
    ]
    bundle = chart_bundle(patient, [record], occurrences, now=1_715_000_100)
    Bundle.model_validate(bundle)
    found = [e["resource"] for e in bundle["entry"]][-len(OCCURRENCE_KINDS) :]
    assert [r["resourceType"] for r in found] == [
        "Encounter",
        "Condition",
        "Condition",
        "Procedure",
        "MedicationStatement",
        "Observation",
        "Observation",
        "AllergyIntolerance",
        "Immunization",
    ]
    for resource in found:
        (source,) = [e for e in resource["extension"] if e["url"] == SOURCE]  # the record outside is left out
        assert source["extension"][0]["valueReference"] == {"reference": f"urn:uuid:{record.id}"}


def test_occurrences_map_back_unchanged():
    """Every type, with or without a description, several providers, a facility, an exact date marked
    approximate, partial dates and page citations: read_chart gives back exactly the occurrences exported."""
    patient = Person("4d9d0a52-0000-4000-8000-000000000001", "pat", "patient")
    records = [_exported(KNEE, b"knee", "knee.pdf", "application/pdf", 1), _exported({}, b"raw", "r.bin", "x/y", 2)]
    people = ["Dr. J. Smith", "Ana Lópes, RN", "Dr. Who"]
    occurrences = []
    for n, kind in enumerate(OCCURRENCE_KINDS):
        full = {
            "type": kind,
            "date": "2024-05-02",
            "approximate": True,
            "facility": "St. Mary's Hospital",
            "providers": people[: n % 3 + 1],
            "description": f"{kind} at the knee",
            "citations": [{"record": records[1].id, "pages": "2-3", "quote": "no tear"}, {"record": records[0].id}],
        }
        bare = {"type": kind, "date": ["2023", "2023-07", "2023-07-09"][n % 3], "providers": [], "citations": []}
        occurrences += [validate("occurrence", full), validate("occurrence", bare)]
    bundle = json.loads(json.dumps(chart_bundle(patient, records, occurrences, now=1_715_000_100)))
    Bundle.model_validate(bundle)
    made = {placeholder(n): r.id for n, r in enumerate(records)}  # the records an import would have made
    back = [remap(occ, made) for occ in read_chart(bundle).occurrences]
    assert back == occurrences


def test_clinical_resources_from_elsewhere_become_occurrences():
    """Without MedVault's extensions, types, dates, names and values are read from the resources themselves, and
    their own typed elements (codes, the precise time, the value with its unit) are kept as `coded`; an undated
    one, or one citing something that is not a DocumentReference of the Bundle, is refused."""
    patient = {"resourceType": "Patient", "id": "p"}
    doctor = {
        "resourceType": "Practitioner",
        "id": "d",
        "name": [{"prefix": ["Dr."], "given": ["Ada"], "family": "Ng"}],
    }
    lab = {"resourceType": "Organization", "id": "o", "name": "City Lab"}
    condition = {
        "resourceType": "Condition",
        "id": "c",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1", "display": "Sprained ankle"}]},
        "subject": {"reference": "Patient/p"},
        "onsetDateTime": "2024-02-03T10:00:00Z",
        "asserter": {"reference": "Practitioner/d"},
    }
    observation = {
        "resourceType": "Observation",
        "id": "b",
        "status": "final",
        "code": {"text": "Haemoglobin"},
        "subject": {"reference": "Patient/p"},
        "effectivePeriod": {"start": "2024-02-04"},
        "valueQuantity": {"value": 13.2, "unit": "g/dL"},
        "performer": [{"reference": "Organization/o"}, {"reference": "Patient/p"}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (patient, doctor, lab, condition, observation)],
    }
    codes = {"resourceType": "Condition", "code": condition["code"], "onsetDateTime": "2024-02-03T10:00:00Z"}
    values = {"resourceType": "Observation", "code": {"text": "Haemoglobin"}}
    values |= {"effectivePeriod": {"start": "2024-02-04"}, "valueQuantity": {"value": 13.2, "unit": "g/dL"}}
    assert read_chart(copy.deepcopy(bundle)).occurrences == [
        {"type": "diagnosis", "date": "2024-02-03", "approximate": False, "providers": ["Dr. Ada Ng"]}
        | {"description": "Sprained ankle", "coded": codes, "citations": []},
        {"type": "test-result", "date": "2024-02-04", "approximate": False, "providers": [], "facility": "City Lab"}
        | {"description": "Haemoglobin: 13.2 g/dL", "coded": values, "citations": []},
    ]
    undated = copy.deepcopy(bundle)
    del undated["entry"][3]["resource"]["onsetDateTime"]
    with pytest.raises(FhirError, match=r"entry\[3\] Condition: no date"):
        read_chart(undated)
    citing = copy.deepcopy(bundle)
    source = {"url": SOURCE, "extension": [{"url": "record", "valueReference": {"reference": "Patient/p"}}]}
    citing["entry"][4]["resource"]["extension"] = [source]
    with pytest.raises(FhirError, match=r"entry\[4\] Observation: cites a record"):
        read_chart(citing)


def test_summary_document_bundle():
    """A summary is a document Bundle: Composition first, by the specialist, the Markdown escaped as XHTML."""
    patient = Person("4d9d0a52-0000-4000-8000-000000000001", "pat", "patient")
    doctor = Person("4d9d0a52-0000-4000-8000-000000000002", "drwho", "specialist", "orthopaedics")
    meta = {"title": "Review", "category": "summary", "type": "Summary report", "confidentiality": "normal"}
    meta |= {"filename": "summary.md", "content_type": "text/markdown"}
    text = "# Findings\n\nA < B & <script>alert(1)</script>\x01\n"
    record = ExportedRecord("7e0f6c11-0000-4000-8000-000000000009", meta, 1_715_000_000, doctor, text.encode())
    bundle = summary_bundle(patient, record, 1_715_000_100)
    Bundle.model_validate(bundle)
    composition = bundle["entry"][0]["resource"]
    assert bundle["type"] == "document" and composition["resourceType"] == "Composition"
    assert composition["status"] == "final" and composition["type"]["coding"][0]["system"] == LOINC
    author = resolve(bundle, composition["author"][0])
    assert author["identifier"] == [{"system": USERNAME_SYSTEM, "value": "drwho"}]
    div = composition["section"][0]["text"]["div"]
    assert div.startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    assert "&lt;script&gt;" in div and "A &lt; B &amp;" in div and "<script>" not in div and "\x01" not in div


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update(type="bogus"), "Bundle.type"),
        (lambda b: b.update(resourceType="Patient"), "expected a Bundle"),
        (lambda b: b["entry"][1]["resource"].pop("content"), "content"),
        (lambda b: b["entry"][1]["resource"].update(status="lost"), "status"),
        (lambda b: b["entry"][1]["resource"].update(description=""), "description"),
        (lambda b: b["entry"][1]["resource"].update(surprise=1), "surprise"),
        (lambda b: b["entry"].append({"resource": {"resourceType": "Nonsense"}}), "Malformed FHIR"),
        (lambda b: b["entry"][1]["resource"]["context"]["period"].update(start="2024-13"), "period"),
        (lambda b: b["entry"][1]["resource"]["content"][0]["attachment"].pop("data"), "inline data"),
        (lambda b: b["entry"][1]["resource"]["content"][0]["attachment"].update(data="!!"), "base64"),
        (lambda b: b["entry"][1]["resource"]["content"][0]["attachment"].update(size=1), "size"),
        (lambda b: b["entry"][1]["resource"]["content"][0]["attachment"].update(hash="AAAA"), "hash"),
        (lambda b: b.update(entry=b["entry"][:1]), "no DocumentReference"),
    ],
)
def test_malformed_fhir_is_refused_with_a_message(change, message):
    """Each kind of malformed Bundle raises FhirError naming the problem."""
    patient = Person("4d9d0a52-0000-4000-8000-000000000001", "pat", "patient")
    bundle = chart_bundle(patient, [_exported(KNEE, b"knee", "k.pdf", "application/pdf", 1)], now=0)
    bundle = copy.deepcopy(bundle)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] in ("Patient", "DocumentReference")]
    bundle["entry"][1]["resource"].pop("author")
    bundle["entry"][1]["resource"].pop("custodian")
    change(bundle)
    with pytest.raises(FhirError, match=message):
        list(read_chart(bundle).records)


# Over the API.


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("fhir") / "data", env={"MEDVAULT_MAX_EXPORT_BYTES": str(LIMIT)})
    srv.init()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def chart(server):
    pat, dr = server.account("fhirpat"), server.account("fhirdoc", role="specialist")
    ids = [upload(pat["client"], content, name, meta, ctype).json()["id"] for content, name, meta, ctype in FILES]
    share = pat["client"].post("/api/v1/shares", json={"specialist": "fhirdoc", "records": ids[:1]})
    assert share.status_code == 201, share.text
    return {"pat": pat["client"], "dr": dr["client"], "ids": ids}


def _blobs(server) -> set[str]:
    return {p.name for p in (server.data_dir / "blobs").rglob("*") if p.is_file()}


def _count(client) -> int:
    return len(client.get("/api/v1/records", params={"limit": 200}).json()["items"])


def _every_occurrence(ids: list[str]) -> list[dict]:
    """One occurrence of each type, as varied as the chart allows: dates of each precision, an exact date marked
    approximate, no description, several providers, a facility, citations with and without pages."""
    people = ["Dr. J. Smith", "Ana Lópes, RN", "Dr. Who"]
    return [
        {
            "type": kind,
            "date": ["2024-05-02", "2024-05", "2023"][n % 3],
            **({"approximate": True} if n % 2 else {}),
            **({"facility": "St. Mary's Hospital"} if n % 3 else {}),
            "providers": people[: n % 4],
            **({"description": f"{kind}: knee"} if n != 3 else {}),
            "citations": [QUOTED[n % 3] | {"record": ids[n % 3]}, {"record": ids[(n + 1) % 3]}],
        }
        for n, kind in enumerate(OCCURRENCE_KINDS)
    ]


def _occurrences_shown(client) -> list[dict]:
    """The chart's occurrences as its owner reads them, each citation naming its record by title or file name."""
    names = {r["id"]: r.get("title", r["filename"]) for r in client.get("/api/v1/records").json()["items"]}
    items = client.post("/api/v1/charts/entries/list", json={"kinds": ["occurrence"]}).json()["items"]
    assert all(e["signature_valid"] for e in items)
    return [
        {**e["data"], "citations": [{**c, "record": names[c["record"]]} for c in e["data"]["citations"]]} for e in items
    ]


def test_export_import_export_round_trip(server, chart):
    """Export, import into a fresh chart, export again: metadata, files, types and the chart's occurrences (with
    their citations, now of the new records) are all the same."""
    for occurrence in _every_occurrence(chart["ids"]):
        made = chart["pat"].post("/api/v1/charts/entries", json={"kind": "occurrence", "data": occurrence})
        assert made.status_code == 201, made.text
    first = chart["pat"].get("/api/v1/export/fhir")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/fhir+json")
    assert first.headers["cache-control"] == "no-store"
    bundle = first.json()
    Bundle.model_validate(bundle)
    assert {d["id"] for d in documents(bundle)} == set(chart["ids"])
    assert bundle["entry"][0]["resource"]["identifier"][0]["value"] == "fhirpat"
    other = server.account("fhirpat2")["client"]
    imported = other.post("/api/v1/import/fhir", json=bundle)
    assert imported.status_code == 201, imported.text
    assert imported.json()["count"] == 3 and len(imported.json()["entries"]) == len(OCCURRENCE_KINDS)
    again = other.get("/api/v1/export/fhir").json()
    Bundle.model_validate(again)
    assert metadata_of(again) == metadata_of(bundle)
    assert read_chart(again).occurrences == read_chart(bundle).occurrences
    assert _occurrences_shown(other) == _occurrences_shown(chart["pat"])
    mine = {r["title"] if "title" in r else r["filename"]: r for r in other.get("/api/v1/records").json()["items"]}
    theirs = {
        r["title"] if "title" in r else r["filename"]: r for r in chart["pat"].get("/api/v1/records").json()["items"]
    }
    drop = ("id", "uploaded_at")
    assert {k: {f: v for f, v in r.items() if f not in drop} | {"signed_by": "?"} for k, r in mine.items()} == {
        k: {f: v for f, v in r.items() if f not in drop} | {"signed_by": "?"} for k, r in theirs.items()
    }
    assert all(r["signed_by"] == "fhirpat2" and r["signature_valid"] for r in mine.values())
    for key, record in mine.items():
        body = other.get(f"/api/v1/records/{record['id']}/content").content
        assert body == chart["pat"].get(f"/api/v1/records/{theirs[key]['id']}/content").content
    found = other.post("/api/v1/records/search", json={"q": "knee"}).json()["items"]
    assert [i["title"] for i in found] == ["MRI of the knee"], "imported records are searchable"


def test_specialist_exports_only_what_was_shared(server, chart):
    """A specialist names the patient (header or ?patient=id) and gets only the records shared with them."""
    dr = chart["dr"]
    by_name = dr.get("/api/v1/export/fhir", headers={"X-MedVault-Patient": "fhirpat"})
    assert by_name.status_code == 200, by_name.text
    Bundle.model_validate(by_name.json())
    assert [d["id"] for d in documents(by_name.json())] == chart["ids"][:1]
    patient_id = next(s["with_id"] for s in dr.get("/api/v1/shares").json()["items"] if s["with"] == "fhirpat")
    by_id = dr.get("/api/v1/export/fhir", params={"patient": patient_id})
    assert [d["id"] for d in documents(by_id.json())] == chart["ids"][:1]
    assert dr.get("/api/v1/export/fhir").status_code == 400
    assert dr.get("/api/v1/export/fhir", params={"patient": "fhirpat"}).status_code == 400, "ids only in URLs"
    stranger = server.account("fhirstranger", role="specialist")["client"]
    assert stranger.get("/api/v1/export/fhir", headers={"X-MedVault-Patient": "fhirpat"}).status_code == 404
    assert chart["pat"].get("/api/v1/export/fhir", headers={"X-MedVault-Patient": "fhirpat2"}).status_code == 403
    trail = chart["pat"].get("/api/v1/audit").json()["items"]
    assert ("fhirdoc", "export", chart["ids"][0]) in {(e["who"], e["action"], e["record_id"]) for e in trail}


def test_summary_exports_as_a_composition(chart):
    """The patient exports a specialist's summary as a FHIR document; other records are not summaries."""
    markdown = "# Knee\n\nNo tear. <script>alert(1)</script>\n"
    sent = chart["dr"].post(
        "/api/v1/summaries", json={"patient": "fhirpat", "title": "Knee review", "markdown": markdown}
    )
    assert sent.status_code == 201, sent.text
    response = chart["pat"].get(f"/api/v1/export/fhir/summary/{sent.json()['id']}")
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle.model_validate(bundle)
    composition = bundle["entry"][0]["resource"]
    assert bundle["type"] == "document" and composition["resourceType"] == "Composition"
    assert composition["title"] == "Knee review" and composition["status"] == "final"
    author = resolve(bundle, composition["author"][0])
    assert author["resourceType"] == "Practitioner" and author["identifier"][0]["value"] == "fhirdoc"
    assert resolve(bundle, composition["subject"])["identifier"][0]["value"] == "fhirpat"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in composition["section"][0]["text"]["div"]
    assert chart["dr"].get(f"/api/v1/export/fhir/summary/{sent.json()['id']}").status_code == 200
    assert chart["pat"].get(f"/api/v1/export/fhir/summary/{chart['ids'][0]}").status_code == 400
    full = chart["pat"].get("/api/v1/export/fhir").json()
    Bundle.model_validate(full)
    summary = next(d for d in documents(full) if d["id"] == sent.json()["id"])
    assert resolve(full, summary["author"][0])["identifier"][0]["value"] == "fhirdoc"


def test_occurrences_export_as_clinical_resources(chart):
    """An occurrence in the chart workspace exports as an Encounter citing its source DocumentReference."""
    occurrence = {
        "type": "encounter",
        "date": "2024-05-02",
        "facility": "St. Mary's Hospital",
        "providers": ["Dr. J. Smith"],
        "description": "Knee review",
        "citations": [{"record": chart["ids"][0], "pages": "1"}],
    }
    made = chart["pat"].post("/api/v1/charts/entries", json={"kind": "occurrence", "data": occurrence})
    assert made.status_code == 201, made.text
    bundle = chart["pat"].get("/api/v1/export/fhir").json()
    Bundle.model_validate(bundle)
    (encounter,) = [e["resource"] for e in bundle["entry"] if e["resource"].get("type") == [{"text": "Knee review"}]]
    assert encounter["period"] == {"start": "2024-05-02", "end": "2024-05-02"}
    assert resolve(bundle, encounter["extension"][0]["extension"][0]["valueReference"])["id"] == chart["ids"][0]
    assert resolve(bundle, encounter["serviceProvider"])["name"] == "St. Mary's Hospital"


def test_bad_imports_leave_nothing(server, chart):
    """Malformed JSON or FHIR, a bad second file, a missing CSRF token or the wrong role: 4xx, no record kept."""
    client = server.account("fhirimporter")["client"]
    bundle = chart["pat"].get("/api/v1/export/fhir").json()
    blobs = _blobs(server)
    late_failure = copy.deepcopy(bundle)
    documents(late_failure)[-1]["content"][0]["attachment"]["data"] = "bm90IHRoZSBzYW1lIGZpbGU="
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Nope"}}]}',
            400,
            "Malformed FHIR",
        ),
        (json.dumps({**bundle, "type": "bogus"}).encode(), 400, "Bundle.type"),
        (json.dumps(late_failure).encode(), 400, "does not match"),
        (b'{"resourceType": "Bundle", "type": "collection", "total": NaN}', 400, "not valid JSON"),
    ]
    for body, status, message in cases:
        response = client.post("/api/v1/import/fhir", content=body, headers={"content-type": "application/fhir+json"})
        assert response.status_code == status and message in response.json()["detail"], response.text
    assert _count(client) == 0
    token = client.headers.pop("X-CSRF-Token")
    assert client.post("/api/v1/import/fhir", json=bundle).status_code == 403
    client.headers["X-CSRF-Token"] = token
    assert chart["dr"].post("/api/v1/import/fhir", json=bundle).status_code == 403
    too_big = client.post(
        "/api/v1/import/fhir", content=b" " * (LIMIT * 3), headers={"content-type": "application/json"}
    )
    assert too_big.status_code == 413
    assert _count(client) == 0 and _blobs(server) == blobs, "no record and no blob left behind"
    assert client.post("/api/v1/charts/entries/list", json={}).json()["items"] == [], "and no occurrence"


def test_export_over_the_limit_is_refused(server):
    """A chart whose files pass the configured export limit gets 413, before anything is read."""
    client = server.account("fhirbig")["client"]
    assert upload(client, os.urandom(LIMIT // 2 + 1), "a.bin").status_code == 201
    assert client.get("/api/v1/export/fhir").status_code == 200
    assert upload(client, os.urandom(LIMIT // 2 + 1), "b.bin").status_code == 201
    refused = client.get("/api/v1/export/fhir")
    assert refused.status_code == 413 and "limit" in refused.json()["detail"]


def test_kill_9_mid_import_leaves_all_or_nothing(tmp_path):
    """A server killed with SIGKILL half-way through a large import shows, once restarted, either none of it or
    all of it (records and occurrences), and keeps no blob that no record names."""
    # No other node shares this store, so the start-up sweep need not wait for leftovers to age.
    srv = Server(tmp_path / "data", env={"MEDVAULT_SWEEP_GRACE_MINUTES": "0"})
    srv.init()
    srv.start()
    try:
        user = srv.account("crash")
        patient = Person(str(uuid.uuid4()), "crash", "patient")
        count = 150
        records = [
            ExportedRecord(
                str(uuid.uuid4()),
                {"title": f"Scan {n}", "confidentiality": "normal", "filename": f"s{n}.bin", "content_type": "x/y"},
                1_715_000_000 + n,
                patient,
                os.urandom(256 * 1024),
            )
            for n in range(count)
        ]
        occurrences = [
            {"type": "test-result", "date": "2024-01-02", "citations": [{"record": r.id}]} for r in records[::3]
        ]
        body = json.dumps(chart_bundle(patient, records, occurrences, now=1_715_000_100)).encode()
        client, answer = user["client"], {}

        def post() -> None:
            try:
                answer["response"] = client.post(
                    "/api/v1/import/fhir", content=body, headers={"content-type": "application/fhir+json"}
                )
            except httpx.HTTPError as exc:  # the server dies under it
                answer["error"] = exc

        def stored() -> list:
            return [p for p in (srv.data_dir / "blobs").rglob("*") if p.is_file() and p.parent.name != "tmp"]

        sender = threading.Thread(target=post)
        sender.start()
        deadline = time.monotonic() + 120
        while len(stored()) < count // 2 and sender.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        at_kill = len(stored())
        srv.stop(signal.SIGKILL)
        sender.join(60)
        assert 0 < at_kill < count and "response" not in answer, "the kill came in the middle of the import"
        srv.start()
        with srv.client() as again:
            login = again.post("/api/v1/login", json={"username": "crash", "password": user["password"]})
            again.headers["X-CSRF-Token"] = login.json()["csrf_token"]
            found = again.get("/api/v1/records", params={"limit": 200}).json()["items"]
            entries = again.post("/api/v1/charts/entries/list", json={}).json()["items"]
        assert (len(found), len(entries)) in ((0, 0), (count, len(occurrences)))
        assert len(stored()) == len(found), "the start-up sweep removed every blob no record names"
        assert list((srv.data_dir / "blobs" / "tmp").iterdir()) == []
    finally:
        srv.stop()
