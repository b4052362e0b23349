"""The `medvault` command: init, serve, user, guard, audit, backup, restore. Every command takes --data-dir.

Bad input ends with a one-line message on stderr and exit code 2; nothing is half-done.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from medvault.auth import AuthError
from medvault.blobs import BlobError
from medvault.config import Settings, SettingsError, load_settings
from medvault.core import MedVault, NotInitialised
from medvault.guard.cli import guard_app
from medvault.guard.store import BanStore

app = typer.Typer(
    help="MedVault: a private cloud for medical records.", no_args_is_help=True, pretty_exceptions_enable=False
)
user_app = typer.Typer(help="Accounts: invitations, listing, disabling, resets.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(guard_app, name="guard")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (env MEDVAULT_DATA_DIR).")]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML settings file (env MEDVAULT_CONFIG).")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="sqlite:///… (default) or postgresql://…")]
BlobUrl = Annotated[
    str | None, typer.Option("--blob-url", help="s3://BUCKET/PREFIX?endpoint=… (env MEDVAULT_BLOB_URL).")
]


def fail(message: str) -> typer.Exit:
    typer.echo(f"medvault: {message}", err=True)
    return typer.Exit(2)


def _settings(data_dir: Path | None, config: Path | None, **flags) -> Settings:
    try:
        return load_settings({"data_dir": data_dir, **flags}, config)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def _open(
    data_dir: Path | None, config: Path | None = None, database_url: str | None = None, blob_url: str | None = None
) -> MedVault:
    medvault = MedVault(_settings(data_dir, config, database_url=database_url, blob_url=blob_url))
    try:
        medvault.check_initialised()
    except NotInitialised as exc:
        raise fail(str(exc)) from None
    return medvault


@app.command()
def init(data_dir: DataDir = None, config: ConfigFile = None, database_url: DatabaseUrl = None) -> None:
    """Create the data folder, database, certificate and first administrator; never overwrites."""
    medvault = MedVault(_settings(data_dir, config, database_url=database_url))
    fresh = medvault.initialise()
    if any(a.role == "admin" for a in medvault.accounts.list()):
        typer.echo(f"{medvault.data_dir}: already initialised; nothing overwritten.")
        return
    invitation = medvault.accounts.invite("admin", "admin")
    password = secrets.token_urlsafe(15)
    _, recovery = asyncio.run(medvault.accounts.accept(invitation.code, password))
    typer.echo(f"Initialised {medvault.data_dir} ({'new' if fresh else 'completed'}).")
    typer.echo("First administrator (shown once, store it safely):")
    typer.echo("  user name:    admin")
    typer.echo(f"  password:     {password}")
    typer.echo(f"  recovery key: {recovery}")


@app.command()
def serve(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    database_url: DatabaseUrl = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    https_port: Annotated[int | None, typer.Option(help="HTTPS port [8443].")] = None,
    http_port: Annotated[int | None, typer.Option(help="HTTP port, redirect only [8080].")] = None,
    cert: Annotated[Path | None, typer.Option(help="PEM certificate (else self-signed in the data folder).")] = None,
    key: Annotated[Path | None, typer.Option(help="PEM private key for --cert.")] = None,
) -> None:
    """Serve HTTPS (and the HTTP redirect) until interrupted."""
    from medvault.runtime import run_server

    settings = _settings(
        data_dir,
        config,
        database_url=database_url,
        host=host,
        https_port=https_port,
        http_port=http_port,
        cert=cert,
        key=key,
    )
    medvault = MedVault(settings)
    try:
        medvault.check_initialised()
    except NotInitialised as exc:
        raise fail(str(exc)) from None
    for path in (settings.cert_path, settings.key_path):
        if not path.exists():
            raise fail(f"TLS file {path} does not exist")
    try:
        run_server(medvault)
    except BlobError as exc:  # at start: the store is unreachable, refuses the credentials or has no bucket
        raise fail(str(exc)) from None


@user_app.command("invite")
def user_invite(
    name: str,
    role: Annotated[str, typer.Option(help="patient, specialist or admin")],
    profession: Annotated[str | None, typer.Option(help="doctor, nurse, pharmacist, …")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Invite a person; they choose their own password when accepting."""
    medvault = _open(data_dir, database_url=database_url)
    try:
        invitation = medvault.accounts.invite(name, role, profession)
    except AuthError as exc:
        raise fail(str(exc)) from None
    _print_invitation(medvault, invitation, as_json)


def _print_invitation(medvault: MedVault, invitation, as_json: bool) -> None:
    link = f"{medvault.settings.https_url}/invite/{invitation.code}"
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "username": invitation.username,
                    "code": invitation.code,
                    "link": link,
                    "expires_at": invitation.expires_at,
                }
            )
        )
    else:
        typer.echo(f"Invitation for {invitation.username} (valid {medvault.settings.invitation_hours} h):")
        typer.echo(f"  code: {invitation.code}\n  link: {link}")


