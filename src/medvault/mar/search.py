"""Search over a reader's records without plaintext at rest and without one HPKE open per record per search.

A session loads its reader's sealed index (mar/index.py) once and keeps it decrypted in server memory,
bounded and dropped when the session ends. Every search first checks, with two cheap queries, whether the
reader's usable keys or index segments changed; only then does it re-read what changed. Records readable
but not yet indexed (shared since, or uploaded by someone else) are opened once (HPKE) and added. Results
are always filtered by the live set of usable keys, so a deleted record or a revoked share vanishes at once.

By meaning: `similar` orders the matches by how close each record's words are in meaning to its text
(mar/semantic.py: a small embedding model shipped with its weights), most similar first; the vectors live
beside the decrypted index in memory only and are made once until its rows change.

Confidentiality: `very-restricted` records are found by their owner, and by a specialist only when the
patient shared that record explicitly (a share of chosen records), never through a chart share.

Professionals and facilities: given `identities` (professionals.for_search for `provider`, facilities.for_search
for `facility`), the filter finds a record under any name of the person or place, and groups count each once,
as the chart each record belongs to decides (its automatic grouping and saved merges): a specialist's index
spans several patients, and a merge in one chart changes nothing for another's records. Each chart is asked
once per search and field, only for those two uses; the items then also name, in `identities`, who they
name (the results page prints that name, with the record's spelling beside it where it differs).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain, islice

from sqlalchemy import Engine, func, select

from medvault.auth.sessions import Session
from medvault.crypto import CryptoError
from medvault.crypto.envelope import canonical_json
from medvault.crypto.keyring import open_sealed, seal
from medvault.crypto.passwords import derive_subkey
from medvault.db.schema import record_keys, records, sessions, shares
from medvault.mar import recordtext, semantic
from medvault.mar.index import (
    COLUMNS,
    JSON_COLUMNS,
    IndexStore,
    Segment,
    is_text,
    item_at,
    items_at,
    make_row,
    normalise,
    to_rows,
    words,
)
from medvault.vault import IntegrityError, RecordNotFound, VaultError
from medvault.vault.metadata import CONFIDENTIALITY, valid_date
from medvault.vault.records import Upload, Vault

log = logging.getLogger("medvault")

FIELDS = ("facility", "provider", "type", "category")
SORTS = ("service_date", "uploaded", "title", "facility", "relevance")
KEYS = (*FIELDS, "from", "to", "q", "similar", "custom", "tags", "confidentiality", "sort", "group", "limit", "cursor")
MAX_LIMIT = 200
MAX_SESSIONS = 32
MAX_CACHED_ROWS = 1_000_000

People = Callable[[str, list[str]], Callable[[str], str]]  # (patient id, names) -> who each name is, there
Who = dict[str, Callable[[str], str]]  # patient id -> who a name is in their chart


class BadQuery(VaultError):
    """A search the server cannot run; the message says which part and why."""


# ---------------------------------------------------------------------------------------------- the query


def first_day(date: str) -> str:
    """A partial date's first day: `2024` starts on 2024-01-01 (dates keep their precision)."""
    return (date + "-01-01")[:10] if len(date) == 4 else (date + "-01")[:10]


def last_day(date: str) -> str:
    """A partial date's last day, as a bound for string comparison (`2024-02` ends before `2024-02-31`)."""
    return (date + "-12-31")[:10] if len(date) == 4 else (date + "-31")[:10]


def _value_key(value: object) -> tuple:
    """Comparable form of a custom field's value: numbers (and booleans) before text, text case-folded."""
    if isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, int | float):
        return (0, float(value))
    return (1, normalise(str(value)))


