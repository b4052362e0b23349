"""Reading a FHIR R4 Bundle back (the inverse of mar/fhir.py's export), pure functions, no I/O.

`read_chart` validates a Bundle against the R4B models, then maps each `DocumentReference` to record
metadata the vault accepts, and each Encounter, Condition, Procedure, MedicationStatement and Observation to a
chart occurrence (mar/entries.py). Everything is mapped, and every occurrence checked as the chart checks a new
entry, before the caller writes anything; only the files are decoded later, one by one. Export → import →
export keeps every metadata field (empty text and empty lists excepted: FHIR has no empty strings) and every
occurrence field.

An occurrence's type, approximate flag, and the providers and facility its resource type has no element for
come from MedVault's `…/StructureDefinition/occurrence` extension; without it (a Bundle from elsewhere) they
are read from the resource: its type from the resource type (a Condition is a diagnosis unless its category
says injury), providers from Practitioner references, the facility from an Organization reference, the
description from the code's text (or its first display). An occurrence needs a date, and may cite only
DocumentReferences of the same Bundle: anything else is refused with the entry's position. Cited records
are named by placeholders (`placeholder(n)`: the n-th DocumentReference) until the records exist.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from medvault.mar import fhirreview
from medvault.mar.entries import ChartError, holds_reference, validate
from medvault.mar.fhir import (
    CONFIDENTIALITY_SYSTEM,
    CUSTOM_FIELD,
    FILENAME,
    OCCURRENCE,
    OCCURRENCE_KINDS,
    SOURCE,
    USERNAME_SYSTEM,
    FhirError,
    concept_text,
    description_of,
    mapped_resource,
)
from medvault.vault import VaultError
from medvault.vault.metadata import valid_date, validate_metadata

MAX_RECORDS = 10_000
MAX_OCCURRENCES = 10_000
BUNDLE_TYPES = ("document", "message", "transaction", "transaction-response", "batch", "batch-response")
BUNDLE_TYPES += ("history", "searchset", "collection")
DOC_STATUS = ("current", "superseded", "entered-in-error")
_FROM_LABEL = {"U": "normal", "L": "normal", "M": "normal", "N": "normal", "R": "restricted", "V": "very-restricted"}
CLINICAL = (
    "Encounter",
    "Condition",
    "Procedure",
    "MedicationStatement",
    "MedicationRequest",
    "Observation",
    "AllergyIntolerance",
    "Immunization",
)
# Resources that name people and places: read for the names (providers, facility) only.
DIRECTORY = ("Patient", "Practitioner", "PractitionerRole", "Organization", "Location")
# Elements of each clinical resource that become the occurrence's providers and facility (read by `_parties`).
_PARTY_ELEMENTS = {
    "Encounter": ("participant", "serviceProvider"),
    "Condition": ("asserter",),
    "Procedure": ("performer",),
    "MedicationStatement": ("informationSource",),
    "MedicationRequest": ("requester",),
    "Observation": ("performer",),
    "AllergyIntolerance": ("asserter",),
    "Immunization": ("performer",),
}
_NOT_CODED = {"resourceType", "id", "meta", "text", "extension", "subject", "patient", "contained"}
# Where each clinical resource keeps its date, first found wins (a dateTime is cut to the day).
_DATES = {
    "Encounter": (("period", "start"), ("period", "end")),
    "Condition": (("onsetDateTime",), ("onsetPeriod", "start"), ("recordedDate",)),
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "MedicationStatement": (("effectiveDateTime",), ("effectivePeriod", "start"), ("dateAsserted",)),
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "start"), ("effectiveInstant",), ("issued",)),
    "MedicationRequest": (("authoredOn",),),
    "AllergyIntolerance": (("onsetDateTime",), ("onsetPeriod", "start"), ("recordedDate",)),
    "Immunization": (("occurrenceDateTime",), ("recorded",)),
}


@dataclass(frozen=True)
class ImportedRecord:
    """One DocumentReference mapped back: metadata ready for `Upload.finish`, and the file itself."""

    metadata: dict
    filename: str | None
    content_type: str | None
    content: bytes


@dataclass(frozen=True)
class ImportedChart:
    """A Bundle mapped back: its records (a generator: each file is decoded as it is reached) and its
    occurrences, clean entry data citing records by placeholder (see `cite`)."""

    records: Iterator[ImportedRecord]
    occurrences: list[dict]
    not_kept: list[str]
    document_ids: list[str]  # the DocumentReferences' and clinical resources' own ids, in Bundle order: what
    occurrence_ids: list[str]  # the review's entries link to (fhirreview.remap)
    review: fhirreview.ImportedReview


def placeholder(n: int) -> str:
    """The id an occurrence cites the Bundle's n-th DocumentReference by, until that record exists."""
    return str(uuid.UUID(int=n))


