"""FHIR R4 (R4B models) mapping of records: metadata ↔ resources, pure functions, no I/O.

A chart exports as a `collection` Bundle: the `Patient` (the account: id and username, nothing else), one
`Practitioner` per distinct provider name and per registered specialist who wrote a record, one `Organization`
per facility (its spellings, grouped by mar/facilities.py, as `alias`), and one `DocumentReference` per record
with the file inline as `content.attachment.data`. A summary exports as a `document` Bundle whose first entry
is a `Composition`. mar/fhirimport.py maps such a Bundle back; export → import → export keeps every metadata
field (empty text and empty lists excepted: FHIR has no empty strings, so they are left out) and every
occurrence.

Every entry's `fullUrl` is `urn:uuid:<id>` and every reference points at one, so a Bundle resolves on its
own. Mapping (metadata key → element):

| key | DocumentReference |
| --- | --- |
| title | content.attachment.title |
| filename | content.attachment.extension (`…/StructureDefinition/filename`) |
| content_type | content.attachment.contentType |
| document_date | content.attachment.creation (YYYY, YYYY-MM or YYYY-MM-DD) |
| service_date | context.period.start = end (its precision kept) |
| type | type: LOINC coding when it looks like a LOINC code (`\\d{1,5}-\\d`), text otherwise |
| category | category[0].text |
| description | description |
| provider | author → Practitioner.name.text, in order (not specialists: those carry a username identifier) |
| facility | custodian (display: this record's spelling) → Organization.name |
| tags | meta.tag (display) |
| confidentiality | securityLabel, v3 Confidentiality N / R / V |
| custom | extension `…/custom-field/<name, percent-encoded>`: valueString, valueDecimal, valueBoolean, valueDate |

Occurrences (`occurrence_resource`) map to Encounter, Condition, Procedure, MedicationStatement or Observation
with links to their source DocumentReferences (`…/StructureDefinition/source`: record, pages, quote). The
description is the resource's code text (an Observation note's `valueString`); a required code without one
carries MedVault's occurrence-type coding instead. What a resource type has no element for (the exact
occurrence type, the approximate flag, a Condition's or MedicationStatement's facility and further providers)
goes into the `…/StructureDefinition/occurrence` extension, so nothing is lost on the way back.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from medvault.mar import quotes, summarydoc
from medvault.mar.entries import OCCURRENCE_TYPES
from medvault.vault import VaultError
from medvault.vault.metadata import valid_date

BASE = "https://medvault.example/fhir"
USERNAME_SYSTEM = f"{BASE}/username"
TAG_SYSTEM = f"{BASE}/tag"
CUSTOM_FIELD = f"{BASE}/StructureDefinition/custom-field/"
FILENAME = f"{BASE}/StructureDefinition/filename"
SOURCE = f"{BASE}/StructureDefinition/source"
OCCURRENCE = f"{BASE}/StructureDefinition/occurrence"
OCCURRENCE_TYPE = f"{BASE}/occurrence-type"  # the coding of a required code when an occurrence has no description
LOINC = "http://loinc.org"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_LABELS = {"normal": ("N", "normal"), "restricted": ("R", "restricted"), "very-restricted": ("V", "very restricted")}
_LOINC_CODE = re.compile(r"^\d{1,5}-\d$")
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SUMMARY_TYPE = ("11488-4", "Consult note")


class FhirError(VaultError):
    """Malformed or unusable FHIR input; the message says what is wrong and where."""


@dataclass(frozen=True)
class Person:
    """An account as FHIR sees it: the patient, or a specialist who wrote a record."""

    id: str
    username: str
    role: str
    profession: str | None = None


@dataclass(frozen=True)
class ExportedRecord:
    id: str
    metadata: dict
    uploaded_at: float
    uploader: Person
    content: bytes


def instant(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _urn(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def _ref(resource_id: str) -> dict:
    return {"reference": _urn(resource_id)}


def _entry(resource: dict) -> dict:
    return {"fullUrl": _urn(resource["id"]), "resource": resource}


def _label(confidentiality: str) -> dict:
    code, display = _LABELS.get(confidentiality, _LABELS["normal"])
    return {"coding": [{"system": CONFIDENTIALITY_SYSTEM, "code": code, "display": display}]}


def _type(value: str) -> dict:
    if _LOINC_CODE.match(value):
        return {"coding": [{"system": LOINC, "code": value}]}
    return {"text": value}


def patient_resource(patient: Person) -> dict:
    return {
        "resourceType": "Patient",
        "id": patient.id,
        "identifier": [{"system": USERNAME_SYSTEM, "value": patient.username}],
    }


def specialist_resource(person: Person) -> dict:
    """A registered specialist: the account id, the username as identifier and as name, the profession."""
    resource = {
        "resourceType": "Practitioner",
        "id": person.id,
        "identifier": [{"system": USERNAME_SYSTEM, "value": person.username}],
        "name": [{"text": person.username}],
    }
    if person.profession:
        resource["qualification"] = [{"code": {"text": person.profession}}]
    return resource


def _custom_extension(name: str, value: object) -> dict | None:
    url = CUSTOM_FIELD + quote(name, safe="")
    if isinstance(value, bool):
        return {"url": url, "valueBoolean": value}
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return {"url": url, "valueString": str(value)}
        return {"url": url, "valueDecimal": value}
    if not value:
        return None
    return {"url": url, "valueDate" if valid_date(value) else "valueString": value}


class _Directory:
    """Practitioners and organisations met while mapping records, one resource per distinct name or account."""

    def __init__(self, patient: Person, people: dict[str, str] | None = None, places: dict[str, str] | None = None):
        self.patient = patient
        self.people = people or {}  # professionals.identities: the spellings of one person share a Practitioner
        self.places = places or {}  # facilities.identities: and of one facility an Organization
        self.providers: dict[str, dict] = {}
        self.specialists: dict[str, dict] = {}
        self.authors: dict[str, dict] = {}
        self.organizations: dict[str, dict] = {}

    def provider(self, name: str) -> dict:
        """A reference to the person's Practitioner, its display the spelling used here (kept by the import)."""
        person = self.people.get(" ".join(name.split()).casefold(), name)
        if person not in self.providers:
            rid = str(uuid.uuid4())
            self.providers[person] = {"resourceType": "Practitioner", "id": rid, "name": [{"text": person}]}
        practitioner = self.providers[person]
        if {"text": name} not in practitioner["name"]:
            practitioner["name"].append({"text": name})
        return {**_ref(practitioner["id"]), "display": name}

    def specialist(self, person: Person) -> str:
        self.specialists.setdefault(person.id, specialist_resource(person))
        return person.id

    def author(self, person: Person) -> str:
        """Who wrote an entry: a specialist, the patient, or another patient's account (an entry imported from
        a chart kept under another account, a RelatedPerson naming that account, so its signature stays
        checkable)."""
        if person.role == "specialist":
            return self.specialist(person)
        if person.id != self.patient.id:
            self.authors.setdefault(
                person.id,
                {
                    "resourceType": "RelatedPerson",
                    "id": person.id,
                    "patient": _ref(self.patient.id),
                    "identifier": [{"system": USERNAME_SYSTEM, "value": person.username}],
                    "name": [{"text": person.username}],
                },
            )
        return person.id

    def organization(self, name: str) -> dict:
        """A reference to the facility's Organization (its other spellings as `alias`), its display the spelling
        used here (kept by the import)."""
        place = self.places.get(" ".join(name.split()).casefold(), name)
        if place not in self.organizations:
            self.organizations[place] = {"resourceType": "Organization", "id": str(uuid.uuid4()), "name": place}
        organization = self.organizations[place]
        if name != place and name not in organization.setdefault("alias", []):
            organization["alias"].append(name)
        return {**_ref(organization["id"]), "display": name}

    def resources(self) -> list[dict]:
        people = [*self.specialists.values(), *self.authors.values(), *self.providers.values()]
        return [*people, *self.organizations.values()]


