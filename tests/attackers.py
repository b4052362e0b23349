"""Attackers on their own loopback addresses.

httpx binds a source address directly; tools that cannot (hydra, gobuster, sqlmap, wrk, …) run under
a dedicated group whose packets an iptables SNAT rule rewrites to 127.0.0.N. Rules are removed on exit.
"""

from __future__ import annotations

import contextlib
import grp
import os
import subprocess

import httpx
import pytest

from tests.support import ON_CI, Server, require_tool


def client_from(server: Server, source: str, **kwargs) -> httpx.Client:
    return server.client(source, **kwargs)


def is_refused(server: Server, source: str) -> bool:
    """True when the address cannot get an answer (dropped before TLS) or gets a 403 ban answer."""
    try:
        with client_from(server, source) as c:
            return c.get("/login").status_code == 403
    except httpx.TransportError:
        return True


@contextlib.contextmanager
def snat_group(last_octet: int):
    """Yield a group id whose TCP traffic to 127.0.0.1 leaves from 127.0.0.<last_octet>."""
    if os.geteuid() != 0:
        if ON_CI:
            pytest.fail("attack-tool tests need root (iptables SNAT) on CI")
        pytest.skip("needs root for iptables SNAT (runs on CI)")
    iptables = require_tool("iptables")
    name = f"mvatk{last_octet}"
    subprocess.run(["groupadd", "-f", name], check=True)
    gid = grp.getgrnam(name).gr_gid
    rule = [
        "POSTROUTING",
        "-t",
        "nat",
        "-p",
        "tcp",
        "-d",
        "127.0.0.1",
        "-m",
        "owner",
        "--gid-owner",
        str(gid),
        "-j",
        "SNAT",
        "--to-source",
        f"127.0.0.{last_octet}",
    ]
    subprocess.run([iptables, "-A", *rule], check=True)
    try:
        yield gid
    finally:
        subprocess.run([iptables, "-D", *rule], check=False)


def run_as(gid: int, argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Run a tool in the attacker's group; bounded in time (a timeout is an answer, not an error)."""
    try:
        return subprocess.run(
            argv, group=gid, extra_groups=[], capture_output=True, text=True, timeout=timeout, **kwargs
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return subprocess.CompletedProcess(argv, -1, out, "timeout")
