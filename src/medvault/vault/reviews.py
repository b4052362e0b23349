"""The owner's decisions about suggested duplicates: pairs to keep both of, never suggested again.

Duplicate suggestions (mar/duplicates.py) are recomputed on every request, so a "keep both" has to be kept
somewhere. The database holds only HMAC-SHA256 of the pair under the owner's duplicate key, which only a
session of the owner derives: a dump shows how many pairs someone reviewed, not which records looked alike
(the same reasoning as the keyed content hash). A decision about a record deleted since is simply never
matched again. The other decision, "the newer version of", needs no memory: a superseded record is no longer
suggested at all.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from itertools import combinations

import sqlalchemy.exc
from sqlalchemy import Engine, insert, select

from medvault.db.schema import duplicate_reviews


def pair_tag(key: bytes, a: str, b: str) -> str:
    """The pair's keyed hash; the order of the two ids does not matter."""
    first, second = sorted((a, b))
    return hmac.new(key, f"medvault/kept-both/v1:{first}:{second}".encode(), hashlib.sha256).hexdigest()


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

    def _kept(self, owner_id: str) -> set[str]:
        with self._engine.connect() as conn:
            return set(
                conn.execute(select(duplicate_reviews.c.pair).where(duplicate_reviews.c.owner_id == owner_id)).scalars()
            )

    def decided(self, owner_id: str, key: bytes) -> Callable[[str, str], bool]:
        """Whether the owner chose to keep both of two records."""
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