def validation_message(exc: Exception) -> str:
    """A pydantic ValidationError as `path: problem` lines, without echoing the (possibly huge) input."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            found = errors(include_input=False, include_url=False)
        except TypeError:
            found = errors()
        lines = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in found[:5]]
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        return "; ".join(lines) + more
    return str(exc)[:300]


def validate_bundle(data: object) -> None:
    """Check a Bundle against the R4B models (structure, types, required elements); FhirError if not."""
    from fhir.resources.R4B.bundle import Bundle  # imported late: loading the models takes a moment

    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise FhirError("Malformed FHIR: expected a Bundle resource")
    try:
        Bundle.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise FhirError(f"Malformed FHIR: {validation_message(exc)}") from None
    except (LookupError, TypeError, AttributeError) as exc:  # e.g. an unknown resourceType
        raise FhirError(f"Malformed FHIR: unknown or invalid resource ({str(exc)[:100]})") from None
    if data.get("type") not in BUNDLE_TYPES:
        raise FhirError(f"Malformed FHIR: Bundle.type must be one of {', '.join(BUNDLE_TYPES)}")


def _index(entries: list[dict]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for entry in entries:
        resource = entry.get("resource") or {}
        if entry.get("fullUrl"):
            found[entry["fullUrl"]] = resource
        if resource.get("id"):
            found[f"{resource.get('resourceType')}/{resource['id']}"] = resource
    return found


def _resolve(ref: dict, index: dict[str, dict]) -> dict | None:
    target = ref.get("reference") or ""
    if target in index:
        return index[target]
    tail = "/".join(target.rstrip("/").split("/")[-2:])  # an absolute URL ending in Type/id
    return index.get(tail)


def _person_names(resource: dict) -> list[str]:
    found = []
    for name in resource.get("name") or []:
        parts = [*name.get("prefix", []), *name.get("given", []), name.get("family"), *name.get("suffix", [])]
        if joined := name.get("text") or " ".join(p for p in parts if p):
            found.append(joined)
    return found


def _person_name(resource: dict, ref: dict | None = None) -> str | None:
    """A person's name; through a reference, the spelling its `display` names when the person has it (one
    Practitioner per person, each record keeping the spelling it was written with), else the first."""
    names = _person_names(resource)
    display = (ref or {}).get("display")
    if display and display in names:
        return display
    return names[0] if names else None


def _is_account(resource: dict) -> bool:
    return any(i.get("system") == USERNAME_SYSTEM for i in resource.get("identifier") or [])


def _custom_value(ext: dict) -> object:
    for key in ("valueString", "valueDate", "valueBoolean", "valueDecimal", "valueInteger", "valueCode"):
        if key in ext:
            return ext[key]
    raise FhirError(f"custom field extension {ext['url']!r} has no value of a supported type")


def _partial_date(value: str | None, what: str, where: str) -> str | None:
    """A FHIR date/dateTime cut to the day (or kept at year / month precision)."""
    if not value:
        return None
    date = value[:10]
    if not valid_date(date):
        raise FhirError(f"{where}: {what} {value!r} is not a date")
    return date


def _content(attachment: dict, where: str) -> bytes:
    try:
        content = base64.b64decode(attachment["data"], validate=True)
    except ValueError:
        raise FhirError(f"{where}: attachment data is not valid base64") from None
    if "size" in attachment and attachment["size"] != len(content):
        raise FhirError(f"{where}: attachment size {attachment['size']} does not match its data ({len(content)})")
    if attachment.get("hash"):
        sha1 = base64.b64encode(hashlib.sha1(content, usedforsecurity=False).digest()).decode("ascii")
        if attachment["hash"] != sha1:
            raise FhirError(f"{where}: attachment hash does not match its data")
    return content


def _document(doc: dict, index: dict[str, dict], where: str, decode: bool = True) -> ImportedRecord:
    """Map one DocumentReference; with `decode=False` only check it (the file is left out: cheap)."""
    if doc.get("status") not in DOC_STATUS:
        raise FhirError(f"{where}: status must be one of {', '.join(DOC_STATUS)}")
    attachment = next((c["attachment"] for c in doc.get("content") or [] if c.get("attachment", {}).get("data")), None)
    if attachment is None:
        raise FhirError(f"{where}: no attachment with inline data (attachments by URL are not fetched)")
    content = _content(attachment, where) if decode else b""
    meta: dict = {}
    if attachment.get("title"):
        meta["title"] = attachment["title"]
    if doc.get("description"):
        meta["description"] = doc["description"]
    if (kind := concept_text(doc.get("type"), prefer_loinc=True)) is not None:
        meta["type"] = kind
    categories = [c for c in (concept_text(c) for c in doc.get("category") or []) if c]
    if categories:
        meta["category"] = categories[0]
    if (creation := _partial_date(attachment.get("creation"), "attachment.creation", where)) is not None:
        meta["document_date"] = creation
    period = (doc.get("context") or {}).get("period") or {}
    if (service := _partial_date(period.get("start") or period.get("end"), "context.period", where)) is not None:
        meta["service_date"] = service
    providers = []
    for author in doc.get("author") or []:
        target = _resolve(author, index)
        if target is None:
            if author.get("display") and (author.get("type") in (None, "Practitioner")):
                providers.append(author["display"])
            continue
        if target.get("resourceType") == "Practitioner" and not _is_account(target):
            name = _person_name(target, author) or author.get("display")
            if name:
                providers.append(name)
    if providers:
        meta["provider"] = providers
    custodian = doc.get("custodian")
    if custodian:
        target = _resolve(custodian, index)
        facility = custodian.get("display") or (target or {}).get("name")  # the spelling this record used
        if facility:
            meta["facility"] = facility
    tags = [t.get("display") or t.get("code") for t in (doc.get("meta") or {}).get("tag") or []]
    if any(tags):
        meta["tags"] = [t for t in tags if t]
    custom = {}
    for ext in doc.get("extension") or []:
        if ext.get("url", "").startswith(CUSTOM_FIELD):
            custom[unquote(ext["url"][len(CUSTOM_FIELD) :])] = _custom_value(ext)
    if custom:
        meta["custom"] = custom
    for label in doc.get("securityLabel") or []:
        for coding in label.get("coding") or []:
            if coding.get("system") == CONFIDENTIALITY_SYSTEM and coding.get("code") in _FROM_LABEL:
                meta["confidentiality"] = _FROM_LABEL[coding["code"]]
    try:
        meta = validate_metadata(meta)
    except VaultError as exc:
        raise FhirError(f"{where}: {exc}") from None
    filename = next((e.get("valueString") for e in attachment.get("extension") or [] if e.get("url") == FILENAME), None)
    return ImportedRecord(meta, filename or meta.get("title"), attachment.get("contentType"), content)


# Occurrences.


def _at(resource: dict, path: tuple[str, ...]) -> object:
    for key in path:
        resource = resource.get(key) if isinstance(resource, dict) else None
    return resource


def _details(resource: dict) -> dict[str, list]:
    """The values of MedVault's occurrence extension, by sub-extension name."""
    found: dict[str, list] = {}
    for ext in resource.get("extension") or []:
        if ext.get("url") == OCCURRENCE:
            for part in ext.get("extension") or []:
                value = next((v for k, v in part.items() if k.startswith("value")), None)
                found.setdefault(part.get("url"), []).append(value)
    return found


