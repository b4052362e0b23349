"""A chart's review in FHIR: its entries as `Basic` resources, and who wrote each entry, with their signature,
as `Provenance`, so the review survives export and import and its authorship can be checked elsewhere.

Occurrences are clinical resources already (mar/fhir.py); injuries, witness statements, marks, standards of
care, annotations and merge decisions have no FHIR resource of their own, so each is a `Basic` coded with its
kind, its fields in an extension as JSON, ids and all (the ids are the entries' and records' ids in the same
Bundle, remapped on import). Every exported entry, occurrences included, gets a `Provenance` naming its
author, when it was written, and a `Signature` whose data is the entry's signed manifest (canonical JSON and
the author's Ed25519 signature): anyone holding the author's public key can check it. An entry imported
here keeps that original as its `origin` (author, time, signature, and whether the signature verified
against this instance's key of that user), and an export gives the original back, so export → import →
export carries the same authorship and signatures.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from medvault.crypto.envelope import canonical_json, verify_manifest
from medvault.mar.fhir import BASE, USERNAME_SYSTEM, FhirError, Person, instant

REVIEW_KINDS = ("injury", "statement", "mark", "standard", "annotation", "merge")
ENTRY_KIND = f"{BASE}/entry-kind"
ENTRY_DATA = f"{BASE}/StructureDefinition/entry-data"
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SIGNATURE_TYPE = {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}


@dataclass(frozen=True)
class Authored:
    """An entry as the chart presents it, its signed form, and its author's account."""

    entry: dict
    signed: dict
    author: Person


def resources(items: list[Authored], author_ref: Callable[[Person], dict], patient_ref: dict) -> list[dict]:
    """Basic resources for the review entries and a Provenance for every entry, in chart order."""
    out = []
    for item in items:
        entry, origin = item.entry, item.entry.get("origin")
        if origin:
            author = Person(origin["author_id"], origin["author"], origin["role"])
            at, blob = origin["created_at"], origin["signed"]
        else:
            author, at = item.author, entry["created_at"]
            blob = base64.b64encode(canonical_json(item.signed)).decode()
        who = author_ref(author)
        if entry["kind"] in REVIEW_KINDS:
            out.append(
                {
                    "resourceType": "Basic",
                    "id": entry["id"],
                    "code": {"coding": [{"system": ENTRY_KIND, "code": entry["kind"]}], "text": entry["kind"]},
                    "subject": patient_ref,
                    "created": instant(at)[:10],
                    "author": who,
                    "extension": [{"url": ENTRY_DATA, "valueString": json.dumps(entry["data"], sort_keys=True)}],
                }
            )
        signature = {"type": [SIGNATURE_TYPE], "when": instant(at), "who": who, "sigFormat": "application/json"}
        out.append(
            {
                "resourceType": "Provenance",
                "id": _provenance_id(entry["id"]),
                "target": [{"reference": f"urn:uuid:{entry['id']}"}],
                "recorded": instant(at),
                "agent": [{"who": who}],
                "signature": [{**signature, "data": blob}],
            }
        )
    return out


def _provenance_id(entry_id: str) -> str:
    """A stable id per entry (one Provenance each), distinct from the entry's own."""
    return str(uuid.uuid5(uuid.UUID(entry_id), "provenance"))


@dataclass(frozen=True)
class ImportedReview:
    """Review entries read back (old id, kind, fields) and each entry's original authorship by old id."""

    entries: list[tuple[str, str, dict]]
    origins: dict[str, dict]


def target_id(reference: str) -> str:
    return reference.removeprefix("urn:uuid:").rsplit("/", 1)[-1]


def _author(who: dict, resolve: Callable[[dict], dict | None]) -> tuple[str, str] | None:
    """(username, role) of a MedVault account the reference names, or None."""
    target = resolve(who) or {}
    for ident in target.get("identifier") or []:
        if ident.get("system") == USERNAME_SYSTEM and ident.get("value"):
            return ident["value"], "specialist" if target.get("resourceType") == "Practitioner" else "patient"
    return None


def read(resources_: list[tuple[int, dict]], resolve: Callable[[dict], dict | None]) -> ImportedReview:
    """The review entries and authorship of a Bundle (positions kept for messages)."""
    entries = []
    for n, res in resources_:
        if res.get("resourceType") != "Basic":
            continue
        kind = next(
            (c.get("code") for c in (res.get("code") or {}).get("coding") or [] if c.get("system") == ENTRY_KIND), None
        )
        if kind is None:
            continue
        if kind not in REVIEW_KINDS:
            raise FhirError(f"entry[{n}] Basic: unknown kind of chart entry {kind!r}")
        raw = next((e.get("valueString") for e in res.get("extension") or [] if e.get("url") == ENTRY_DATA), None)
        try:
            data = json.loads(raw or "")
        except ValueError:
            raise FhirError(f"entry[{n}] Basic: its entry data is not JSON") from None
        if not isinstance(data, dict) or not res.get("id"):
            raise FhirError(f"entry[{n}] Basic: needs an id and entry data as a JSON object")
        entries.append((res["id"], kind, data))
    origins = {}
    for n, res in resources_:
        if res.get("resourceType") != "Provenance":
            continue
        signature = next(iter(res.get("signature") or []), {})
        author = _author(signature.get("who") or {}, resolve)
        if author is None or not signature.get("data"):
            continue
        try:
            signed = json.loads(base64.b64decode(signature["data"], validate=True))
            manifest = signed["manifest"]
        except (ValueError, TypeError, KeyError):
            raise FhirError(f"entry[{n}] Provenance: its signature data is not a signed entry") from None
        for target in res.get("target") or []:
            old = target_id(target.get("reference") or "")
            origins[old] = {
                "author": author[0],
                "author_id": str(manifest.get("author_id", "")),
                "role": author[1],
                "created_at": manifest.get("created_at"),
                "signed": signature["data"],
                "_signed": signed,
            }
    return ImportedReview(entries, origins)


def _links_aside(value: object) -> object:
    """`value` with every id replaced by one mark: ids change at each import, what the author wrote does not."""
    if isinstance(value, str):
        return "#" if _ID.fullmatch(value) else value
    if isinstance(value, list):
        return [_links_aside(v) for v in value]
    if isinstance(value, dict):
        return {k: _links_aside(v) for k, v in value.items()}
    return value


def verdict(origin: dict, kind: str, data: dict, public_key: bytes | None) -> str:
    """Whether the original signature holds for what is imported: `verified`, `invalid`, or `unverifiable`
    (no account of that name here to hold the key). Ids are compared aside (each import gives new ones, so
    what is checked is the content and the shape of the links), citations too: their checks are redone."""
    signed = origin["_signed"]
    manifest = signed.get("manifest") or {}

    def plain(d: dict) -> object:
        return _links_aside({k: v for k, v in d.items() if k != "citations"})

    if manifest.get("kind") != kind or plain(manifest.get("data") or {}) != plain(data):
        return "invalid"
    if public_key is None:
        return "unverifiable"
    return "verified" if verify_manifest(signed, public_key) else "invalid"


def remap(value: object, ids: dict[str, str]) -> object:
    """`value` with every old id (of a record or entry of the Bundle) replaced by the new one."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [remap(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: remap(v, ids) for k, v in value.items()}
    return value
