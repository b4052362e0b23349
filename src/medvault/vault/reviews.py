"""The owner's decisions about suggested duplicates: pairs kept both of or judged one document, never suggested again.

Duplicate suggestions (mar/duplicates.py) are recomputed on every request, so a "keep both" has to be kept
somewhere. The database holds only HMAC-SHA256 of the pair under the owner's duplicate key, which only a
session of the owner derives: a dump shows how many pairs someone reviewed, not which records looked alike
(the same reasoning as the keyed content hash). A decision about a record deleted since is simply never
matched again. "The newer version of" needs no memory: a superseded record is no longer suggested at all.

"Same document" (a fax of a report, a second scan) keeps both records but the chronology shows the document
once, citing the one kept. Every reader of the chart builds that chronology, and specialists cannot derive the
owner's duplicate key, so this decision also keeps the two ids sealed (AES-256-GCM) under HKDF(chart key,
"chart/same-documents/v1"), the owner and the pair's tag as associated data: what is sealed for one pair or
one chart cannot be moved to another. A dump tells how many pairs were judged one document, not which.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from itertools import combinations

import sqlalchemy.exc
from sqlalchemy import Engine, delete, insert, select

from medvault.crypto import CryptoError
from medvault.crypto.keyring import open_sealed, seal
from medvault.crypto.passwords import derive_subkey
from medvault.db.schema import duplicate_reviews


def pair_tag(key: bytes, a: str, b: str) -> str:
    """The pair's keyed hash; the order of the two ids does not matter."""
    first, second = sorted((a, b))
    return hmac.new(key, f"medvault/kept-both/v1:{first}:{second}".encode(), hashlib.sha256).hexdigest()


def _same_context(owner_id: str, pair: str) -> bytes:
    return f"medvault/same-document/v1:{owner_id}:{pair}".encode()


def _same_key(chart_key: bytes) -> bytes:
    return derive_subkey(chart_key, "chart/same-documents/v1")


class DuplicateReviews:
    def __init__(self, engine: Engine):
        self._engine = engine

    def keep_both(self, owner_id: str, key: bytes, a: str, b: str) -> None:
        """Remember that the owner keeps both records (deciding twice is no error)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(duplicate_reviews).values(
                        owner_id=owner_id, pair=pair_tag(key, a, b), decided_at=time.time()
                    )
                )
        except sqlalchemy.exc.IntegrityError:
            pass  # already decided, perhaps in another tab at the same moment

    def same_document(self, owner_id: str, key: bytes, chart_key: bytes, kept: str, duplicate: str) -> None:
        """Remember that two records are one document and the chronology cites `kept`; this replaces an
        earlier decision about the pair (deciding again, or the other way round, is no error)."""
        pair = pair_tag(key, kept, duplicate)
        body = json.dumps({"kept": kept, "duplicate": duplicate}).encode()
        sealed = seal(_same_key(chart_key), body, _same_context(owner_id, pair))
        row = {"owner_id": owner_id, "pair": pair, "decided_at": time.time(), "sealed": sealed}
        for attempt in range(2):
            try:
                with self._engine.begin() as conn:
                    where = (duplicate_reviews.c.owner_id == owner_id) & (duplicate_reviews.c.pair == pair)
                    conn.execute(delete(duplicate_reviews).where(where))
                    conn.execute(insert(duplicate_reviews).values(**row))
                return
            except sqlalchemy.exc.IntegrityError:  # the same pair decided in another tab at the same moment
                if attempt:
                    raise

    def same_documents(self, owner_id: str, chart_key: bytes) -> dict[str, str]:
        """Each record judged a copy of another, with the one kept; a row failing its check is left out (the
        chronology then shows both records, which loses nothing)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(duplicate_reviews.c.pair, duplicate_reviews.c.sealed).where(
                    duplicate_reviews.c.owner_id == owner_id, duplicate_reviews.c.sealed.is_not(None)
                )
            ).all()
        key, same = _same_key(chart_key), {}
        for pair, sealed in rows:
            try:
                body = json.loads(open_sealed(key, sealed, _same_context(owner_id, pair)))
            except (CryptoError, ValueError):
                continue
            if isinstance(body, dict) and isinstance(body.get("kept"), str) and isinstance(body.get("duplicate"), str):
                same[body["duplicate"]] = body["kept"]
        return same

    def _kept(self, owner_id: str) -> set[str]:
        with self._engine.connect() as conn:
            return set(
                conn.execute(select(duplicate_reviews.c.pair).where(duplicate_reviews.c.owner_id == owner_id)).scalars()
            )

    def decided(self, owner_id: str, key: bytes) -> Callable[[str, str], bool]:
        """Whether the owner decided about two records (kept both, or judged them one document)."""
        kept = self._kept(owner_id)
        return lambda a, b: pair_tag(key, a, b) in kept

    def without_kept(self, owner_id: str, key: bytes, found: dict) -> dict:
        """`duplicates.find`'s answer less the pairs kept: a near pair goes, an exact group once all its pairs do."""
        decided = self.decided(owner_id, key)

        def ids(group: dict) -> list[str]:
            return [r["id"] for r in group["records"]]

        return {
            **found,
            "exact": [g for g in found["exact"] if not all(decided(a, b) for a, b in combinations(ids(g), 2))],
            "near": [n for n in found["near"] if not decided(*ids(n))],
        }