def _kind(resource: dict, details: dict[str, list]) -> str:
    given = (details.get("type") or [None])[0]
    if given in OCCURRENCE_KINDS:
        return given
    rtype = resource["resourceType"]
    if rtype == "Condition":
        words = {c.get("text") for c in resource.get("category") or []}
        return "injury" if "injury" in words else "diagnosis"
    kinds = {
        "Encounter": "encounter",
        "Procedure": "procedure",
        "MedicationStatement": "medication",
        "MedicationRequest": "medication",
        "AllergyIntolerance": "allergy",
        "Immunization": "immunisation",
    }
    return kinds.get(rtype, "test-result")


def _parties(resource: dict) -> list[dict]:
    """References to the people and the organisation a resource names, in its own elements' order."""
    rtype = resource["resourceType"]
    if rtype == "Encounter":
        refs = [p["individual"] for p in resource.get("participant") or [] if p.get("individual")]
        return [*refs, *([resource["serviceProvider"]] if resource.get("serviceProvider") else [])]
    if rtype in ("Procedure", "Immunization"):
        return [r for p in resource.get("performer") or [] for r in (p.get("actor"), p.get("onBehalfOf")) if r]
    if rtype == "Observation":
        return list(resource.get("performer") or [])
    (single,) = _PARTY_ELEMENTS[rtype]
    return [resource[single]] if resource.get(single) else []


