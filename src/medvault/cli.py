"""The `medvault` command: init, serve, user, guard, audit. Every command takes --data-dir.

Bad input ends with a one-line message on stderr and exit code 2; nothing is half-done.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from medvault.auth import AuthError
from medvault.config import Settings, SettingsError, load_settings
from medvault.core import MedVault, NotInitialised

app = typer.Typer(help="MedVault: a private cloud for medical records.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
user_app = typer.Typer(help="Accounts: invitations, listing, disabling, resets.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (env MEDVAULT_DATA_DIR).")]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML settings file (env MEDVAULT_CONFIG).")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="sqlite:///… (default) or postgresql://…")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"medvault: {message}", err=True)
    return typer.Exit(2)


def _settings(data_dir: Path | None, config: Path | None, **flags) -> Settings:
    try:
        return load_settings({"data_dir": data_dir, **flags}, config)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def _open(data_dir: Path | None, config: Path | None = None, database_url: str | None = None) -> MedVault:
    medvault = MedVault(_settings(data_dir, config, database_url=database_url))
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

    settings = _settings(data_dir, config, database_url=database_url, host=host, https_port=https_port,
                         http_port=http_port, cert=cert, key=key)
    medvault = MedVault(settings)
    try:
        medvault.check_initialised()
    except NotInitialised as exc:
        raise fail(str(exc)) from None
    for path in (settings.cert_path, settings.key_path):
        if not path.exists():
            raise fail(f"TLS file {path} does not exist")
    run_server(medvault)


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
        typer.echo(json.dumps({"username": invitation.username, "code": invitation.code, "link": link,
                               "expires_at": invitation.expires_at}))
    else:
        typer.echo(f"Invitation for {invitation.username} (valid {medvault.settings.invitation_hours} h):")
        typer.echo(f"  code: {invitation.code}\n  link: {link}")


@user_app.command("list")
def user_list(as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None,
              database_url: DatabaseUrl = None) -> None:
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
    warning = (f"Resetting {name}: their current password stops working. Records stored so far stay encrypted "
               "under their old keys and can be reopened only with their recovery key.")
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
    """Recompute the audit hash chain; exit 1 if any entry was changed or removed."""
    intact, count = _open(data_dir, database_url=database_url).audit.verify()
    typer.echo(f"audit trail {'intact' if intact else 'BROKEN'}: {count} entries verified")
    if not intact:
        raise typer.Exit(1)


def main() -> None:
    try:
        from medvault.guard.cli import guard_app
    except ImportError:  # the guard's command line is optional only while its package is being built
        guard_app = None
    if guard_app is not None:
        app.add_typer(guard_app, name="guard", help="The log-based guard.")
    app()
