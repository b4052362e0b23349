"""The review travels with the FHIR export: injuries, witness statements, marks, standards of care, annotations
and merges written by the patient and by a specialist come back after export → import → export with the same
fields, links, authors and signatures, the signatures still verifying; a changed entry is told apart."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re

import pytest
from fhir.resources.R4B.bundle import Bundle

from medvault.mar.fhirreview import ENTRY_DATA, REVIEW_KINDS
from tests.mar.test_fhir_typed import schema_errors
from tests.support import add_entry, upload

REPORT = b"Police report 2024-03-15.\nWitness Ann Lee: the red car ran the light at 9 pm.\n"
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def exported(server):
    """A chart reviewed by its patient and a specialist, exported by the patient."""
    pat, dr = server.account("revpat")["client"], server.account("revdoc", role="specialist")["client"]
    report = upload(pat, REPORT, "police.txt", {"title": "Police report", "service_date": "2024-03-15"}).json()["id"]
    shared = pat.post("/api/v1/shares", json={"specialist": "revdoc", "chart": True, "access": "annotate"})
    assert shared.status_code == 201, shared.text
    cited = [{"record": report, "pages": "1", "quote": "the red car ran the light"}]
    occ = add_entry(
        pat,
        "occurrence",
        {"type": "injury", "date": "2024-03-15", "providers": ["Robert Chen MD"], "citations": cited},
    )
    add_entry(dr, "injury", {"date": "2024-03-15", "body_site": "left knee", "occurrences": [occ]}, "revpat")
    s1 = add_entry(dr, "statement", {"witness": "Ann Lee", "date": "2024-03-15", "record": report}, "revpat")
    s2 = add_entry(dr, "statement", {"witness": "Bo Park", "date": "2024-03-16", "text": "The car was blue."}, "revpat")
    add_entry(dr, "mark", {"statements": [s1, s2], "verdict": "contradiction", "note": "colour"}, "revpat")
    standard = {"record": report, "standard": {"source": "NICE NG41"}, "status": "met", "note": "seen at once"}
    add_entry(dr, "standard", standard, "revpat")
    add_entry(pat, "annotation", {"occurrence": occ, "text": "It still hurts"})
    add_entry(pat, "merge", {"names": ["Dr. R. Chen", "Robert Chen MD"], "decision": "same"})
    answer = pat.get("/api/v1/export/fhir")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _review(bundle: dict) -> list[tuple]:
    """The review of a Bundle with ids named by what they stand for (a record by its title, an entry by its
    author's signed manifest), so two Bundles of the same review compare equal whatever ids an import gave."""
    signature = {
        p["target"][0]["reference"].removeprefix("urn:uuid:"): p["signature"][0]["data"]
        for p in (e["resource"] for e in bundle["entry"])
        if p["resourceType"] == "Provenance"
    }
    names = {k: "entry:" + hashlib.sha256(v.encode()).hexdigest()[:16] for k, v in signature.items()}
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "DocumentReference":
            names[e["resource"]["id"]] = "record:" + e["resource"]["content"][0]["attachment"]["title"]

    def named(text: str) -> str:
        return ID.sub(lambda m: names.get(m.group(), "?"), text)

    out = []
    for res in (e["resource"] for e in bundle["entry"]):
        if res["resourceType"] == "Basic":
            data = next(x["valueString"] for x in res["extension"] if x["url"] == ENTRY_DATA)
            out.append((res["code"]["coding"][0]["code"], named(data), res["created"], signature[res["id"]]))
    return sorted(out)


def _entries(client) -> list[dict]:
    return client.post("/api/v1/charts/entries/list", json={}).json()["items"]


def test_export_import_export_keeps_the_review(server, exported):
    Bundle.model_validate(exported)
    assert schema_errors(exported) == []
    first = _review(exported)
    assert sorted(kind for kind, *_ in first) == sorted([*REVIEW_KINDS, "statement"])  # two statements
    assert all("?" not in data for _, data, _, _ in first), "every link names a record or entry of the Bundle"
    other = server.account("revpat2")["client"]
    imported = other.post("/api/v1/import/fhir", json=exported)
    assert imported.status_code == 201, imported.text
    entries = _entries(other)
    assert len(entries) == len(first) + 1  # and the occurrence
    origins = {(e["kind"], e["origin"]["author"], e["origin"]["role"], e["origin"]["signature"]) for e in entries}
    assert {author for _, author, _, _ in origins} == {"revpat", "revdoc"}
    assert {verdict for *_, verdict in origins} == {"verified"}
    assert ("mark", "revdoc", "specialist", "verified") in origins
    assert all(e["signature_valid"] for e in entries), "sealed and signed again by the importer"
    again = other.get("/api/v1/export/fhir").json()
    Bundle.model_validate(again)
    assert schema_errors(again) == []
    assert any(e["resource"]["resourceType"] == "RelatedPerson" for e in again["entry"]), "revpat, not revpat2"
    assert _review(again) == first, "same fields, links, authors, times and signatures"
    onward = server.account("revpat3")["client"]
    assert onward.post("/api/v1/import/fhir", json=again).status_code == 201
    hop = {(e["kind"], e["origin"]["signature"]) for e in _entries(onward)}
    assert {v for _, v in hop} == {"verified"}, hop
    page = other.get("/chart/injuries")
    assert page.status_code == 200 and "written by revdoc" in page.text and "their signature verified" in page.text


def test_a_changed_entry_is_marked_invalid(server, exported):
    bundle = copy.deepcopy(exported)
    mark = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Basic" and e["resource"]["code"]["coding"][0]["code"] == "mark"
    )
    data = json.loads(mark["extension"][0]["valueString"])
    mark["extension"][0]["valueString"] = json.dumps({**data, "verdict": "agreement"})
    client = server.account("revpat4")["client"]
    assert client.post("/api/v1/import/fhir", json=bundle).status_code == 201
    verdicts = {e["kind"]: e["origin"]["signature"] for e in _entries(client)}
    assert verdicts["mark"] == "invalid" and verdicts["injury"] == "verified"


def test_an_author_unknown_here_is_unverifiable(server, exported):
    """A signature cannot be checked without its author's key: no account of that name on this instance."""
    bundle = copy.deepcopy(exported)
    for e in bundle["entry"]:
        for ident in e["resource"].get("identifier") or []:
            if ident.get("value") == "revdoc":
                ident["value"] = "someone-elsewhere"
    client = server.account("revpat5")["client"]
    assert client.post("/api/v1/import/fhir", json=bundle).status_code == 201
    verdicts = {(e["kind"], e["origin"]["signature"]) for e in _entries(client)}
    assert ("mark", "unverifiable") in verdicts and ("annotation", "verified") in verdicts


def test_a_signature_that_is_not_a_signed_entry_is_refused(server, exported):
    bundle = copy.deepcopy(exported)
    provenance = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance")
    provenance["signature"][0]["data"] = base64.b64encode(b"not json").decode()
    client = server.account("revpat6")["client"]
    refused = client.post("/api/v1/import/fhir", json=bundle)
    assert refused.status_code == 400 and "Provenance" in refused.json()["detail"]
    assert _entries(client) == [] and client.get("/api/v1/records").json()["items"] == []