def _names(refs: list[dict], index: dict[str, dict]) -> tuple[list[str], str | None]:
    """Provider names (Practitioners, or a bare display) and the first Organization's name."""
    providers: list[str] = []
    facility = None
    for ref in refs:
        target = _resolve(ref, index) or {}
        kind = target.get("resourceType") or ref.get("type")
        if kind == "Organization":
            facility = facility or ref.get("display") or target.get("name")
        elif kind in (None, "Practitioner") and (name := _person_name(target, ref) or ref.get("display")):
            providers.append(name)
    return providers, facility


def _citations(resource: dict, index: dict[str, dict], documents: dict[int, int], where: str) -> list[dict]:
    found = []
    for ext in resource.get("extension") or []:
        if ext.get("url") != SOURCE:
            continue
        parts = {p.get("url"): p for p in ext.get("extension") or []}
        target = _resolve((parts.get("record") or {}).get("valueReference") or {}, index)
        if target is None or id(target) not in documents:
            raise FhirError(f"{where}: cites a record that is not a DocumentReference of this Bundle")
        citation = {"record": placeholder(documents[id(target)])}
        for key in ("pages", "quote"):
            if (parts.get(key) or {}).get("valueString"):
                citation[key] = parts[key]["valueString"]
        found.append(citation)
    return found


def _coded(resource: dict, mapped: dict, where: str, not_kept: list[str]) -> dict | None:
    """The resource's own typed elements (codes, values and units, ranges, statuses, dosage, reactions…) where they
    differ from what the occurrence alone maps to (`mapped`), kept verbatim; who and where become names; other
    references cannot point anywhere in the chart and are listed. None when the occurrence says it all."""
    rtype = resource["resourceType"]
    coded = {"resourceType": rtype}
    for key, value in resource.items():
        if key in _NOT_CODED or key in _PARTY_ELEMENTS[rtype] or mapped.get(key) == value:
            continue
        if holds_reference(value):
            not_kept.append(f"{where}.{key}: a reference to another resource")
            continue
        coded[key] = value
    if resource.get("contained"):
        not_kept.append(f"{where}.contained: contained resources")
    foreign = [e for e in resource.get("extension") or [] if e.get("url") not in (OCCURRENCE, SOURCE)]
    if foreign and not holds_reference(foreign):
        coded["extension"] = foreign
    elif foreign:
        not_kept.append(f"{where}.extension: extensions holding references")
    return coded if len(coded) > 1 or rtype != mapped["resourceType"] else None