def document_reference(record: ExportedRecord, directory: _Directory) -> dict:
    """One record as a DocumentReference with its file inline."""
    meta = record.metadata
    attachment: dict = {
        "contentType": meta.get("content_type") or "application/octet-stream",
        "data": base64.b64encode(record.content).decode("ascii"),
        "size": len(record.content),
        "hash": base64.b64encode(hashlib.sha1(record.content, usedforsecurity=False).digest()).decode("ascii"),
    }
    if meta.get("filename"):
        attachment["extension"] = [{"url": FILENAME, "valueString": meta["filename"]}]
    if meta.get("title"):
        attachment["title"] = meta["title"]
    if meta.get("document_date"):
        attachment["creation"] = meta["document_date"]
    doc: dict = {"resourceType": "DocumentReference", "id": record.id}
    tags = [{"system": TAG_SYSTEM, "display": t} for t in meta.get("tags", []) if t]
    if tags:
        doc["meta"] = {"tag": tags}
    custom = [_custom_extension(name, value) for name, value in (meta.get("custom") or {}).items()]
    if any(custom):
        doc["extension"] = [ext for ext in custom if ext]
    doc["status"] = "current"
    if meta.get("type"):
        doc["type"] = _type(meta["type"])
    if meta.get("category"):
        doc["category"] = [{"text": meta["category"]}]
    doc["subject"] = _ref(directory.patient.id)
    doc["date"] = instant(record.uploaded_at)
    authors = [directory.provider(name) for name in meta.get("provider", []) if name]
    if record.uploader.role == "specialist":
        authors.append(_ref(directory.specialist(record.uploader)))
    if authors:
        doc["author"] = authors
    if meta.get("facility"):
        doc["custodian"] = directory.organization(meta["facility"])
    if meta.get("description"):
        doc["description"] = meta["description"]
    doc["securityLabel"] = [_label(meta.get("confidentiality", "normal"))]
    doc["content"] = [{"attachment": attachment}]
    if meta.get("service_date"):
        doc["context"] = {"period": {"start": meta["service_date"], "end": meta["service_date"]}}
    return doc


