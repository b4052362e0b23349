"""Duplicates in one chart: exact ones by a keyed hash, near ones (same text, a re-scan) suggested for review.

Exact. Every upload by the chart's owner also computes HMAC-SHA256 of the plaintext under the owner's
*duplicate key*, HKDF(the owner's search index key, "duplicates/v1"). The index key is 32 random bytes sealed
(HPKE) to the owner's own X25519 key (mar/index.py), so only the owner's session derives the duplicate key,
and equal files in two charts get unrelated hashes: nothing in the database links them, and nobody holding a
candidate file can confirm it is stored (a plain SHA-256 would allow both). Records uploaded into the chart
by someone else (a specialist's summary) carry no hash.

Near. Suggestions only, the user decides: records with text (text files, and PDFs with a text layer, see
mar/recordtext.py) whose normalised text (case folded, whitespace collapsed, at most 256 KiB) is at least
90 % alike by `difflib.SequenceMatcher`, so a PDF scanned or exported twice is found by what it says; and
re-scans: different bytes with the same title, facility and date of service. Superseded versions are left
out throughout: a newer version replaces them, it does not duplicate them.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict

from medvault.auth.sessions import Session
from medvault.crypto.keyring import PrivateKeys
from medvault.crypto.passwords import derive_subkey
from medvault.mar import recordtext
from medvault.mar.index import IndexStore, normalise
from medvault.mar.pdftext import is_pdf
from medvault.vault import IntegrityError, RecordNotFound
from medvault.vault.records import Vault

SIMILARITY = 0.9
MAX_RECORDS = 2000  # newest current records examined for near duplicates
MAX_TEXTS = 300  # newest text records compared pairwise
MAX_PDFS = 100  # of which PDFs: each is decrypted and parsed (~10 ms a page), at every look
_SPACE = re.compile(r"\s+")


def duplicate_key(store: IndexStore, user_id: str, keys: PrivateKeys) -> bytes:
    """The owner's duplicate key; only a session of the owner can derive it."""
    return derive_subkey(store.index_key(user_id, keys), "duplicates/v1")


def normalised_text(text: str) -> str:
    return _SPACE.sub(" ", normalise(text)).strip()


def _brief(record_id: str, meta: dict) -> dict:
    return {"id": record_id, "title": meta.get("title"), "filename": meta.get("filename")}


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
    texts: dict[str, str] = {}
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
                texts[rid] = normalised_text(found.text)
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
    text_ids = list(texts)
    for i, a in enumerate(text_ids):
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(texts[a])
        for b in text_ids[i + 1 :]:
            if same_bytes(a, b) or not texts[a] or not texts[b]:
                continue
            matcher.set_seq1(texts[b])
            if matcher.real_quick_ratio() < SIMILARITY or matcher.quick_ratio() < SIMILARITY:
                continue
            ratio = matcher.ratio()
            if ratio >= SIMILARITY:
                seen.add((a, b))
                near.append({"records": [brief(a), brief(b)], "reason": "same text", "similarity": round(ratio, 3)})
    scans: dict[tuple, list[str]] = defaultdict(list)
    for rid, meta in metas.items():
        if meta.get("title") and meta.get("service_date"):
            title, facility = normalise(meta["title"]).strip(), normalise(meta.get("facility") or "").strip()
            scans[(title, facility, meta["service_date"])].append(rid)
    for ids in scans.values():
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                if same_bytes(a, b) or (a, b) in seen:
                    continue
                near.append({"records": [brief(a), brief(b)], "reason": "re-scan", "similarity": None})
    return {"exact": exact, "near": near}