def _occurrence(
    resource: dict, index: dict[str, dict], documents: dict[int, int], where: str, not_kept: list[str]
) -> dict:
    """One clinical resource as a chart occurrence's clean data (checked as a new chart entry is)."""
    details = _details(resource)
    kind = _kind(resource, details)
    date = next((value for path in _DATES[resource["resourceType"]] if (value := _at(resource, path))), None)
    if not date:
        raise FhirError(f"{where}: no date (a chart occurrence needs one)")
    providers, facility = _names(_parties(resource) + details.get("provider", []) + details.get("facility", []), index)
    data = {
        "type": kind,
        "date": _partial_date(date, "date", where),
        "providers": providers,
        "citations": _citations(resource, index, documents, where),
    }
    if isinstance((details.get("approximate") or [None])[0], bool):
        data["approximate"] = details["approximate"][0]
    if facility:
        data["facility"] = facility
    if description := description_of(resource, kind):
        data["description"] = description
    try:
        if coded := _coded(resource, mapped_resource(validate("occurrence", data)), where, not_kept):
            data["coded"] = coded
        return validate("occurrence", data)
    except ChartError as exc:
        raise FhirError(f"{where}: {exc}") from None


def read_chart(data: object, max_records: int = MAX_RECORDS) -> ImportedChart:
    """Validate a Bundle and map it: its DocumentReferences as records, its clinical resources as occurrences.

    The whole Bundle is validated, every DocumentReference mapped once without decoding its file and every
    occurrence mapped and checked before this returns, so malformed structure, metadata or occurrences fail
    before anything is written. Bad base64, a size or hash mismatch, or the vault refusing a file show up only
    while iterating the records: a caller must not have committed anything by then.
    """
    validate_bundle(data)
    entries = data.get("entry") or []
    index = _index(entries)
    resources = [(n, e.get("resource") or {}) for n, e in enumerate(entries)]
    docs = [(n, r) for n, r in resources if r.get("resourceType") == "DocumentReference"]
    clinical = [(n, r) for n, r in resources if r.get("resourceType") in CLINICAL]
    review = fhirreview.read(resources, lambda ref: _resolve(ref, index))
    reviewed = {old for old, _, _ in review.entries}
    not_kept = [
        f"entry[{n}] {r.get('resourceType')}: a resource type MedVault does not keep"
        for n, r in resources
        if r.get("resourceType") not in (*CLINICAL, *DIRECTORY, "DocumentReference")
        and not (r.get("resourceType") == "Basic" and r.get("id") in reviewed)
        and not (r.get("resourceType") == "Provenance" and _provenance_kept(r, review.origins))
        and not (r.get("resourceType") == "RelatedPerson" and _is_account(r))  # an entry's author (fhirreview)
    ]
    not_kept += [
        f"entry[{n}] {r['resourceType']}.identifier: identifiers (the name is kept)"
        for n, r in resources
        if r.get("resourceType") in DIRECTORY and r.get("identifier") and not _is_account(r)
    ]
    if not docs and not clinical:
        raise FhirError("The Bundle holds no DocumentReference and no clinical resource to import")
    if len(docs) > max_records:
        raise FhirError(f"At most {max_records} DocumentReferences per import")
    if len(clinical) > MAX_OCCURRENCES:
        raise FhirError(f"At most {MAX_OCCURRENCES} clinical resources per import")
    for n, doc in docs:
        _document(doc, index, f"entry[{n}] DocumentReference", decode=False)
    documents = {id(doc): k for k, (_, doc) in enumerate(docs)}
    occurrences = [
        _occurrence(r, index, documents, f"entry[{n}] {r['resourceType']}", not_kept) for n, r in clinical
    ]
    records = (_document(doc, index, f"entry[{n}] DocumentReference") for n, doc in docs)
    document_ids = [str(doc.get("id") or "") for _, doc in docs]
    occurrence_ids = [str(r.get("id") or "") for _, r in clinical]
    return ImportedChart(records, occurrences, not_kept, document_ids, occurrence_ids, review)


def _provenance_kept(resource: dict, origins: dict[str, dict]) -> bool:
    targets = [fhirreview.target_id(t.get("reference") or "") for t in resource.get("target") or []]
    return bool(targets) and all(t in origins for t in targets)