def chart_bundle(
    patient: Person,
    records: Iterable[ExportedRecord],
    occurrences: Iterable[dict] = (),
    now: float = 0.0,
    people: dict[str, str] | None = None,
    more: Callable[[Callable[[Person], dict], dict], list[dict]] | None = None,
    places: dict[str, str] | None = None,
) -> dict:
    """The chart as a `collection` Bundle; `records` may be a generator (each file is encoded as it comes);
    `people` (professionals.identities) makes every spelling of one person one Practitioner, `places`
    (facilities.identities) of one facility one Organization; `more(author_ref, patient_ref)` adds resources
    that name their authors (the review, mar/fhirreview.py)."""
    directory = _Directory(patient, people, places)
    documents = [_entry(document_reference(record, directory)) for record in records]
    present = {doc["resource"]["id"] for doc in documents}
    found = [  # citations of records not in the Bundle (not readable by this reader) would not resolve
        _entry(
            occurrence_resource(
                {**occ, "citations": [c for c in occ.get("citations") or [] if c.get("record") in present]}, directory
            )
        )
        for occ in occurrences
    ]

    found += [_entry(r) for r in (more(lambda p: _ref(directory.author(p)), _ref(patient.id)) if more else [])]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now)},
        "type": "collection",
        "timestamp": instant(now),
        "entry": [_entry(patient_resource(patient)), *map(_entry, directory.resources()), *documents, *found],
    }


def narrative(text: str) -> str:
    """Plain text (here Markdown) as an XHTML narrative: escaped, characters XML forbids removed."""
    return f'<div xmlns="http://www.w3.org/1999/xhtml"><pre>{html.escape(_XML_UNSAFE.sub("", text))}</pre></div>'


