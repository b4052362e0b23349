"""Search over 100,000 records readable by one specialist: MedVault's sealed per-reader index vs SQLite FTS5
on plaintext (the unprotected lower bound), in the same run.

The records are made in process against a temp SQLite database, not through HTTP uploads: 200 patients each
share their chart with one specialist (a `shares` row of kind `chart` per patient, a `record_keys` row per
record pointing at it, so the live-key query is the real one), and the specialist's index rows are built
with `make_row` and written with `IndexStore.append`, exactly what searches and uploads write. Record
ciphertext and wrapped keys are placeholders (a search never opens them once a row exists); the cost of
indexing a shared record the first time (HPKE open, manifest check, text read) is measured separately on
real uploads.

Measured: first search of a session (index key HPKE open, segments AES-GCM open + JSON parse, live-key
query, a filtered sorted page of 50) with a fresh cache; warm p50/p99 of a mix of filtered, sorted pages of
50 (each shape run once before timing, so derived structures are built); the first use of each shape; peak
RSS and the cache's share of it. Times are of `Search.search` plus `json.dumps` of the answer: the HTTP layer
is not included.

    .venv/bin/python bench/search.py                  # 100,000 records, ~2 min
    .venv/bin/python bench/search.py --records 20000 --queries 200
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine_summary
from sqlalchemy import insert

from medvault.auth.sessions import Session
from medvault.blobs.store import BlobStore
from medvault.crypto.keyring import PrivateKeys
from medvault.db.engine import make_engine, migrate
from medvault.db.schema import record_keys, records, shares, users
from medvault.mar.index import IndexStore, make_row
from medvault.mar.search import Search
from medvault.vault.records import Vault

FACILITIES = [f"Facility {n}" for n in range(40)]
PROVIDERS = [f"Dr {n}" for n in range(300)]
TYPES = ["Letter", "Imaging", "Lab", "Note", "Discharge", "Referral", "Prescription", "Report", "ECG", "Consent"]
CATEGORIES = ["cardio", "radiology", "lab", "notes", "surgery", "oncology", "neuro", "general"]
TAGS = [f"tag{n}" for n in range(30)]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fake_record(rng: random.Random, vocab: list[str], text_vocab: list[str], now: float) -> tuple[dict, str | None]:
    year = rng.randint(2000, 2025)
    r = rng.random()
    date = None
    if r < 0.80:
        date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    elif r < 0.95:
        date = f"{year}-{rng.randint(1, 12):02d}"
    elif r < 0.97:
        date = str(year)
    meta = {
        "title": " ".join(rng.choices(vocab, k=rng.randint(3, 6))).capitalize(),
        "description": " ".join(rng.choices(vocab, k=rng.randint(10, 20))),
        "facility": rng.choice(FACILITIES),
        "provider": rng.sample(PROVIDERS, rng.randint(1, 2)),
        "type": rng.choice(TYPES),
        "category": rng.choice(CATEGORIES),
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "custom": {"ward": rng.choice("ABCDEFGHIJ"), "visit": rng.randint(1, 50)},
        "confidentiality": rng.choices(["normal", "restricted", "very-restricted"], [90, 8, 2])[0],
        "filename": "scan.pdf",
        "content_type": "application/pdf",
    }
    if date:
        meta["service_date"] = date
    text = None
    if rng.random() < 0.2:
        meta["content_type"], meta["filename"] = "text/plain", "notes.txt"
        text = " ".join(rng.choices(text_vocab, k=rng.randint(100, 300)))
    return meta, text


def build(engine, n: int, patients: int, seed: int) -> tuple[Session, list[dict], list[str | None]]:
    """Users, shares, record and key rows, and the specialist's sealed index; returns the specialist's session."""
    rng = random.Random(seed)
    vocab = [f"w{rng.getrandbits(40):x}"[:8] for _ in range(2000)]
    text_vocab = [f"t{rng.getrandbits(40):x}"[:9] for _ in range(20000)]
    now = time.time()

    def user(name: str, role: str) -> tuple[str, PrivateKeys]:
        keys = PrivateKeys.generate()
        public = keys.public()
        uid = str(uuid.uuid4())
        row = {
            "id": uid,
            "username": name,
            "role": role,
            "status": "active",
            "created_at": now,
            "x25519_public": public.x25519,
            "ed25519_public": public.ed25519,
            "public_signature": public.signature,
            "key_generation": 0,
        }
        return row, keys

    doc_row, doc_keys = user("specialist", "specialist")
    pat_rows = [user(f"patient{p}", "patient")[0] for p in range(patients)]
    share_ids = [str(uuid.uuid4()) for _ in range(patients)]
    metas, texts, rec_rows, key_rows = [], [], [], []
    for i in range(n):
        meta, text = fake_record(rng, vocab, text_vocab, now)
        rid = str(uuid.uuid4())
        p = i % patients
        at = now - (n - i)
        metas.append({"id": rid, **meta, "size": 1000 + i, "uploaded_at": at, "signed_by": f"patient{p}"})
        metas[-1]["signature_valid"] = True
        texts.append(text)
        rec_rows.append(
            {
                "id": rid,
                "version": 1,
                "owner_id": pat_rows[p]["id"],
                "uploader_id": pat_rows[p]["id"],
                "created_at": at,
                "size": 1000 + i,
                "blob": "placeholder",
                "stream_header": b"\0" * 15,
                "sealed_metadata": os.urandom(64),
                "sealed_manifest": os.urandom(64),
            }
        )
        key_rows.append(
            {
                "record_id": rid,
                "reader_id": doc_row["id"],
                "wrapped_key": os.urandom(80),
                "granted_at": at,
                "share_id": share_ids[p],
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(users), [doc_row, *pat_rows])
        conn.execute(
            insert(shares),
            [
                {
                    "id": share_ids[p],
                    "patient_id": pat_rows[p]["id"],
                    "specialist_id": doc_row["id"],
                    "kind": "chart",
                    "access": "read",
                    "created_at": now,
                }
                for p in range(patients)
            ],
        )
        conn.execute(insert(records), rec_rows)
        conn.execute(insert(record_keys), key_rows)
    session = Session(os.urandom(32), doc_row["id"], "specialist", "specialist", doc_keys, "csrf")
    store = IndexStore(engine)
    key = store.index_key(session.user_id, doc_keys)
    store.append(session.user_id, key, [make_row(m, t) for m, t in zip(metas, texts, strict=True)])
    return session, metas, texts


def shapes(rng: random.Random, metas: list[dict]) -> dict:
    """Query makers: each returns one search body with random, realistic parameters."""

    def word() -> str:
        return rng.choice(rng.choice(metas)["title"].lower().split())[:5]

    def year_span() -> dict:
        y = rng.randint(2000, 2024)
        return {"from": str(y), "to": f"{y + rng.randint(0, 2)}-06"}

    return {
        "facility, -service_date": lambda: {"facility": rng.choice(FACILITIES), "sort": "-service_date"},
        "dates + type, title": lambda: {**year_span(), "type": rng.choice(TYPES), "sort": "title"},
        "q (prefix), -service_date": lambda: {"q": word(), "sort": "-service_date"},
        "custom + group, -uploaded": lambda: {
            "custom": {"ward": rng.choice("ABCDEFGHIJ")},
            "group": "facility",
            "sort": "-uploaded",
        },
        "tag + provider, service_date": lambda: {
            "tags": [rng.choice(TAGS)],
            "provider": rng.choice(PROVIDERS),
            "sort": "service_date",
        },
        "none, custom.visit": lambda: {"sort": "custom.visit"},
        "confidentiality + category, -title": lambda: {
            "confidentiality": ["normal", "restricted"],
            "category": rng.choice(CATEGORIES),
            "sort": "-title",
        },
    }


def timed(search: Search, session: Session, body: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    result = search.search(session, body)
    json.dumps(result)
    return time.perf_counter() - t0, result


def fts_peer(path: Path, metas: list[dict], texts: list[str | None], queries: list[tuple[str, dict]]) -> dict:
    """The same searches on plaintext SQLite with B-tree indexes and FTS5: nothing protected, a lower bound."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE docs(n INTEGER PRIMARY KEY, id TEXT, json TEXT, facility TEXT, type TEXT, category TEXT,
            sd TEXT, first TEXT, last TEXT, uploaded REAL, title TEXT, ward TEXT, visit REAL, conf TEXT);
        CREATE TABLE prov(n INTEGER, v TEXT); CREATE TABLE tag(n INTEGER, v TEXT);
        CREATE VIRTUAL TABLE fts USING fts5(w);
        """
    )
    from medvault.mar.search import first_day, last_day

    rows, prov, tag, fts = [], [], [], []
    for n, (m, t) in enumerate(zip(metas, texts, strict=True)):
        sd = m.get("service_date")
        rows.append(
            (
                n,
                m["id"],
                json.dumps(m),
                m["facility"].casefold(),
                m["type"].casefold(),
                m["category"],
                sd,
                first_day(sd) if sd else None,
                last_day(sd) if sd else None,
                m["uploaded_at"],
                m["title"].casefold(),
                m["custom"]["ward"].casefold(),
                m["custom"]["visit"],
                m["confidentiality"],
            )
        )
        prov += [(n, p.casefold()) for p in m["provider"]]
        tag += [(n, x) for x in m["tags"]]
        fts.append((n, " ".join(filter(None, [m["title"], m["description"], *m["tags"], t]))))
    db.executemany("INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO prov VALUES (?,?)", prov)
    db.executemany("INSERT INTO tag VALUES (?,?)", tag)
    db.executemany("INSERT INTO fts(rowid, w) VALUES (?,?)", fts)
    db.executescript(
        """
        CREATE INDEX d_fac ON docs(facility, sd); CREATE INDEX d_type ON docs(type, title);
        CREATE INDEX d_ward ON docs(ward, uploaded); CREATE INDEX d_cat ON docs(category, title);
        CREATE INDEX d_sd ON docs(sd); CREATE INDEX d_visit ON docs(visit); CREATE INDEX d_first ON docs(first);
        CREATE INDEX p_v ON prov(v, n); CREATE INDEX t_v ON tag(v, n); ANALYZE;
        """
    )
    order = {
        "-service_date": "sd IS NULL, sd DESC, id DESC",
        "service_date": "sd IS NULL, sd, id",
        "title": "title, id",
        "-title": "title DESC, id DESC",
        "-uploaded": "uploaded DESC, id DESC",
        "custom.visit": "visit, id",
    }

    def sql(body: dict) -> tuple[str, list]:
        where, args = [], []
        for key in ("facility", "type", "category"):
            if key in body:
                where.append(f"{key} = ?")
                args.append(body[key].casefold())
        if "from" in body:
            where.append("last >= ?")
            args.append(first_day(body["from"]))
        if "to" in body:
            where.append("first <= ?")
            args.append(last_day(body["to"]))
        if "q" in body:
            where.append("n IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
            args.append(f'"{body["q"]}"*')
        if "custom" in body:
            where.append("ward = ?")
            args.append(body["custom"]["ward"].casefold())
        if "tags" in body:
            where.append("n IN (SELECT n FROM tag WHERE v = ?)")
            args.append(body["tags"][0])
        if "provider" in body:
            where.append("n IN (SELECT n FROM prov WHERE v = ?)")
            args.append(body["provider"].casefold())
        if "confidentiality" in body:
            where.append(f"conf IN ({','.join('?' * len(body['confidentiality']))})")
            args += body["confidentiality"]
        return " WHERE " + " AND ".join(where) if where else "", args

    times: dict[str, list[float]] = {}
    for label, body in queries:  # the SQL text is built from fixed fragments only; values are bound
        clause, args = sql(body)
        t0 = time.perf_counter()
        page_sql = f"SELECT json FROM docs{clause} ORDER BY {order[body['sort']]} LIMIT 50"  # noqa: S608
        page = db.execute(page_sql, args).fetchall()
        db.execute(f"SELECT count(*) FROM docs{clause}", args).fetchone()  # noqa: S608
        if "group" in body:
            db.execute(f"SELECT facility, count(*) FROM docs{clause} GROUP BY facility", args).fetchall()  # noqa: S608
        json.dumps([json.loads(j) for (j,) in page])
        times.setdefault(label, []).append(time.perf_counter() - t0)
    db.close()
    return times


def lazy_cost(tmp: Path, count: int) -> float:
    """Seconds per record to index records shared to a reader at their next search (real uploads)."""
    engine = make_engine(f"sqlite:///{tmp / 'lazy.db'}")
    migrate(engine)
    vault = Vault(engine, BlobStore(tmp / "blobs"))
    now = time.time()
    people = {}
    for name, role in (("p", "patient"), ("d", "specialist")):
        keys = PrivateKeys.generate()
        pub = keys.public()
        people[name] = (str(uuid.uuid4()), keys)
        with engine.begin() as conn:
            conn.execute(
                insert(users).values(
                    id=people[name][0],
                    username=name,
                    role=role,
                    status="active",
                    created_at=now,
                    x25519_public=pub.x25519,
                    ed25519_public=pub.ed25519,
                    public_signature=pub.signature,
                    key_generation=0,
                )
            )
    (pid, pkeys), (did, dkeys) = people["p"], people["d"]
    share = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            insert(shares).values(
                id=share, patient_id=pid, specialist_id=did, kind="chart", access="read", created_at=now
            )
        )
    for i in range(count):
        up = vault.begin_upload(pid, 1 << 20)
        up.write(f"note {i} about tachycardia and follow-up".encode() * 20)
        up.finish({"title": f"note {i}"}, "n.txt", "text/plain", pid, pkeys, lambda _m, s=share: [(did, s)])
    search = Search(engine, vault, os.urandom(32), 1800)
    session = Session(os.urandom(32), did, "d", "specialist", dkeys, "csrf")
    t0 = time.perf_counter()
    result = search.search(session, {"q": "tachy"})
    elapsed = time.perf_counter() - t0
    assert result["total"] == count, result["total"]
    return elapsed / count


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--queries", type=int, default=700, help="timed warm searches (default 700)")
    ap.add_argument("--cold", type=int, default=3, help="cold first searches, each with a fresh cache")
    ap.add_argument("--lazy", type=int, default=300, help="real shared records indexed lazily (default 300)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--tmp-dir", default=None)
    args = ap.parse_args()
    print(f"machine: {machine_summary()}")
    with tempfile.TemporaryDirectory(prefix="mv-bench-search-", dir=args.tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        engine = make_engine(f"sqlite:///{tmp / 'medvault.db'}")
        migrate(engine)
        t0 = time.perf_counter()
        session, metas, texts = build(engine, args.records, args.patients, args.seed)
        rows = IndexStore(engine).row_count(session.user_id)
        db_mib = sum(f.stat().st_size for f in tmp.glob("medvault.db*")) / 2**20
        print(f"built {rows} index rows for one specialist in {time.perf_counter() - t0:.1f} s (DB {db_mib:.0f} MiB)")
        vault = Vault(engine, BlobStore(tmp / "blobs"))
        rng = random.Random(args.seed)
        makers = shapes(rng, metas)
        labels = list(makers)

        gc.collect()
        base_rss = rss_kib()
        cold = []
        for n in range(args.cold):
            search = None
            gc.collect()
            search = Search(engine, vault, os.urandom(32), 1800)
            took, result = timed(search, session, makers[labels[0]]())
            cold.append(took)
            assert len(result["items"]) == 50 or result["total"] < 50
            if n == 0:
                cache_mib = (rss_kib() - base_rss) / 1024

        first_use = {}
        for label in labels:  # the first run of each shape builds its postings, orders or vocabulary
            first_use[label], _ = timed(search, session, makers[label]())
        warm: dict[str, list[float]] = {label: [] for label in labels}
        page2: list[float] = []
        queries: list[tuple[str, dict]] = []
        for n in range(args.queries):
            label = labels[n % len(labels)]
            body = makers[label]()
            took, result = timed(search, session, body)
            warm[label].append(took)
            queries.append((label, body))
            if result["next"] and n % 7 == 0:
                took, _ = timed(search, session, {**body, "cursor": result["next"]})
                page2.append(took)
        every = [t for ts in warm.values() for t in ts]
        derived_mib = (rss_kib() - base_rss) / 1024
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        print(f"\nMedVault sealed per-reader index, {rows} records, pages of 50 (ms):")
        print(f"  first search of a session (cold cache): median {1000 * statistics.median(cold):.0f} ms")
        for label in labels:
            ts = warm[label]
            print(
                f"  {label:36} p50 {1000 * pct(ts, 50):6.1f}  p99 {1000 * pct(ts, 99):6.1f}"
                f"   first use {1000 * first_use[label]:6.0f}"
            )
        print(f"  {'next page (cursor)':36} p50 {1000 * pct(page2, 50):6.1f}  p99 {1000 * pct(page2, 99):6.1f}")
        p50, p99 = pct(every, 50), pct(every, 99)
        print(f"  {'ALL warm':36} p50 {1000 * p50:6.1f}  p99 {1000 * p99:6.1f}   (n={len(every)})")
        print(
            f"  memory (RSS growth): {cache_mib:.0f} MiB for the index after the first search, {derived_mib:.0f} MiB "
            f"with every derived structure (words, postings, orders); peak RSS {peak_mib:.0f} MiB of this process, "
            f"which also holds the generated records"
        )

        peer = fts_peer(tmp / "fts.db", metas, texts, queries)
        all_peer = [t for ts in peer.values() for t in ts]
        print("\nSQLite FTS5 + B-tree indexes on plaintext (no protection; lower bound), same queries (ms):")
        for label in labels:
            ts = peer[label]
            print(f"  {label:36} p50 {1000 * pct(ts, 50):6.1f}  p99 {1000 * pct(ts, 99):6.1f}")
        print(f"  {'ALL':36} p50 {1000 * pct(all_peer, 50):6.1f}  p99 {1000 * pct(all_peer, 99):6.1f}")

        meaning = ["broken wrist", "car crash", "heart problem", "back pain imaging", "bill to pay"]
        cpu0 = time.process_time()
        first_meaning, _ = timed(search, session, {"similar": meaning[0]})  # makes every record's vector
        cpu_first = time.process_time() - cpu0
        by_meaning = [timed(search, session, {"similar": rng.choice(meaning)})[0] for _ in range(50)]
        print(
            f"\nsearch by meaning (similar=, WordLlama 256-d, whole index ranked): first {1000 * first_meaning:.0f} ms "
            f"wall, {1000 * cpu_first:.0f} ms CPU (vectors for {rows} records, model load included); warm p50 "
            f"{1000 * pct(by_meaning, 50):.1f} p99 {1000 * pct(by_meaning, 99):.1f} ms; peer: the FTS5 'q (prefix)' "
            f"line above, p50 {1000 * pct(peer[labels[2]], 50):.1f} ms"
        )

        per = lazy_cost(tmp, args.lazy)
        print(f"\nfirst indexing of a shared record (HPKE open, manifest check, text read): {1e6 * per:.0f} µs each")
        ok = p50 < 0.05 and p99 < 0.2 and statistics.median(cold) < 1
        print(
            f"\ntargets: warm p50 < 50 ms ({1000 * p50:.1f}), p99 < 200 ms ({1000 * p99:.1f}), "
            f"first page < 1 s ({statistics.median(cold):.2f} s): {'met' if ok else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
