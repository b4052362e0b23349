"""The per-reader search index at rest: one random index key per user, rows sealed in a few segment blobs.

Opening a record's wrapped key costs one HPKE open (~67 µs), too slow to do for 100,000 records per search.
So each reader has an *index key*, 32 random bytes sealed (HPKE) to the reader's own X25519 public key: only
a session of that reader opens it. Index rows (a record's metadata as the list endpoint shows it, plus the
normalised words of its title, description, tags and text) are JSON, packed up to `SEGMENT_ROWS` per
segment, each segment sealed with AES-256-GCM under a subkey of the index key, bound to the user, the segment
number and its generation. Loading an index is a handful of AES-GCM opens plus JSON parsing.

Segments are rewritten with optimistic concurrency (the `gen` column), so two sessions of one user, or two
server nodes, never lose each other's rows. Rows are a cache of what the reader can open anyway: a missing
row is rebuilt from the record, a row whose record is no longer readable is never shown and is dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from medvault.crypto import CryptoError
from medvault.crypto.envelope import open_sealed_to, seal_to
from medvault.crypto.keyring import PrivateKeys, open_sealed, seal
from medvault.crypto.passwords import derive_subkey
from medvault.db.schema import search_keys, search_segments

log = logging.getLogger("medvault")

SEGMENT_ROWS = 1000
TEXT_BYTES = 256 * 1024  # of a text file's content, indexed
MAX_WORDS = 5000  # distinct words per record
MAX_WORD = 64  # longer "words" (base64 blobs, hashes) are not indexed
TEXT_TYPES = ("text/plain", "text/markdown")
_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Case-folded, accents removed: `Zürich` and `zurich` are the same word."""
    if not text.isascii():
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return text.casefold()


def words(*texts: str | None) -> list[str]:
    """Distinct normalised words of the texts, in order of first appearance, at most MAX_WORDS."""
    seen: dict[str, None] = {}
    for text in texts:
        if not text:
            continue
        for word in _WORD.findall(normalise(text)):
            if len(word) <= MAX_WORD:
                seen.setdefault(word, None)
                if len(seen) >= MAX_WORDS:
                    return list(seen)
    return list(seen)


