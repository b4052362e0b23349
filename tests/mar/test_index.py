"""The sealed index store in process: key handling, columnar round trip, concurrent writers, tampering."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import insert, select, update

from medvault.crypto.keyring import PrivateKeys
from medvault.db.engine import make_engine, migrate
from medvault.db.schema import search_keys, search_segments, users
from medvault.mar import index
from medvault.mar.index import IndexStore, item_at, make_row, to_columns, to_rows, words


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    migrate(engine)
    keys = PrivateKeys.generate()
    uid = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(insert(users).values(id=uid, username="u", role="patient", status="active", created_at=0.0))
    return IndexStore(engine), engine, uid, keys


def _row(n: int) -> dict:
    item = {
        "id": f"r{n}",
        "title": f"Title {n}",
        "custom": {"n": n},
        "provider": ["Dr A"],
        "confidentiality": "normal",
        "size": n,
        "uploaded_at": float(n),
        "signed_by": "u",
        "signature_valid": True,
    }
    return make_row(item, f"text of record {n}")


def test_words_fold_case_and_accents():
    """Indexed words are folded to lower case without accents, each kept once, and over-long words left out."""
    assert words("Zürich CLINIC, zurich!", None, "x" * 65) == ["zurich", "clinic"]


def test_columns_round_trip():
    """Rows become columns and back unchanged; an item read from the columns has its custom fields, not its words."""
    rows = [_row(1), make_row({"id": "r2", "confidentiality": "restricted", "uploaded_at": 2.0}, None)]
    cols = to_columns(rows)
    assert to_rows(cols) == rows
    assert "w" not in item_at(cols, 0) and item_at(cols, 0)["custom"] == {"n": 1}


def test_key_is_stable_and_replaced_for_new_user_keys(store):
    """The index key stays the same for the same user keys; new keys (an administrator's reset) get a new index key and
    the old segments are dropped."""
    st, _engine, uid, keys = store
    key = st.index_key(uid, keys)
    assert st.index_key(uid, keys) == key
    st.append(uid, key, [_row(1)])
    fresh = PrivateKeys.generate()  # an administrator's reset: the old index cannot be opened any more
    assert st.index_key(uid, fresh) != key
    assert st.versions(uid) == {}


def test_append_fills_segments_and_survives_a_concurrent_writer(store, monkeypatch):
    """Appends fill segments of SEGMENT_ROWS rows, and a rewrite of a segment another session has changed since is
    refused, so no row is lost."""
    st, _engine, uid, keys = store
    monkeypatch.setattr(index, "SEGMENT_ROWS", 3)
    key = st.index_key(uid, keys)
    st.append(uid, key, [_row(n) for n in range(4)])
    assert {s: len(seg) for s, seg in st.load(uid, key).items()} == {0: 3, 1: 1}
    stale = st.load(uid, key)[1]
    st.append(uid, key, [_row(4)])  # another session appends first
    assert st.rewrite(uid, key, stale, to_rows(stale.cols)) is None, "a stale rewrite is refused"
    st.rewrite(uid, key, stale, [])
    assert 1 in st.versions(uid), "a stale rewrite must not delete the newer segment"
    st.append(uid, key, [_row(5), _row(6)])
    ids = [rid for seg in st.load(uid, key).values() for rid in seg.cols["id"]]
    assert sorted(ids) == sorted(f"r{n}" for n in range(7))


def test_tampered_or_moved_segments_are_dropped_not_trusted(store):
    """A segment that fails AES-GCM (or sits under another generation) is discarded, to be rebuilt."""
    st, engine, uid, keys = store
    key = st.index_key(uid, keys)
    st.append(uid, key, [_row(1)])
    with engine.connect() as conn:
        assert b"Title" not in conn.execute(select(search_segments.c.sealed)).scalar()
        assert conn.execute(select(search_keys.c.created_at)).scalar() <= time.time()
    with engine.begin() as conn:
        conn.execute(update(search_segments).values(gen=5))  # a replayed or rolled-back generation
    assert st.load(uid, key) == {} and st.versions(uid) == {}
