"""The README documents every setting and command, and its guard configuration example is valid."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import typer.main

from medvault.cli import app
from medvault.config import Settings
from medvault.guard.runner import load_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented():
    """Each Settings field appears in the README's settings table."""
    missing = [f.name for f in fields(Settings) if f"`{f.name}`" not in README]
    assert missing == []


def test_every_command_is_documented():
    """Each `medvault` command and sub-command appears in the README."""
    group = typer.main.get_group(app)
    names = []
    for name, command in group.commands.items():
        subs = getattr(command, "commands", None)
        names += [f"{name} {sub}" for sub in subs] if subs else [name]
    missing = [n for n in names if f"medvault {n}" not in README and f"`{n}`" not in README]
    assert missing == [], missing


def test_guard_example_config_loads(tmp_path):
    """The guard.toml shown in the README is accepted by `medvault guard run`."""
    example = re.search(r"```toml\n# guard.toml\n(.*?)```", README, re.S).group(1)
    log = tmp_path / "auth.log"
    log.write_text("")
    path = tmp_path / "guard.toml"
    path.write_text(example.replace("/var/log/auth.log", str(log)).replace("/var/lib/medvault-guard", str(tmp_path)))
    config = load_config(path)
    assert [rt.jail.name for rt in config.jails] == ["sshd"]


def test_openapi_describes_every_api_route(tmp_path):
    """Every route under /api/v1, with each of its methods, is in the OpenAPI document, and nothing else is."""
    from starlette.routing import Route

    from medvault.config import load_settings
    from medvault.core import MedVault
    from medvault.web.app import create_app
    from medvault.web.openapi import OPENAPI

    app = create_app(MedVault(load_settings({"data_dir": tmp_path})))
    routes = {
        (r.path, m.lower())
        for r in app.routes
        if isinstance(r, Route) and r.path.startswith("/api/v1")
        for m in r.methods - {"HEAD"}
    }
    documented = {(path, method) for path, ops in OPENAPI["paths"].items() for method in ops}
    assert routes == documented