@user_app.command("list")
def user_list(
    as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List accounts with role and status."""
    accounts = _open(data_dir, database_url=database_url).accounts.list()
    if as_json:
        typer.echo(json.dumps([a.__dict__ for a in accounts]))
        return
    for a in accounts:
        typer.echo(f"{a.username:24} {a.role:10} {a.profession or '-':12} {a.status}")


@user_app.command("disable")
def user_disable(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Disable an account and end its sessions."""
    try:
        _open(data_dir, database_url=database_url).accounts.disable(name)
    except AuthError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{name} disabled; their sessions are ended.")


@user_app.command("reinvite")
def user_reinvite(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm without asking.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The administrator's reset: a new invitation. Old records stay locked unless the owner has the recovery key."""
    medvault = _open(data_dir, database_url=database_url)
    warning = (
        f"Resetting {name}: their current password stops working. Records stored so far stay encrypted "
        "under their old keys and can be reopened only with their recovery key."
    )
    if not yes:
        typer.echo(warning, err=True)
        if not sys.stdin.isatty() or not typer.confirm("Continue?"):
            raise fail("reset not confirmed (use --yes)")
    try:
        invitation = medvault.accounts.reinvite(name)
    except AuthError as exc:
        raise fail(str(exc)) from None
    _print_invitation(medvault, invitation, as_json)


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Recompute the audit hash chain and check patients' signed checkpoints; exit 1 on any change."""
    verdict = _open(data_dir, database_url=database_url).audit.verify()
    if not verdict.intact:
        typer.echo(f"audit trail BROKEN: {verdict.problem}")
        raise typer.Exit(1)
    typer.echo(f"audit trail intact: {verdict.entries} entries, {verdict.checkpoints} signed checkpoints verified")


def _ban_store(data_dir: Path | None, database_url: str | None) -> BanStore:
    return BanStore(_open(data_dir, database_url=database_url).engine)


def _network(ip: str) -> str:
    try:
        return str(ipaddress.ip_network(ip, strict=False))
    except ValueError:
        raise fail(f"not an IP address or network: {ip!r}") from None


@guard_app.command("list")
def guard_list(
    as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Current bans of the server using this data folder (or database)."""
    now = time.time()
    rows = [b for b in _ban_store(data_dir, database_url).all() if b.until > now]
    if as_json:
        typer.echo(json.dumps([b.__dict__ for b in rows]))
        return
    for b in rows:
        typer.echo(f"{b.network:40} {b.jail:8} {int(b.until - now):>8}s left  ban #{b.count}  {b.reason or ''}")
    typer.echo(f"{len(rows)} active ban(s)")


@guard_app.command("status")
def guard_status(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Jails with their recent event counts (as last written by the running server) and active bans."""
    medvault = _open(data_dir, database_url=database_url)
    snapshot = medvault.data_dir / "guard-status.json"
    if snapshot.exists():
        status = json.loads(snapshot.read_text())
        age = time.time() - status.get("written_at", 0)
        typer.echo(f"server snapshot from {age:.0f}s ago")
        for name, jail in status["jails"].items():
            typer.echo(f"  {name:8} {jail['events_last_hour']:>7} events in the last hour")
    else:
        typer.echo("no running server has written a status snapshot here yet")
    now = time.time()
    typer.echo(f"{sum(1 for b in BanStore(medvault.engine).all() if b.until > now)} active ban(s)")


@guard_app.command("ban")
def guard_ban(
    ip: str,
    seconds: Annotated[int, typer.Option(min=1)] = 3600,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Ban an address or network; the running server applies it within two seconds."""
    _ban_store(data_dir, database_url).put(_network(ip), "manual", time.time() + seconds, 1, "administrator")
    typer.echo(f"{_network(ip)} banned for {seconds}s")


@guard_app.command("unban")
def guard_unban(ip: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Lift a ban; the running server applies it within two seconds."""
    if not _ban_store(data_dir, database_url).lift(_network(ip)):
        raise fail(f"no ban for {ip}")
    typer.echo(f"{_network(ip)} unbanned")


def _progress(quiet: bool):
    """A byte progress bar on stderr, only for a person watching (a TTY) and without --quiet."""
    if quiet or not sys.stderr.isatty():
        return None

    def make(count: int, total: int):
        bar = typer.progressbar(length=max(total, 1), label=f"{count} blobs", file=sys.stderr)

        def tick(n: int) -> None:
            bar.update(n)
            if bar.pos >= total:
                bar.render_finish()

        return tick

    return make


@app.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="Backup folder; a second backup there copies only new blobs.")],
    recipient: Annotated[
        list[str], typer.Option("--recipient", help="age public key (age1…) to encrypt to; repeatable.")
    ],
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
) -> None:
    """Write an encrypted, incremental snapshot (database, blobs from the folder or the bucket, keys as stored)
    while the server runs."""
    from medvault.backup import BackupError
    from medvault.backup.snapshot import take

    medvault = _open(data_dir, config, database_url, blob_url)
    started = time.monotonic()
    try:
        done = take(medvault.settings, to, recipient, _progress(quiet))
    except BackupError as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"snapshot {done.snapshot}: {done.blobs} blobs ({done.copied} new, {done.copied_bytes} bytes copied), "
        f"{done.total_bytes} bytes in all, {time.monotonic() - started:.1f}s"
    )


@app.command()
def restore(
    source: Annotated[Path, typer.Option("--from", help="Backup folder written by `medvault backup`.")],
    identity: Annotated[Path, typer.Option("--identity", help="age identity file (the offline private key).")],
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
) -> None:
    """Rebuild an empty data folder (and, for a PostgreSQL snapshot, an empty database; with --blob-url, an empty
    bucket, or one an interrupted restore of the same snapshot left) from the newest complete snapshot, verifying
    every file first."""
    from medvault.backup import BackupError
    from medvault.backup.restore import restore as restore_snapshot

    settings = _settings(data_dir, config, database_url=database_url, blob_url=blob_url)
    try:
        done = restore_snapshot(settings, source, identity, _progress(quiet))
    except BackupError as exc:
        raise fail(str(exc)) from None
    for name in done.skipped:
        typer.echo(f"medvault: skipped snapshot {name}: it has no manifest (unfinished, or removed)", err=True)
    resumed = f" ({done.resumed} already put by an interrupted restore, read back)" if done.resumed else ""
    typer.echo(
        f"restored snapshot {done.snapshot} into {settings.data_dir}{done.bucket}: {done.blobs} blobs verified{resumed}"
    )


def main() -> None:
    app()