def _summary_section(section: summarydoc.Section, title: str) -> dict:
    """One `##` section of a summary: its heading, a LOINC section code where the heading names one, the text."""
    code = summarydoc.section_code(section.title)
    return {
        "title": section.title or title,
        **({"code": {"coding": [{"system": LOINC, "code": code[0], "display": code[1]}]}} if code else {}),
        "text": {"status": "generated", "div": narrative(section.text.strip() or section.title or title)},
    }


def _cited_section(citations: list[dict], cited: dict[str, ExportedRecord]) -> dict:
    """The summary's numbered citations as the PDF prints them, with entries for the cited records in the Bundle."""
    lines = []
    for n, cite in enumerate(citations, 1):
        record = cited.get(cite["record"])
        name = (record.metadata.get("title") if record else None) or f"record {cite['record']}"
        lines.append(f"[{n}] " + quotes.described(cite, name, quoted=("page",)))
    section = {"title": "Cited records", "text": {"status": "generated", "div": narrative("\n".join(lines))}}
    if cited:
        section["entry"] = [_ref(rid) for rid in cited]
    return section


def summary_bundle(patient: Person, record: ExportedRecord, now: float, cited: Iterable[ExportedRecord] = ()) -> dict:
    """A specialist's summary as a FHIR document: Composition first (one section per `##` heading, then the
    cited records), then Patient, author, the file and the cited records the exporter can read (`cited`)."""
    meta = record.metadata
    author = record.uploader
    directory = _Directory(patient)
    author_ref = _ref(directory.specialist(author)) if author.role == "specialist" else _ref(patient.id)
    doc = document_reference(record, directory)
    cited_records = {rec.id: rec for rec in cited}
    cited_docs = [document_reference(rec, directory) for rec in cited_records.values()]  # before the directory is read
    title = meta.get("title") or "Summary"
    if (meta.get("content_type") or "").startswith("text/"):
        text = record.content.decode("utf-8", "replace")
    else:  # an uploaded PDF: the narrative points at the attached document
        text = f"{title}: see the attached document ({meta.get('filename') or 'summary'})."
    sections = [_summary_section(s, title) for s in summarydoc.sections(text) or [summarydoc.Section(None, title)]]
    sections[0]["entry"] = [_ref(record.id)]  # the file the sections were read from
    citations = summarydoc.citations_of(meta)
    if citations:
        sections.append(_cited_section(citations, cited_records))
    code, display = (meta["type"], None) if _LOINC_CODE.match(meta.get("type", "")) else SUMMARY_TYPE
    coding = {"system": LOINC, "code": code, **({"display": display} if display else {})}
    confidentiality = _LABELS.get(meta.get("confidentiality", "normal"), _LABELS["normal"])[0]
    composition = {
        "resourceType": "Composition",
        "id": str(uuid.uuid4()),
        "identifier": {"system": "urn:ietf:rfc:3986", "value": _urn(record.id)},
        "status": "final",
        "type": {"coding": [coding], "text": meta.get("type") or display},
        "subject": _ref(patient.id),
        "date": instant(record.uploaded_at),
        "author": [author_ref],
        "title": title,
        "confidentiality": confidentiality,
        "attester": [{"mode": "professional", "time": instant(record.uploaded_at), "party": author_ref}],
        "section": sections,
    }
    if author.role != "specialist":
        del composition["attester"]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "identifier": {"system": "urn:ietf:rfc:3986", "value": _urn(composition["id"])},
        "type": "document",
        "timestamp": instant(now),
        "entry": [
            _entry(composition),
            _entry(patient_resource(patient)),
            *map(_entry, directory.resources()),
            _entry(doc),
            *map(_entry, cited_docs),
        ],
    }


# Occurrences (the chart workspace's chronology): exported as clinical resources.

OCCURRENCE_KINDS = OCCURRENCE_TYPES


