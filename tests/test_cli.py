"""The command line: idempotent init, invitations, clear errors with exit code 2, audit verification."""

from __future__ import annotations

import json
import sqlite3

from tests.support import cli


def test_init_is_idempotent_and_never_overwrites(tmp_path):
    """A second init keeps the secret, certificate and database, and creates no second administrator."""
    data = tmp_path / "data"
    first = cli(data, "init").stdout
    assert "password:" in first and "recovery key:" in first
    secret, cert = (data / "server.secret").read_bytes(), (data / "tls" / "cert.pem").read_bytes()
    second = cli(data, "init").stdout
    assert "already initialised" in second and "password" not in second
    assert (data / "server.secret").read_bytes() == secret and (data / "tls" / "cert.pem").read_bytes() == cert
    users = json.loads(cli(data, "user", "list", "--json").stdout)
    assert [u["username"] for u in users] == ["admin"]


def test_invite_json_and_list(tmp_path):
    """`user invite --json` prints one object with the code and link; `user list` shows the invited user."""
    data = tmp_path / "data"
    cli(data, "init")
    out = json.loads(
        cli(data, "user", "invite", "drsmith", "--role", "specialist", "--profession", "doctor", "--json").stdout
    )
    assert out["code"] and out["link"].endswith("/invite/" + out["code"])
    listing = cli(data, "user", "list").stdout
    assert "drsmith" in listing and "specialist" in listing and "doctor" in listing and "invited" in listing


def test_bad_input_exits_2_with_a_message(tmp_path):
    """Wrong role, duplicate user, unknown data folder and a bad setting each give exit 2 and one clear line."""
    data = tmp_path / "data"
    cli(data, "init")
    cases = [
        (["user", "invite", "x", "--role", "wizard"], {}, "Role must be"),
        (["user", "invite", "admin", "--role", "admin"], {}, "already exists"),
        (["user", "disable", "ghost"], {}, "No user"),
        (["user", "invite", "bad name!", "--role", "patient"], {}, "User names"),
        (["serve"], {"MEDVAULT_HTTPS_PORT": "eighty"}, "https_port"),
    ]
    for args, env, fragment in cases:
        result = cli(data, *args, env=env, check=False)
        assert result.returncode == 2 and fragment in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    missing = cli(tmp_path / "nowhere", "user", "list", check=False)
    assert missing.returncode == 2 and "medvault init" in missing.stderr


def test_settings_from_toml_file(tmp_path):
    """A TOML settings file is read; an unknown key in it is refused with its name."""
    data = tmp_path / "data"
    cli(data, "init")
    bad = tmp_path / "bad.toml"
    bad.write_text('colour = "blue"\n')
    result = cli(data, "serve", "--config", str(bad), check=False)
    assert result.returncode == 2 and "colour" in result.stderr


def test_audit_verify_detects_tampering(server):
    """`audit verify` passes on the real trail and fails after an entry is edited in the database."""
    user = server.account("audited")
    from tests.support import upload

    rid = upload(user["client"], b"audit me").json()["id"]
    user["client"].get(f"/api/v1/records/{rid}")
    assert "intact" in cli(server.data_dir, "audit", "verify").stdout
    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        db.execute("UPDATE audit SET action = 'nothing' WHERE action = 'view'")
    broken = cli(server.data_dir, "audit", "verify", check=False)
    assert broken.returncode == 1 and "BROKEN" in broken.stdout


def test_two_instances_side_by_side(tmp_path):
    """Two data folders are two independent instances."""
    a, b = tmp_path / "a", tmp_path / "b"
    cli(a, "init")
    cli(b, "init")
    cli(a, "user", "invite", "only-in-a", "--role", "patient")
    assert "only-in-a" not in cli(b, "user", "list").stdout
    assert (a / "server.secret").read_bytes() != (b / "server.secret").read_bytes()


def test_audit_verify_catches_a_recomputed_chain(tmp_path):
    """Someone who edits an entry and recomputes every later hash is caught by the patient's signed checkpoint."""
    from tests.support import Server

    server = Server(tmp_path / "data")
    server.init()
    server.start()
    try:
        _tamper_and_recompute(server)
    finally:
        server.stop()


def _tamper_and_recompute(server) -> None:
    from medvault.audit import _entry_hash
    from tests.support import upload

    user = server.account("checkpointed")
    rid = upload(user["client"], b"evidence").json()["id"]
    user["client"].get(f"/api/v1/records/{rid}")
    head = user["client"].get("/api/v1/audit").json()["head"]  # the patient signs the head they see
    assert head["seq"] > 0
    assert "signed checkpoints verified" in cli(server.data_dir, "audit", "verify").stdout
    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        db.execute("UPDATE audit SET action = 'nothing' WHERE action = 'view' AND record_id = ?", (rid,))
        prev = ""
        for seq, at, actor, action, record, ip in db.execute(
            "SELECT seq, at, actor_id, action, record_id, ip FROM audit ORDER BY seq"
        ).fetchall():
            prev = _entry_hash(prev, at, actor, action, record, ip)
            db.execute("UPDATE audit SET entry_hash = ? WHERE seq = ?", (prev, seq))
    broken = cli(server.data_dir, "audit", "verify", check=False)
    assert broken.returncode == 1 and "differ from what checkpointed signed" in broken.stdout


def test_every_command_prints_its_help():
    """Each command's --help renders (help texts are Rich markup: a stray "[/X]" breaks the page at run time)."""
    import click
    import typer.main
    from typer.testing import CliRunner

    from medvault.cli import app

    def paths(command: click.Command, prefix: list[str]):
        yield prefix
        for name, sub in getattr(command, "commands", {}).items():
            yield from paths(sub, [*prefix, name])

    runner = CliRunner()
    found = list(paths(typer.main.get_command(app), []))
    assert ["restore"] in found and ["backup"] in found and len(found) > 10
    for path in found:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output, result.exception)
