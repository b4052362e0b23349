"""The blob tests' S3-compatible server (tests/blobs/s3server.py), one per session; on CI it must be there."""

from __future__ import annotations

import pytest

from tests.blobs.s3server import MOTO_SERVER, S3Server
from tests.support import ON_CI


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """One moto_server for the session; each test makes its own bucket."""
    if not MOTO_SERVER.exists():
        if ON_CI:
            pytest.fail("moto_server is required on CI (pip install -e '.[test]' installs moto[server])")
        pytest.skip("moto_server not installed (would fail on CI)")
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()