def _display(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _texts(data: dict, key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and len(v) <= 2000 for v in value):
        raise BadQuery(f"'{key}' must be text or a non-empty list of text")
    return [normalise(v) for v in value]


def _field_name(value: object, key: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise BadQuery(f"'{key}' must be text")
    name = value.removeprefix("-") if key == "sort" else value
    if name in allowed or (name.startswith("custom.") and 7 < len(name) <= 107):
        return value
    raise BadQuery(f"'{key}' must be one of {', '.join(allowed)} or custom.<name>")


@dataclass
class Query:
    fields: dict[str, list[str]] = field(default_factory=dict)
    date_from: str | None = None
    date_to: str | None = None
    terms: list[str] = field(default_factory=list)
    similar: str | None = None
    custom: dict[str, tuple] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    confidentiality: list[str] | None = None
    sort: str = "uploaded"
    desc: bool = True
    group: str | None = None
    limit: int = 50
    cursor: str | None = None

    def digest(self) -> str:
        """What a cursor is bound to: everything but the cursor and the page size."""
        body = {k: v for k, v in self.__dict__.items() if k not in ("cursor", "limit")}
        return hashlib.sha256(canonical_json(body)).hexdigest()[:32]


def parse_query(data: dict) -> Query:
    """Validate a search body; every mistake is a BadQuery naming the key."""
    unknown = set(data) - set(KEYS)
    if unknown:
        raise BadQuery(f"unknown search key(s): {', '.join(sorted(unknown))}")
    query = Query()
    for key in FIELDS:
        values = _texts(data, key)
        if values is not None:
            query.fields[key] = values
    for key in ("from", "to"):
        value = data.get(key)
        if value is not None and not valid_date(value):
            raise BadQuery(f"'{key}' must be YYYY, YYYY-MM or YYYY-MM-DD")
    query.date_from, query.date_to = data.get("from"), data.get("to")
    q = data.get("q")
    if q is not None:
        if not isinstance(q, str) or len(q) > 1000:
            raise BadQuery("'q' must be text of at most 1000 characters")
        query.terms = words(q)[:20]
    similar = data.get("similar")
    if similar is not None and (not isinstance(similar, str) or not similar.strip() or len(similar) > 500):
        raise BadQuery("'similar' must be text of 1 to 500 characters")
    custom = data.get("custom")
    if custom is not None:
        if not isinstance(custom, dict) or len(custom) > 20:
            raise BadQuery("'custom' must be an object of at most 20 fields")
        for name, value in custom.items():
            if not isinstance(value, str | int | float | bool) or len(name) > 100:
                raise BadQuery(f"custom field {name!r} must be compared with text, a number or a boolean")
            query.custom[name] = _value_key(value)
    tags = data.get("tags")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise BadQuery("'tags' must be a list of text")
        query.tags = sorted({normalise(t) for t in tags})
    levels = data.get("confidentiality")
    if levels is not None:
        if isinstance(levels, str):
            levels = [levels]
        if not isinstance(levels, list) or not levels or not set(levels) <= set(CONFIDENTIALITY):
            raise BadQuery(f"'confidentiality' must be a list of {', '.join(CONFIDENTIALITY)}")
        query.confidentiality = sorted(set(levels))
    sort = _field_name(data.get("sort", "relevance" if similar else "-uploaded"), "sort", SORTS)
    if (sort == "relevance") != bool(similar):
        raise BadQuery("'similar' orders the results by meaning: give it with sort 'relevance' or no sort")
    query.desc, query.sort = sort.startswith("-") or sort == "relevance", sort.removeprefix("-")
    query.similar = " ".join(similar.split()) if similar else None
    if data.get("group") is not None:
        query.group = _field_name(data["group"], "group", FIELDS)
    limit = data.get("limit", 50)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"'limit' must be a whole number from 1 to {MAX_LIMIT}")
    query.limit = limit
    cursor = data.get("cursor")
    if cursor is not None and (not isinstance(cursor, str) or len(cursor) > 4096):
        raise BadQuery("'cursor' must be the 'next' value of a previous page")
    query.cursor = cursor
    return query


# ------------------------------------------------------------------------------------ the index in memory


def _freeze(value: object) -> object:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


_COLUMN_OF = {"facility": "fa", "provider": "pr", "type": "ty", "category": "ca", "tags": "tg", "confidentiality": "c"}


@dataclass
class ReaderIndex:
    """One session's decrypted index, the live keys, and the structures derived from them on demand.

    Rows are held as columns (one list per field, row i at position i), concatenated from the segments."""

    user_id: str
    key: bytes
    segments: dict[int, Segment] = field(default_factory=dict)
    live: dict[str, str | None] = field(default_factory=dict)  # record id -> share kind (None: own key)
    signature: tuple | None = None
    next_expiry: float | None = None
    failed: set[str] = field(default_factory=set)
    cols: dict[str, list] = field(default_factory=lambda: {name: [] for name in COLUMNS})
    pos: dict[str, int] = field(default_factory=dict)
    visible: set[int] = field(default_factory=set)
    dead: bool = False
    derived: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return len(self.cols["id"])

    def rebuild(self) -> None:
        """Columns in segment order, first copy of a record wins; what this reader may find."""
        ordered = [self.segments[seq].cols for seq in sorted(self.segments)]
        self.cols = {name: list(chain.from_iterable(c[name] for c in ordered)) for name in COLUMNS}
        ids = self.cols["id"]
        self.pos = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1), strict=True))
        live, conf = self.live, self.cols["c"]
        self.visible = {
            i for rid, i in self.pos.items() if rid in live and (live[rid] != "chart" or conf[i] != "very-restricted")
        }
        self.dead = len(self.pos) != len(ids) or any(rid not in live for rid in self.pos)
        self.derived = {}

    def item(self, i: int) -> dict:
        return item_at(self.cols, i)

    def items(self, rows: Iterable[int]) -> list[dict]:
        """Many rows as `item` shows them; the JSON columns are parsed once for all of them and kept."""
        return items_at(self.cols, {col: self.parsed(col) for col in JSON_COLUMNS}, rows)

    # Derived structures, each built on first use and kept until the rows change.

    def parsed(self, col: str) -> list:
        """A column kept as JSON text (providers, tags, custom fields), parsed once when first needed."""
        if col not in self.derived:  # one parse of the whole column: far cheaper than one call per row
            self.derived[col] = json.loads("[" + ",".join("null" if c is None else c for c in self.cols[col]) + "]")
        return self.derived[col]

    def custom(self, name: str) -> list:
        """One custom field's value per row (None when absent)."""
        cache_key = ("custom", name)
        if cache_key not in self.derived:
            self.derived[cache_key] = [None if c is None else c.get(name) for c in self.parsed("cu")]
        return self.derived[cache_key]

    def postings(self, name: str) -> tuple[dict[object, set[int]], dict[object, str]]:
        """Normalised value -> rows having it, and the first spelling seen of each value."""
        cache_key = ("postings", name)
        if cache_key not in self.derived:
            is_custom = name.startswith("custom.")
            if is_custom:
                column = self.custom(name[7:])
            elif name in ("provider", "tags"):
                column = self.parsed(_COLUMN_OF[name])
            else:
                column = self.cols[_COLUMN_OF[name]]
            keyer = _value_key if is_custom else normalise
            index: dict[object, list[int]] = {}
            shown: dict[object, str] = {}
            memo: dict[object, object] = {}
            for i, value in enumerate(column):
                if value is None:
                    continue
                for one in value if isinstance(value, list) else (value,):
                    norm = memo.get(one)
                    if norm is None:
                        norm = memo[one] = keyer(one)
                        shown.setdefault(norm, _display(one))
                    index.setdefault(norm, []).append(i)
            self.derived[cache_key] = ({k: set(v) for k, v in index.items()}, shown)
        return self.derived[cache_key]

    def dates(self) -> tuple[list[str], list[int], list[str], list[int]]:
        """Rows with a date of service, sorted by first day and by last day, for range filters."""
        if "dates" not in self.derived:
            spans = [(d, i) for i, d in enumerate(self.cols["sd"]) if d]
            firsts = sorted((first_day(d), i) for d, i in spans)
            lasts = sorted((last_day(d), i) for d, i in spans)
            self.derived["dates"] = (
                [d for d, _ in firsts],
                [i for _, i in firsts],
                [d for d, _ in lasts],
                [i for _, i in lasts],
            )
        return self.derived["dates"]

    def vocabulary(self) -> tuple[list[str], dict[str, list[int]]]:
        """Sorted distinct words and, for each, the rows containing it (for prefix search)."""
        if "words" not in self.derived:
            postings: dict[str, list[int]] = {}
            for i, text in enumerate(self.cols["w"]):
                for word in text.split():
                    postings.setdefault(word, []).append(i)
            self.derived["words"] = (sorted(postings), postings)
        return self.derived["words"]

    def sort_values(self, name: str) -> list:
        """What each row sorts by (None: no value)."""
        cache_key = ("values", name)
        if cache_key not in self.derived:
            if name.startswith("relevance:"):
                values = self.similarity(name.removeprefix("relevance:"))
            elif name == "uploaded":
                values = self.cols["up"]
            elif name == "service_date":
                values = self.cols["sd"]
            elif name.startswith("custom."):
                values = [None if v is None else _value_key(v) for v in self.custom(name[7:])]
            else:
                values = [None if v is None else normalise(v) for v in self.cols[{"title": "ti"}.get(name, "fa")]]
            self.derived[cache_key] = values
        return self.derived[cache_key]

    def similarity(self, text: str) -> list[float]:
        """Each row's similarity in meaning to `text` (mar/semantic.py); the rows' vectors are made once, and
        only the latest query's order is kept."""
        if "vectors" not in self.derived:
            self.derived["vectors"] = semantic.vectors(self.cols["w"])
        for key in [k for k in self.derived if isinstance(k, tuple) and str(k[1]).startswith("relevance:")]:
            del self.derived[key]
        return semantic.similarities(text, self.derived["vectors"])

    def order(self, name: str, desc: bool) -> tuple[list[int], list[int], Callable[[int], tuple]]:
        """Rows in ascending key order, each row's rank, and the key of a row: (flag, value, record id).
        Rows without a value come last in either direction (pages of a descending sort walk the order
        backwards); the record id breaks ties, so the order is total and stable across pages."""
        cache_key = ("order", name, desc)
        if cache_key not in self.derived:
            values, ids = self.sort_values(name), self.cols["id"]
            by_id = sorted(range(len(ids)), key=ids.__getitem__)
            present = [i for i in by_id if values[i] is not None]
            present.sort(key=values.__getitem__)  # stable: ties stay in id order
            missing = [i for i in by_id if values[i] is None]
            order = missing + present if desc else present + missing
            rank = [0] * len(ids)
            for r, i in enumerate(order):
                rank[i] = r
            flags = (1, 0) if desc else (0, 1)

            def key(i: int) -> tuple:
                value = values[i]
                return (flags[0], value, ids[i]) if value is not None else (flags[1], None, ids[i])

            self.derived[cache_key] = (order, rank, key)
        return self.derived[cache_key]

    # The query itself.

    def by_chart(self, name: str) -> dict[str, dict[object, set[int]]]:
        """Each chart's (its patient's) values of field `name`, with the visible rows naming them;
        `derived["owners"]` (record id -> patient) is set by the search first."""
        if ("by_chart", name) not in self.derived:
            index, _ = self.postings(name)
            ids, owners = self.cols["id"], self.derived["owners"]
            charts: dict[str, dict[object, set[int]]] = {}
            for value, rows in index.items():
                for i in rows & self.visible:
                    charts.setdefault(owners.get(ids[i], ""), {}).setdefault(value, set()).add(i)
            self.derived["by_chart", name] = charts
        return self.derived["by_chart", name]

    def persons(self, name: str, who: Who) -> dict[tuple[str, str], tuple[str, set[int]]]:
        """(patient, a person or place of their chart, normalised) -> its name and the visible rows naming it in
        field `name`; `who` says, per patient, who a name is in that chart (see `Search.search`)."""
        _, shown = self.postings(name)
        found: dict[tuple[str, str], tuple[str, set[int]]] = {}
        for patient, named in self.by_chart(name).items():
            spelled = {normalise(shown[v]) for v in named}
            for value, rows in named.items():
                person = who[patient](shown[value])
                label = person if normalise(person) in spelled else shown[value]  # not the filter's spelling
                found.setdefault((patient, normalise(person)), (label, set()))[1].update(rows)
        return found

    def matching(self, query: Query, whos: dict[str, Who] | None = None) -> set[int]:
        sets: list[set[int]] = [self.visible]
        for name, values in query.fields.items():
            index, _ = self.postings(name)
            found = set().union(*(index.get(v, ()) for v in values))
            if (who := (whos or {}).get(name)) is not None:  # and under the other names, chart by chart
                persons = self.persons(name, who)
                for key in {(p, normalise(one(v))) for p, one in who.items() for v in values} & persons.keys():
                    found |= persons[key][1]
            sets.append(found)
        for name, value in query.custom.items():
            index, _ = self.postings("custom." + name)
            sets.append(index.get(value, set()))
        if query.tags:
            index, _ = self.postings("tags")
            sets.extend(index.get(t, set()) for t in query.tags)
        if query.confidentiality is not None:
            index, _ = self.postings("confidentiality")
            sets.append(set().union(*(index.get(c, ()) for c in query.confidentiality)))
        if query.date_from or query.date_to:
            first_keys, first_rows, last_keys, last_rows = self.dates()
            if query.date_from:  # overlap: the record's period ends on or after the start of `from`
                sets.append(set(last_rows[bisect.bisect_left(last_keys, first_day(query.date_from)) :]))
            if query.date_to:  # ... and starts on or before the end of `to`
                sets.append(set(first_rows[: bisect.bisect_right(first_keys, last_day(query.date_to))]))
        if query.terms:
            vocab, postings = self.vocabulary()
            for term in query.terms:  # every term must start some word of the record
                found: set[int] = set()
                j = bisect.bisect_left(vocab, term)
                while j < len(vocab) and vocab[j].startswith(term):
                    found.update(postings[vocab[j]])
                    j += 1
                sets.append(found)
        sets.sort(key=len)
        result = set(sets[0])
        for other in sets[1:]:
            if not result:
                break
            result &= other
        return result

    def page(self, query: Query, matches: set[int], after: tuple | None) -> tuple[list[int], tuple | None]:
        """Up to `limit` rows strictly after the cursor's key in the query's order, and the next cursor key."""
        sort = f"relevance:{query.similar}" if query.similar else query.sort
        order, rank, key = self.order(sort, query.desc)
        want = query.limit + 1
        few = len(matches) * 8 < len(order)  # few matches: sort them rather than walk every row
        if query.desc:
            end = len(order) if after is None else bisect.bisect_left(order, after, key=key)
            if few:
                chosen = [order[r] for r in sorted((rank[i] for i in matches if rank[i] < end), reverse=True)[:want]]
            else:
                chosen = list(islice((i for i in reversed(order[:end]) if i in matches), want))
        else:
            start = 0 if after is None else bisect.bisect_right(order, after, key=key)
            if few:
                chosen = [order[r] for r in sorted(rank[i] for i in matches if rank[i] >= start)[:want]]
            else:
                chosen = list(islice((i for i in order[start:] if i in matches), want))
        if len(chosen) < want:
            return chosen, None
        chosen = chosen[: query.limit]
        return chosen, key(chosen[-1])

    def groups(self, name: str, matches: set[int], who: Who | None = None) -> dict[str, int]:
        index, shown = self.postings(name)
        if who is not None:  # one group per person or place, named as their chart names them
            index, shown = {}, {}
            for (_, key), (person, rows) in self.persons(name, who).items():
                index.setdefault(key, set()).update(rows)
                shown.setdefault(key, person)
        counts = {shown[v]: len(rows & matches) for v, rows in index.items()}  # CPython walks the smaller set
        return {k: n for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n}


