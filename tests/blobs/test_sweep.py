"""The crash sweep, on the local folder and on a bucket: only leftovers older than the grace period go."""

from __future__ import annotations

import os
import time

import pytest

from medvault.blobs.store import BlobStore
from tests.blobs.s3server import SMALL_PART, eventually


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    """Each store, with `pending()`: the blob names of uploads begun and never finished."""
    if request.param == "local":
        local = BlobStore(tmp_path / "blobs")
        local.pending = lambda: sorted(p.name.removesuffix(".part") for p in (tmp_path / "blobs" / "tmp").iterdir())
        return local
    s3 = request.getfixturevalue("s3")
    bucket = s3.new_bucket()
    remote = s3.store(bucket)
    remote.pending = lambda: sorted(key.removeprefix("blobs/") for key in s3.uploads(bucket))
    return remote


def _leftovers(store) -> tuple[str, str, str]:
    """An upload cut off after its first part, a committed blob no row names, and one a row names."""
    cut = store.create()
    cut.write(os.urandom(SMALL_PART + 100))
    assert eventually(lambda: cut.name in store.pending()), "an S3 writer sends its first part from a thread"
    names = []
    for _ in range(2):
        writer = store.create()
        writer.write(os.urandom(1000))
        names.append(writer.commit())
    return cut.name, names[0], names[1]


def test_sweep_removes_only_old_leftovers(store):
    """A node starting up removes an old cut-off upload and an old unreferenced blob, keeps a referenced one,
    and keeps the same leftovers when they are fresh (another node's upload, a row about to commit)."""
    _old_cut, _old_orphan, old_kept = _leftovers(store)
    time.sleep(1.1)  # why: S3 dates objects and parts to the second
    between = time.time()
    time.sleep(1.1)
    new_cut, new_orphan, new_kept = _leftovers(store)
    referenced = {old_kept, new_kept}
    assert store.sweep(referenced, grace=3600) == 0, "nothing is an hour old yet"
    assert store.sweep(referenced, grace=3600, now=between + 3600) == 2
    assert sorted(store.names()) == sorted([old_kept, new_orphan, new_kept])
    assert store.pending() == [new_cut]
    assert store.sweep(referenced, grace=0) == 2
    assert sorted(store.names()) == sorted(referenced) and store.pending() == []
