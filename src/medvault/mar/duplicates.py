"""Duplicates in one chart: exact ones by a keyed hash, near ones (same text, a re-scan) suggested for review.

Exact. Every upload by the chart's owner also computes HMAC-SHA256 of the plaintext under the owner's
*duplicate key*, HKDF(the owner's search index key, "duplicates/v1"). The index key is 32 random bytes sealed
(HPKE) to the owner's own X25519 key (mar/index.py), so only the owner's session derives the duplicate key,
and equal files in two charts get unrelated hashes: nothing in the database links them, and nobody holding a
candidate file can confirm it is stored (a plain SHA-256 would allow both). Records uploaded into the chart
by someone else (a specialist's summary) carry no hash.

Near. Suggestions only, the user decides: records with text (text files, PDFs with a text layer or OCR, see
mar/recordtext.py) that are the same document by what differs between them (mar/likeness.py: the same dates,
no number that differs, what else differs is OCR noise or a fax header), so a fax or a re-scan of a report is
found and notes of different days from one template are not; and re-scans: different bytes with the same
title, facility and date of service, unless both have text and it says they are different documents.
Superseded versions are left out throughout: a newer version replaces them, it does not duplicate them.
"""

from __future__ import annotations

from collections import defaultdict

from medvault.auth.sessions import Session
from medvault.crypto.keyring import PrivateKeys
from medvault.crypto.passwords import derive_subkey
from medvault.mar import likeness, recordtext
from medvault.mar.index import IndexStore, normalise
from medvault.mar.pdftext import is_pdf
from medvault.vault import IntegrityError, RecordNotFound
from medvault.vault.records import Vault

MAX_RECORDS = 2000  # newest current records examined for near duplicates
MAX_TEXTS = 300  # newest text records compared pairwise
MAX_PDFS = 100  # of which PDFs: each is decrypted and parsed (~10 ms a page), at every look


def duplicate_key(store: IndexStore, user_id: str, keys: PrivateKeys) -> bytes:
    """The owner's duplicate key; only a session of the owner can derive it."""
    return derive_subkey(store.index_key(user_id, keys), "duplicates/v1")


def _brief(record_id: str, meta: dict) -> dict:
    return {"id": record_id, "title": meta.get("title"), "filename": meta.get("filename")}


def _told_apart(a: likeness.Fingerprint | None, b: likeness.Fingerprint | None) -> bool:
    """Whether both texts are there and say they are different documents (another day, other numbers)."""
    return a is not None and b is not None and bool(a.tokens and b.tokens) and likeness.compare(a, b) is None


def find(vault: Vault, session: Session) -> dict:
    """Exact duplicate groups and near-duplicate suggestions among the caller's own current records."""
    current = vault.current_owned(session.user_id)
    by_hash: dict[str, list[str]] = defaultdict(list)
    hash_of: dict[str, str | None] = {}
    for rid, dup_hash, _ in current:
        hash_of[rid] = dup_hash
        if dup_hash is not None:
            by_hash[dup_hash].append(rid)
    metas: dict[str, dict] = {}
    texts: dict[str, likeness.Fingerprint] = {}
    pdfs = 0
    for rid, _, _ in reversed(current[-MAX_RECORDS:]):  # newest first: they get the text and PDF slots
        try:
            record = vault.open(rid, session.user_id, session.keys)
            metas[rid] = record.metadata
            content_type = record.metadata.get("content_type")
            if len(texts) >= MAX_TEXTS or (is_pdf(content_type) and pdfs >= MAX_PDFS):
                continue
            pdfs += is_pdf(content_type)
            found = recordtext.read(vault, record)
            if found is not None:
                texts[rid] = likeness.Fingerprint.of(found.text)
        except (RecordNotFound, IntegrityError):
            continue  # deleted meanwhile, or failing its checks (opening it says why)
    metas, texts = dict(reversed(metas.items())), dict(reversed(texts.items()))  # a pair names its older one first

    def brief(rid: str) -> dict:
        return _brief(rid, metas.get(rid, {}))

    exact = [{"records": [brief(rid) for rid in ids]} for ids in by_hash.values() if len(ids) > 1]

    def same_bytes(a: str, b: str) -> bool:
        return hash_of.get(a) is not None and hash_of.get(a) == hash_of.get(b)

    near: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for a, b, similarity in likeness.pairs(texts):
        if same_bytes(a, b):
            continue  # reported as exact already
        seen.add((a, b))
        near.append({"records": [brief(a), brief(b)], "reason": "same text", "similarity": round(similarity, 3)})
    scans: dict[tuple, list[str]] = defaultdict(list)
    for rid, meta in metas.items():
        if meta.get("title") and meta.get("service_date"):
            title, facility = normalise(meta["title"]).strip(), normalise(meta.get("facility") or "").strip()
            scans[(title, facility, meta["service_date"])].append(rid)
    for ids in scans.values():
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                if same_bytes(a, b) or (a, b) in seen or _told_apart(texts.get(a), texts.get(b)):
                    continue
                near.append({"records": [brief(a), brief(b)], "reason": "re-scan", "similarity": None})
    return {"exact": exact, "near": near}