def _identified(items: list[dict], whos: dict[str, Who], entry: ReaderIndex) -> list[dict]:
    """Items naming, in `identities`, who their facility or providers are in their own chart, for the fields the
    search filtered or grouped by (the only ones it asked the charts about)."""
    owners = entry.derived.get("owners", {})
    for item in items:
        for name, who in whos.items():
            person = who.get(owners.get(item["id"], ""))
            if person is not None and item.get(name):
                named = [person(v) for v in item[name]] if name == "provider" else person(item[name])
                item.setdefault("identities", {})[name] = named
    return items


# ---------------------------------------------------------------------------------------------- the service


class Search:
    """Search for sessions; one decrypted index per live session, in memory, bounded."""

    def __init__(self, engine: Engine, vault: Vault, server_secret: bytes, idle_seconds: float):
        self._engine = engine
        self._vault = vault
        self.store = IndexStore(engine)
        self._cursor_key = derive_subkey(server_secret, "search-cursor/v1")
        self._idle = idle_seconds
        self._cache: OrderedDict[bytes, ReaderIndex] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._last_sweep = 0.0

    # The cache of decrypted indexes.

    def _entry(self, session: Session) -> ReaderIndex:
        with self._cache_lock:
            entry = self._cache.get(session.id)
            if entry is not None:
                self._cache.move_to_end(session.id)
                entry.last_used = time.monotonic()
                return entry
        entry = ReaderIndex(session.user_id, self.store.index_key(session.user_id, session.keys))
        with self._cache_lock:
            entry = self._cache.setdefault(session.id, entry)
            self._evict()
        return entry

    def _evict(self) -> None:
        """Keep at most MAX_SESSIONS indexes and MAX_CACHED_ROWS rows; least recently used go first."""
        while len(self._cache) > MAX_SESSIONS or (
            len(self._cache) > 1 and sum(len(e) for e in self._cache.values()) > MAX_CACHED_ROWS
        ):
            self._cache.popitem(last=False)

    def forget(self, session_id: bytes) -> None:
        with self._cache_lock:
            self._cache.pop(session_id, None)

    def sweep(self, force: bool = False) -> int:
        """Drop indexes of sessions that ended (logout, expiry) or sat idle; at most every 30 s unless forced."""
        now = time.monotonic()
        if not force and now - self._last_sweep < 30:
            return 0
        self._last_sweep = now
        with self._cache_lock:
            cached = list(self._cache)
        if not cached:
            return 0
        with self._engine.connect() as conn:
            alive = set(conn.execute(select(sessions.c.id).where(sessions.c.id.in_(cached))).scalars())
        dropped = 0
        with self._cache_lock:
            for sid in cached:
                entry = self._cache.get(sid)
                if entry is not None and (sid not in alive or now - entry.last_used > self._idle):
                    del self._cache[sid]
                    dropped += 1
        return dropped

    def cached_sessions(self) -> int:
        return len(self._cache)

    # Keeping an index current.

    def _live(self, user_id: str, now: float) -> tuple[dict[str, str | None], float | None]:
        """Records the reader holds a usable key for (see `usable_key`), with the kind of share it came from."""
        with self._engine.connect() as conn:
            result = conn.execute(
                select(record_keys.c.record_id, record_keys.c.share_id).where(record_keys.c.reader_id == user_id)
            )
            keys = result.cursor.fetchall()  # plain DB-API tuples: a third of the time of Row objects at 100,000
            result.close()
            granted = conn.execute(
                select(shares.c.id, shares.c.kind, shares.c.expires_at).where(
                    shares.c.specialist_id == user_id,
                    shares.c.revoked_at.is_(None),
                    shares.c.expires_at.is_(None) | (shares.c.expires_at > now),
                )
            ).all()
        kinds = {sid: kind for sid, kind, _ in granted}
        expiry = min((e for _, _, e in granted if e is not None), default=None)
        live: dict[str, str | None] = {}
        for rid, share_id in keys:
            if share_id is None:
                live[rid] = None
            elif share_id in kinds and live.get(rid, "chart") == "chart":
                live[rid] = kinds[share_id]
        return live, expiry

    def _signature(self, user_id: str) -> tuple:
        with self._engine.connect() as conn:
            return tuple(
                conn.execute(
                    select(func.count(), func.max(record_keys.c.granted_at), func.sum(record_keys.c.granted_at)).where(
                        record_keys.c.reader_id == user_id
                    )
                ).one()
            )

    def refresh(self, entry: ReaderIndex, session: Session) -> None:
        """Bring a cached index up to date: changed segments, the live key set, rows for new records."""
        user_id = entry.user_id
        changed = False
        versions = self.store.versions(user_id)
        if {s: seg.gen for s, seg in entry.segments.items()} != versions:
            stale = [s for s, g in versions.items() if s not in entry.segments or entry.segments[s].gen != g]
            entry.segments = {s: seg for s, seg in entry.segments.items() if s in versions}
            entry.segments.update(self.store.load(user_id, entry.key, stale))
            changed = True
        now = time.time()
        signature = self._signature(user_id)
        if signature != entry.signature or (entry.next_expiry is not None and now >= entry.next_expiry):
            entry.live, entry.next_expiry = self._live(user_id, now)
            entry.signature = signature
            changed = True
        if not changed:
            return
        entry.rebuild()
        missing = [rid for rid in entry.live if rid not in entry.pos and rid not in entry.failed]
        if missing:
            rows = [row for row in (self._row_for(rid, session, entry) for rid in missing) if row is not None]
            if rows:
                entry.segments.update({s.seq: s for s in self.store.append(user_id, entry.key, rows)})
                entry.rebuild()
        if entry.dead:
            self._drop_dead(entry)

    def _row_for(self, record_id: str, session: Session, entry: ReaderIndex) -> dict | None:
        """Open a readable record once (HPKE, signature check) and make its index row."""
        try:
            record = self._vault.open(record_id, session.user_id, session.keys)
            found = recordtext.read(self._vault, record)
        except RecordNotFound:
            return None  # revoked or deleted meanwhile
        except IntegrityError:
            entry.failed.add(record_id)  # not indexable; opening it says why
            return None
        return make_row(record.as_json(), found.text if found else None)

    def _drop_dead(self, entry: ReaderIndex) -> None:
        """Rewrite segments holding rows of records no longer readable (or duplicates)."""
        seen: set[str] = set()
        for seq in sorted(entry.segments):
            seg = entry.segments[seq]
            keep = []
            for i, rid in enumerate(seg.cols["id"]):
                if rid in entry.live and rid not in seen:
                    keep.append(i)
                    seen.add(rid)
            if len(keep) != len(seg):
                rows = to_rows(seg.cols)
                keep = [rows[i] for i in keep]
                written = self.store.rewrite(entry.user_id, entry.key, seg, keep)
                if written is None:  # emptied, or changed by another session meanwhile: take what is stored
                    entry.segments.pop(seq)
                    entry.segments.update(self.store.load(entry.user_id, entry.key, [seq]))
                else:
                    entry.segments[seq] = written
        entry.rebuild()
        entry.dead = False

    # Entry points.

    def index_upload(self, session: Session, upload: Upload) -> None:
        self.index_uploads(session, [upload])

    def index_uploads(self, session: Session, uploads: list[Upload]) -> None:
        """Add the uploader's own rows at upload time, in one segment write (an import brings thousands); on
        failure the next search builds them from the records. Callers run this off the event loop."""
        try:
            rows = [self._own_row(session, upload) for upload in uploads]
            if not rows:
                return
            with self._cache_lock:
                entry = self._cache.get(session.id)
            if entry is None:
                self.store.append(session.user_id, self.store.index_key(session.user_id, session.keys), rows)
                return
            with entry.lock:
                written = self.store.append(session.user_id, entry.key, rows)
                entry.segments.update({s.seq: s for s in written})
        except Exception:  # the records are stored; indexing catches up at the next search
            log.exception("search index update after upload failed")

    def _own_row(self, session: Session, upload: Upload) -> dict:
        """The index row of a record the session just uploaded.

        A text file's words come from the head the upload kept in memory; a PDF or an image (OCR) needs all its
        bytes, so the committed record is opened and read back (see mar/recordtext.py)."""
        meta = upload.metadata
        text = None
        if is_text(meta.get("content_type")):
            text = recordtext.of_text_head(bytes(upload.head), upload.size).text
        elif recordtext.has_text(meta.get("content_type")):
            found = recordtext.read(self._vault, self._vault.open(upload.record_id, session.user_id, session.keys))
            text = found.text if found else None
        item = {
            "id": upload.record_id,
            **meta,
            "size": upload.size,
            "uploaded_at": upload.created_at,
            "signed_by": session.username,
            "signature_valid": True,
        }
        return make_row(item, text)

    def items(self, session: Session, record_ids: Iterable[str]) -> list[dict]:
        """The listings (as `GET /api/v1/records` shows them) of those records this session's reader may find,
        from the session's index: however many there are, no record is opened (the chart's views use this)."""
        self.sweep()
        entry = self._entry(session)
        with entry.lock:
            self.refresh(entry, session)
            pos, visible = entry.pos, entry.visible
            return entry.items(pos[rid] for rid in record_ids if pos.get(rid) in visible)

    def search(self, session: Session, data: dict, identities: dict[str, People] | None = None) -> dict:
        query = parse_query(data)
        after = self._open_cursor(query, session) if query.cursor else None
        self.sweep()
        entry = self._entry(session)
        with entry.lock:
            self.refresh(entry, session)
            whos = {
                name: self._who(entry, name, people, query.fields.get(name, []))
                for name, people in (identities or {}).items()
                if name in query.fields or query.group == name
            }
            matches = entry.matching(query, whos)
            chosen, next_key = entry.page(query, matches, after)
            result = {
                "items": _identified(self._vault.mark_superseded([entry.item(i) for i in chosen]), whos, entry),
                "next": self._seal_cursor(query, session, next_key) if next_key is not None else None,
                "total": len(matches),
            }
            if query.group is not None:
                result["groups"] = entry.groups(query.group, matches, whos.get(query.group))
        return result

    def _who(self, entry: ReaderIndex, name: str, people: People, named: list[str]) -> Who:
        """Per patient whose records the index holds: who a name in field `name` (or a filter's) is in their
        chart."""
        if "owners" not in entry.derived:
            with self._engine.connect() as conn:
                owned = select(records.c.id, records.c.owner_id).join(
                    record_keys, record_keys.c.record_id == records.c.id
                )
                mine = owned.where(record_keys.c.reader_id == entry.user_id)
                entry.derived["owners"] = dict(conn.execute(mine).all())
        _, shown = entry.postings(name)
        return {p: people(p, [*(shown[v] for v in values), *named]) for p, values in entry.by_chart(name).items()}

    # Cursors: sealed under a server subkey and bound to the user and to this query.

    def _seal_cursor(self, query: Query, session: Session, key: tuple) -> str:
        plain = json.dumps({"q": query.digest(), "k": key}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(seal(self._cursor_key, plain, session.user_id.encode())).decode()

    def _open_cursor(self, query: Query, session: Session) -> tuple:
        try:
            sealed = base64.urlsafe_b64decode(query.cursor.encode())
            body = json.loads(open_sealed(self._cursor_key, sealed, session.user_id.encode()))
        except (ValueError, CryptoError):
            raise BadQuery("'cursor' must be the 'next' value of a previous page") from None
        if body.get("q") != query.digest():
            raise BadQuery("'cursor' belongs to a different search (filters and sort must not change)")
        return _freeze(body["k"])
