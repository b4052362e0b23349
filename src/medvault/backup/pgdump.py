"""PostgreSQL in a snapshot: `pg_dump` of one exported snapshot, and `pg_restore` into an empty database.

The backup opens a REPEATABLE READ transaction, exports its snapshot and reads the blob names there; `pg_dump
--snapshot` then dumps exactly that state while the transaction stays open, so the blobs copied afterwards are
the ones the dump names (the same guarantee SQLite's online backup gives). The password never goes on a
command line (other users' `ps` would show it): it travels in `PGPASSWORD`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from medvault.backup import BackupError

DUMP = "medvault.pgdump"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian: postgresql-client)")
    return path


def _split(url: str) -> tuple[str, dict[str, str]]:
    """(conninfo without the password, environment carrying it)."""
    params = conninfo_to_dict(url.replace("postgresql+psycopg://", "postgresql://", 1))
    password = params.pop("password", None)
    env = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    return make_conninfo(**params), env


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{what} failed: {last[:300]}")


def dump(url: str, target: Path) -> set[str]:
    """Dump the database into `target` (custom format) as of one snapshot; the blob names its rows hold."""
    pg_dump = _tool("pg_dump")
    conninfo, env = _split(url)
    try:
        with psycopg.connect(conninfo, password=env.get("PGPASSWORD")) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                (snapshot,) = conn.execute("SELECT pg_export_snapshot()").fetchone()
                names = {name for (name,) in conn.execute("SELECT blob FROM records")}
                argv = [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}"]
                _run([*argv, f"--file={target}", f"--dbname={conninfo}"], env, "pg_dump")
    except psycopg.Error as exc:
        raise BackupError(f"cannot read the database: {str(exc).strip()[:300]}") from None
    return names


def restore(url: str, dump_file: Path) -> None:
    """Load a dump into an empty database, all or nothing (one transaction)."""
    pg_restore = _tool("pg_restore")
    conninfo, env = _split(url)
    try:
        with psycopg.connect(conninfo, password=env.get("PGPASSWORD"), autocommit=True) as conn:
            (tables,) = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()
    except psycopg.Error as exc:
        raise BackupError(f"cannot reach the database to restore into: {str(exc).strip()[:300]}") from None
    if tables:
        raise BackupError("the database to restore into is not empty: create an empty one (createdb) first")
    argv = [pg_restore, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
    _run([*argv, f"--dbname={conninfo}", str(dump_file)], env, "pg_restore")
