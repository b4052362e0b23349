"""Shared fixtures: a running server per test module, on SQLite by default and on PostgreSQL when asked."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.support import ON_CI, Server

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("srv") / "data")
    srv.init()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_db_server(request, tmp_path_factory):
    """The same server on each supported database back-end."""
    env = {"MEDVAULT_DATABASE_URL": request.getfixturevalue("pg_url")} if request.param == "postgresql" else {}
    srv = Server(tmp_path_factory.mktemp(request.param) / "data", env=env)
    srv.init()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pg_url():
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    name = f"medvault_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if ON_CI:
            pytest.fail(f"PostgreSQL is required on CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable (would fail on CI): {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()