def is_text(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() in TEXT_TYPES


def make_row(item: dict, text: str | None) -> dict:
    """An index row: the record as the list endpoint shows it, plus `w`, its searchable words."""
    row = dict(item)
    tags = item.get("tags") or []
    row["w"] = " ".join(words(item.get("title"), item.get("description"), *tags, text))
    return row


# Segments are columnar: one JSON array per column, so loading parses flat lists of strings and numbers (fast,
# compact, nothing for the cyclic GC to track) instead of one object per row. Lists and objects are kept as
# JSON text and parsed on demand: `pr` providers, `tg` tags and `cu` custom fields when a search first needs
# them, `x` (the rest: description, file name, size, signer...) only for the rows on a page.
_DIRECT = {
    "c": "confidentiality",
    "sd": "service_date",
    "up": "uploaded_at",
    "ti": "title",
    "fa": "facility",
    "ty": "type",
    "ca": "category",
}
_AS_TEXT = {"pr": "provider", "tg": "tags", "cu": "custom"}
COLUMNS = ("id", *_DIRECT, *_AS_TEXT, "x", "w")
FORMAT = 1


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_columns(rows: list[dict]) -> dict[str, list]:
    cols: dict[str, list] = {name: [] for name in COLUMNS}
    for row in rows:
        rest = dict(row)
        cols["id"].append(rest.pop("id"))
        for col, key in _DIRECT.items():
            cols[col].append(rest.pop(key, None))
        for col, key in _AS_TEXT.items():
            value = rest.pop(key, None)
            cols[col].append(None if value is None else _compact(value))
        cols["w"].append(rest.pop("w", ""))
        cols["x"].append(_compact(rest))
    return cols


def item_at(cols: dict[str, list], i: int) -> dict:
    """Row `i` as the list endpoint shows a record (without its words)."""
    item = {"id": cols["id"][i]}
    for col, key in _DIRECT.items():
        value = cols[col][i]
        if value is not None:
            item[key] = value
    for col, key in _AS_TEXT.items():
        if cols[col][i] is not None:
            item[key] = json.loads(cols[col][i])
    item.update(json.loads(cols["x"][i]))
    return item


JSON_COLUMNS = (*_AS_TEXT, "x")  # kept as JSON text: `items_at` takes them parsed


def items_at(cols: dict[str, list], parsed: dict[str, list], rows: Iterable[int]) -> list[dict]:
    """Many rows as `item_at` shows them, with the JSON_COLUMNS already parsed in bulk (`parsed[col]`): a
    whole chart's records without one `json.loads` per row. Lists and objects are copied, so a caller may
    change what it gets without touching the cached columns."""
    direct = [(cols[col], key) for col, key in _DIRECT.items()]
    as_text = [(parsed[col], key) for col, key in _AS_TEXT.items()]
    ids, rest = cols["id"], parsed["x"]
    out = []
    for i in rows:
        item = {"id": ids[i]}
        for column, key in direct:
            if column[i] is not None:
                item[key] = column[i]
        for column, key in as_text:
            if column[i] is not None:
                item[key] = column[i].copy()
        item.update(rest[i])  # plain values only: description, file name, size, signer...
        out.append(item)
    return out


def to_rows(cols: dict[str, list]) -> list[dict]:
    return [{**item_at(cols, i), "w": cols["w"][i]} for i in range(len(cols["id"]))]


@dataclass
class Segment:
    seq: int
    gen: int
    cols: dict[str, list]

    def __len__(self) -> int:
        return len(self.cols["id"])


class Conflict(Exception):
    """Another session rewrote the segment first; reload and retry."""


def _key_info(user_id: str) -> bytes:
    return f"medvault/search-key/v1:{user_id}".encode()


def _segment_ad(user_id: str, seq: int, gen: int) -> bytes:
    return f"medvault/search-segment/v1:{user_id}:{seq}:{gen}".encode()


def _dumps(rows: list[dict]) -> bytes:
    return _compact({"format": FORMAT, **to_columns(rows)}).encode()


class IndexStore:
    """The database side: the sealed index key and sealed segments of each user."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def index_key(self, user_id: str, keys: PrivateKeys) -> bytes:
        """The user's index key, made on first use. A key that no longer opens (an administrator's reset gave
        the user new keys) is replaced together with the index: it is rebuilt from what the user can read."""
        for _ in range(3):
            with self._engine.connect() as conn:
                sealed = conn.execute(select(search_keys.c.sealed_key).where(search_keys.c.user_id == user_id)).scalar()
            if sealed is not None:
                try:
                    return open_sealed_to(keys.x25519, sealed, _key_info(user_id))
                except CryptoError:
                    self.drop(user_id)
            key = os.urandom(32)
            public = keys.x25519.public_key().public_bytes_raw()
            try:
                with self._engine.begin() as conn:
                    conn.execute(
                        insert(search_keys).values(
                            user_id=user_id, sealed_key=seal_to(public, key, _key_info(user_id)), created_at=time.time()
                        )
                    )
                return key
            except DBIntegrityError:  # another session made it first: use theirs
                continue
        raise CryptoError("cannot establish the search index key")

    def drop(self, user_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(search_segments).where(search_segments.c.user_id == user_id))
            conn.execute(delete(search_keys).where(search_keys.c.user_id == user_id))

    def versions(self, user_id: str) -> dict[int, int]:
        """Segment number -> generation: cheap, tells a cached index what changed."""
        with self._engine.connect() as conn:
            query = select(search_segments.c.seq, search_segments.c.gen).where(search_segments.c.user_id == user_id)
            return dict(conn.execute(query).all())

    def load(self, user_id: str, key: bytes, seqs: list[int] | None = None) -> dict[int, Segment]:
        query = select(search_segments.c.seq, search_segments.c.gen, search_segments.c.sealed).where(
            search_segments.c.user_id == user_id
        )
        if seqs is not None:
            if not seqs:
                return {}
            query = query.where(search_segments.c.seq.in_(seqs))
        with self._engine.connect() as conn:
            found = conn.execute(query).all()
        segments = {}
        for r in found:
            try:
                segments[r.seq] = self._open(user_id, key, r.seq, r.gen, r.sealed)
            except (CryptoError, ValueError):
                # Tampered or corrupt: drop it; its rows are rebuilt from the records the reader can open.
                log.warning("search index segment failed its integrity check; rebuilding it")
                with self._engine.begin() as conn:
                    conn.execute(
                        delete(search_segments).where(
                            search_segments.c.user_id == user_id,
                            search_segments.c.seq == r.seq,
                            search_segments.c.gen == r.gen,
                        )
                    )
        return segments

    def _open(self, user_id: str, key: bytes, seq: int, gen: int, sealed: bytes) -> Segment:
        plain = open_sealed(derive_subkey(key, "search/segment/v1"), sealed, _segment_ad(user_id, seq, gen))
        cols = json.loads(plain)
        if cols.pop("format", None) != FORMAT:
            raise CryptoError("unknown search segment format")
        return Segment(seq, gen, cols)

    def _seal(self, user_id: str, key: bytes, seq: int, gen: int, rows: list[dict]) -> bytes:
        return seal(derive_subkey(key, "search/segment/v1"), _dumps(rows), _segment_ad(user_id, seq, gen))

    def append(self, user_id: str, key: bytes, rows: list[dict]) -> list[Segment]:
        """Add rows: fill the last segment, then new ones. Returns every segment written."""
        for _ in range(10):
            try:
                return self._append_once(user_id, key, rows)
            except Conflict:
                continue
        raise Conflict

    def _append_once(self, user_id: str, key: bytes, rows: list[dict]) -> list[Segment]:
        written: list[Segment] = []
        now = time.time()
        with self._engine.begin() as conn:
            last = conn.execute(
                select(search_segments.c.seq, search_segments.c.gen, search_segments.c.rows, search_segments.c.sealed)
                .where(search_segments.c.user_id == user_id)
                .order_by(search_segments.c.seq.desc())
                .limit(1)
            ).first()
            rest = list(rows)
            next_seq = 0
            if last is not None:
                next_seq = last.seq + 1
                room = SEGMENT_ROWS - last.rows
                if room > 0:
                    seg_rows = to_rows(self._open(user_id, key, last.seq, last.gen, last.sealed).cols)
                    seg_rows.extend(rest[:room])
                    rest = rest[room:]
                    gen = last.gen + 1
                    done = conn.execute(
                        update(search_segments)
                        .where(
                            search_segments.c.user_id == user_id,
                            search_segments.c.seq == last.seq,
                            search_segments.c.gen == last.gen,
                        )
                        .values(
                            gen=gen,
                            rows=len(seg_rows),
                            sealed=self._seal(user_id, key, last.seq, gen, seg_rows),
                            updated_at=now,
                        )
                    )
                    if done.rowcount != 1:
                        raise Conflict
                    written.append(Segment(last.seq, gen, to_columns(seg_rows)))
            for start in range(0, len(rest), SEGMENT_ROWS):
                part = rest[start : start + SEGMENT_ROWS]
                try:
                    conn.execute(
                        insert(search_segments).values(
                            user_id=user_id,
                            seq=next_seq,
                            gen=0,
                            rows=len(part),
                            sealed=self._seal(user_id, key, next_seq, 0, part),
                            updated_at=now,
                        )
                    )
                except DBIntegrityError:  # the whole transaction rolls back; the caller retries
                    raise Conflict from None
                written.append(Segment(next_seq, 0, to_columns(part)))
                next_seq += 1
        return written

    def rewrite(self, user_id: str, key: bytes, seg: Segment, rows: list[dict]) -> Segment | None:
        """Replace a segment's rows (an empty list deletes it) if nobody changed it since `seg` was read."""
        where = (
            search_segments.c.user_id == user_id,
            search_segments.c.seq == seg.seq,
            search_segments.c.gen == seg.gen,
        )
        with self._engine.begin() as conn:
            if not rows:
                conn.execute(delete(search_segments).where(*where))
                return None
            gen = seg.gen + 1
            done = conn.execute(
                update(search_segments)
                .where(*where)
                .values(
                    gen=gen,
                    rows=len(rows),
                    sealed=self._seal(user_id, key, seg.seq, gen, rows),
                    updated_at=time.time(),
                )
            )
        return Segment(seg.seq, gen, to_columns(rows)) if done.rowcount == 1 else None

    def row_count(self, user_id: str) -> int:
        with self._engine.connect() as conn:
            query = select(func.coalesce(func.sum(search_segments.c.rows), 0))
            return int(conn.execute(query.where(search_segments.c.user_id == user_id)).scalar())