def occurrence_resource(occ: dict, directory: _Directory) -> dict:
    """One occurrence as a clinical resource.

    The shape is a chart occurrence entry's (mar/entries.py): `id`, `type` (one of OCCURRENCE_KINDS), `date`
    (YYYY[-MM[-DD]]), `approximate`, optional `facility`, `providers` (a list of names), `description`,
    `citations` (a list of `{"record", "pages"?, "quote"?}`). Citations become `…/StructureDefinition/source`
    extensions referencing the DocumentReference (the urn of its entry), so every resource links back the same
    way whatever its type; the rest of what the type has no element for goes into the occurrence extension.
    """
    kind = occ.get("type")
    if kind not in OCCURRENCE_KINDS:
        raise FhirError(f"occurrence type must be one of {', '.join(OCCURRENCE_KINDS)}")
    rid = occ.get("id") or str(uuid.uuid4())
    subject = _ref(directory.patient.id)
    date = occ.get("date") if valid_date(occ.get("date")) else None
    text = occ.get("description")
    concept = {"text": text} if text else None
    untitled = {"coding": [{"system": OCCURRENCE_TYPE, "code": kind, "display": kind.replace("-", " ")}]}
    people = [directory.provider(p) for p in occ.get("providers") or [] if p]
    facility = directory.organization(occ["facility"]) if occ.get("facility") else None
    unplaced = []  # providers and facility the resource type has no element for
    coded = occ.get("coded") or {}  # an imported resource's typed elements, given back as they came
    res: dict
    if kind == "encounter":
        res = {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"},
            **({"type": [concept]} if concept else {}),
            "subject": subject,
        }
        if date:
            res["period"] = {"start": date, "end": date}
        if people:
            res["participant"] = [{"individual": p} for p in people]
        if facility:
            res["serviceProvider"] = facility
    elif kind in ("diagnosis", "injury"):
        category = "encounter-diagnosis" if kind == "diagnosis" else "problem-list-item"
        system = "http://terminology.hl7.org/CodeSystem/condition-category"
        res = {
            "resourceType": "Condition",
            "category": [{"coding": [{"system": system, "code": category}], "text": kind}],
            **({"code": concept} if concept else {}),
            "subject": subject,
        }
        if date:
            res["onsetDateTime"] = date
        if people:
            res["asserter"] = people[0]
        unplaced = [("provider", p) for p in people[1:]] + ([("facility", facility)] if facility else [])
    elif kind == "procedure":
        res = {"resourceType": "Procedure", "status": "completed", **({"code": concept} if concept else {})}
        res["subject"] = subject
        if date:
            res["performedDateTime"] = date
        on_behalf = {"onBehalfOf": facility} if facility else {}
        if people:
            res["performer"] = [{"actor": p, **on_behalf} for p in people]
        elif facility:
            res["performer"] = [{"actor": facility}]
    elif kind == "medication" and coded.get("resourceType") == "MedicationRequest":
        res = {
            "resourceType": "MedicationRequest",
            "status": "completed",
            "intent": "order",
            "medicationCodeableConcept": concept or untitled,
            "subject": subject,
        }
        if date:
            res["authoredOn"] = date
        if people:
            res["requester"] = people[0]
        unplaced = [("provider", p) for p in people[1:]] + ([("facility", facility)] if facility else [])
    elif kind == "allergy":
        res = {"resourceType": "AllergyIntolerance", "code": concept or untitled, "patient": subject}
        if date:
            res["onsetDateTime"] = date
        if people:
            res["asserter"] = people[0]
        unplaced = [("provider", p) for p in people[1:]] + ([("facility", facility)] if facility else [])
    elif kind == "immunisation":
        res = {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": concept or untitled,
            "patient": subject,
            **({"occurrenceDateTime": date} if date else {"occurrenceString": "date unknown"}),
        }
        if people or facility:
            res["performer"] = [{"actor": p} for p in (*people, *([facility] if facility else []))]
    elif kind == "medication":
        res = {
            "resourceType": "MedicationStatement",
            "status": "completed",
            "medicationCodeableConcept": concept or untitled,
            "subject": subject,
        }
        if date:
            res["effectiveDateTime"] = date
        if people:
            res["informationSource"] = people[0]
        unplaced = [("provider", p) for p in people[1:]] + ([("facility", facility)] if facility else [])
    else:
        res = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "Note"} if kind == "note" else concept or untitled,
            "subject": subject,
        }
        if kind == "note" and text:
            res["valueString"] = text
        if date:
            res["effectiveDateTime"] = date
        if people or facility:
            res["performer"] = [*people, *([facility] if facility else [])]
    extensions = []
    for source in occ.get("citations") or []:
        parts = [{"url": "record", "valueReference": _ref(source["record"])}]
        if source.get("pages"):
            parts.append({"url": "pages", "valueString": str(source["pages"])})
        if source.get("quote"):
            parts.append({"url": "quote", "valueString": source["quote"]})
        extensions.append({"url": SOURCE, "extension": parts})
    details = [
        {"url": "type", "valueCode": kind},
        {"url": "approximate", "valueBoolean": bool(occ.get("approximate"))},
        *({"url": name, "valueReference": ref} for name, ref in unplaced),
    ]
    extensions.append({"url": OCCURRENCE, "extension": details})
    _merge_coded(res, coded, date, kind, text)
    extensions += coded.get("extension") or []
    return {"resourceType": res.pop("resourceType"), "id": rid, "extension": extensions, **res}


def concept_text(concept: dict | None, prefer_loinc: bool = False) -> str | None:
    """A concept's text, else its first display or code (MedVault's occurrence-type coding stands for none)."""
    if not concept:
        return None
    codings = concept.get("coding") or []
    if prefer_loinc:
        for coding in codings:
            if coding.get("system") == LOINC and coding.get("code"):
                return coding["code"]
    if concept.get("text"):
        return concept["text"]
    for coding in codings:
        if coding.get("system") != OCCURRENCE_TYPE and (coding.get("display") or coding.get("code")):
            return coding.get("display") or coding.get("code")
    return None


def description_of(resource: dict, kind: str) -> str | None:
    """What an occurrence's description is read as from a resource (import, and export telling an edit)."""
    rtype = resource["resourceType"]
    if rtype == "Encounter":
        return next((d for d in map(concept_text, resource.get("type") or []) if d), None)
    if rtype in ("MedicationStatement", "MedicationRequest"):
        return concept_text(resource.get("medicationCodeableConcept"))
    if rtype == "Immunization":
        return concept_text(resource.get("vaccineCode"))
    if rtype == "Observation" and kind == "note":
        return resource.get("valueString")
    text = concept_text(resource.get("code"))
    value = resource.get("valueString")
    if rtype == "Observation" and resource.get("valueQuantity"):
        quantity = resource["valueQuantity"]
        value = " ".join(str(quantity[k]) for k in ("value", "unit") if quantity.get(k) is not None)
    return f"{text}: {value}" if text and value else text or value


def mapped_resource(occ: dict) -> dict:
    """The resource an occurrence maps to without its `coded` elements (import keeps only what differs)."""
    return occurrence_resource({**occ, "coded": None}, _Directory(Person("", "", "patient")))


def _merge_coded(res: dict, coded: dict, date: str | None, kind: str, description: str | None) -> None:
    """Lay an imported resource's own elements over the mapped ones. What the chart holds wins where it was
    edited since: a concept keeps its codes but takes an edited description as text, and a more precise time
    is kept only while it falls on the occurrence's date."""
    if not coded:
        return
    edited = description != description_of(coded, kind)
    for key, theirs in coded.items():
        ours = res.get(key)
        if key in ("resourceType", "extension"):
            continue
        if not edited:
            res[key] = theirs
        elif isinstance(ours, dict) and isinstance(theirs, dict) and "text" in ours:
            res[key] = {**theirs, "text": ours["text"]}
        elif isinstance(ours, list) and isinstance(theirs, list) and ours and theirs and "text" in ours[0]:
            res[key] = [{**theirs[0], "text": ours[0]["text"]}, *theirs[1:]]
        elif isinstance(ours, str) and ours == date and isinstance(theirs, str):
            res[key] = theirs if theirs.startswith(date) else ours
        else:
            res[key] = theirs
